"""URL routes of the example. The gate's own endpoints (/saml/...) never reach Django."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from examples.django_asgi.demo_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/me", views.me, name="me"),
    # Signing out of Django alone would be undone by the next request: the gate still knows
    # the person. The admin's "Log out" goes to the gate's sign-out page instead.
    path("admin/logout/", RedirectView.as_view(url="/saml/logout"), name="logout"),
    path("admin/", admin.site.urls),
]
