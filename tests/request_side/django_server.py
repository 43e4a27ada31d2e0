"""The Django target, in a process of its own: ``python -m tests.request_side.django_server CFG``.

Django is configured once per process, and the Django example's tests configure it with the
example's settings; this server configures a minimal project of its own (the URLconf below,
whose views report the resource), so it runs apart. It serves ``get_asgi_application()``
wrapped in ``SamlGate`` twice, with uvicorn (the tests' ``UvicornThread``): at the root, and
with ``root_path="/prefix"`` (Django reads it as SCRIPT_NAME). It prints both ports, then
serves until its standard input closes. Errors and tracebacks go to standard error, which the
tests watch.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from tests.request_side.apps import report_body, report_headers


def report(request: Any, resource: str) -> Any:
    from django.http import JsonResponse

    path, method = request.path_info, request.method
    return JsonResponse(
        report_body(resource, path, method), headers=report_headers(resource, path, method)
    )


def _patterns() -> list[Any]:
    from django.urls import re_path

    def to(resource: str) -> dict[str, str]:
        return {"resource": resource}

    return [
        re_path(r"^health$", report, to("health")),
        re_path(r"^static/", report, to("static")),
        re_path(r"^admin(?:/.*)?$", report, to("admin")),
        re_path(r"^api/", report, to("api")),
        re_path(r"^reports/[0-9]+$", report, to("reports")),
        re_path(r"^docs/", report, to("docs")),
        re_path(r"^forms/", report, to("forms")),
        re_path(r"^$", report, to("home")),
        re_path(r"", report, to("page")),
    ]


urlpatterns: list[Any] = []


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="request-side-django-target-not-secret",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"stderr": {"class": "logging.StreamHandler"}},
            "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
        },
    )
    urlpatterns.extend(_patterns())
    from django.core.asgi import get_asgi_application
    from examples.django_asgi.demo_site.asgi import LazyApplication

    from saml_gate import SamlGate
    from tests.interop.servers import UvicornThread, bound_socket
    from tests.request_side.oracle import GATE_POLICY

    django_app = get_asgi_application()
    servers = []
    for root in ("", "/prefix"):
        sock = bound_socket()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        def build(base_url: str = base_url) -> Any:
            return SamlGate(django_app, **config["gate"], base_url=base_url, **GATE_POLICY)

        # LazyApplication answers lifespan, which Django's handler refuses.
        server = UvicornThread(sock, proxy_headers=False, root_path=root)
        servers.append(server.start(LazyApplication(build)))
    print(" ".join(str(s.port) for s in servers), flush=True)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    sys.stdin.read()
    for server in servers:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1])
