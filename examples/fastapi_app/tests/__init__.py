"""The FastAPI example's own tests, written on the testing kit (saml_gate.testing)."""
