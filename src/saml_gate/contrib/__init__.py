"""Framework integrations: :mod:`saml_gate.contrib.fastapi`, :mod:`saml_gate.contrib.django`.

Each module imports its framework, so import the one you use; the gate itself needs neither.
"""
