"""The Django project package: settings, URLs, views and the ASGI entry point."""
