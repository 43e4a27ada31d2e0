"""The signed identity: a short-lived JWT naming the signed-in person, on every request the gate
lets through (middleware, proxy, forward-auth), and the JWKS upstreams verify it with.

* :mod:`~saml_gate.identity.keys` — the signing keys (``jwt_keys``, or a development key
  generated in ``state_dir``), their ``kid`` and the JWKS;
* :mod:`~saml_gate.identity.tokens` — the JWT, cached per session and re-signed only near
  its expiry (the hot path signs about once per session per ``jwt_lifetime``).

Upstreams in Python verify it with :mod:`saml_gate.jwt_verify`.
"""
