"""A minimal Django project served through SamlGate (see README.md in this folder)."""
