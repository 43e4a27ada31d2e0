"""URL routes of the example. The gate's own endpoints (/saml/...) never reach Django."""

from django.urls import path

from examples.django_asgi.demo_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/me", views.me, name="me"),
]
