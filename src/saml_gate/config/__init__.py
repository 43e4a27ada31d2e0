"""Settings: each declared once, validated together, read from keywords and SAML_GATE_*
variables."""
