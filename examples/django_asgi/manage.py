#!/usr/bin/env python
"""Django's command-line utility for the example (``check``, ``diffsettings``, ...).

Serve the site with an ASGI server (see README.md): ``manage.py runserver`` is Django's WSGI
development server and does not go through SamlGate.
"""

import os
import sys
from pathlib import Path


def main() -> None:
    # The settings module is named from the repository root, as uvicorn imports it.
    repo_root = Path(__file__).resolve().parents[2]
    if str(repo_root) not in sys.path:
        sys.path.insert(0, str(repo_root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_asgi.demo_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
