"""Real reverse proxies (Debian's nginx and Caddy) in front of an echo upstream, asking a gate
(``/saml/auth``) about every request: the harness of ``tests/test_forward_auth_proxies.py``."""
