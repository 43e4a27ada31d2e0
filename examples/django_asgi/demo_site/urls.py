"""URL routes of the example. The gate's own endpoints (/saml/...) never reach Django."""

from django.contrib import admin
from django.urls import path

from examples.django_asgi.demo_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/me", views.me, name="me"),
    # The admin's "Log out" signs out at the gate, in one click: SamlGateUserMiddleware
    # sends it there (signing out of Django alone would be undone by the next request).
    path("admin/", admin.site.urls),
]
