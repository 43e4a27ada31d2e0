"""Settings: each declared once (:mod:`~saml_gate.config.declaration`), read one way
(:mod:`~saml_gate.config.loading`: keyword or flag, then ``SAML_GATE_*``, then the default) and
validated together; the flags, the typed keyword options and the README's tables derive from
the declarations."""
