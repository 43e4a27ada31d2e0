"""The real frameworks behind the proxy targets: their processes, started once per module.

* ``sinatra`` and ``rails`` (:file:`upstreams/ruby_apps.rb`): one Ruby process, two Puma
  servers: Rack 2.2's ``Rack::MethodOverride`` under a Sinatra classic app, and ActionDispatch
  6.1's router (Rails-style routes with ``(.:format)``) behind ``Rack::MethodOverride``;
* ``symfony`` and ``laravel`` (:file:`upstreams/php_router.php`): PHP 8.2's built-in server, one
  process each, with Symfony HttpFoundation 5.4's method resolution (parameter override on) or
  Laravel 8's ``Request::capture()``.

They are Debian's packages (``ruby-sinatra``, ``ruby-actionpack``, ``puma``, ``php-cli``,
``php-symfony-http-foundation``, ``php-symfony-routing``, ``php-illuminate-http``,
``php-illuminate-routing``; ``.ci/run`` installs them), asked as they are: what each answers
is what that framework runs for the bytes the gate forwarded. Their standard error (Puma's
errors, PHP's warnings) is watched like the other servers' logs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

from tests.interop.servers import free_port, http_ok, stop_process, wait_until

HERE: Final = Path(__file__).resolve().parent / "upstreams"
RUBY: Final = ("sinatra", "rails")
PHP: Final = ("symfony", "laravel")
NAMES: Final = RUBY + PHP
#: The Debian packages of each (``.ci/run`` installs them).
PACKAGES: Final = {
    "ruby": "ruby-sinatra ruby-actionpack puma",
    "php": "php-cli php-symfony-http-foundation php-symfony-routing php-illuminate-http"
    " php-illuminate-routing",
}
_PHP_SOURCES: Final = (
    "Symfony/Component/HttpFoundation",
    "Symfony/Component/Routing",
    "Illuminate/Http",
    "Illuminate/Routing",
)
#: What the servers write that is no problem: PHP's built-in server logs every connection, and
#: Puma says why it answered 400 to a request it cannot parse (a 4 KB method).
_ROUTINE: Final = re.compile(
    r"^\[[^]]+\] (PHP [\d.]+ Development Server|[\d.:]+ (Accepted|Closing))"
    r"|^[\d-]+ [\d:]+ [+-]\d{4} HTTP parse error, malformed request:"
)


class RealUpstreams:
    """Starts each framework's process on first use; :meth:`url` of each, errors, stop."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._urls: dict[str, str] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: dict[Path, int] = {}

    def url(self, name: str) -> str:
        if name not in self._urls:
            if name in RUBY:
                self._start_ruby()
            elif name in PHP:
                self._start_php(name)
            else:
                raise KeyError(name)
        return self._urls[name]

    @staticmethod
    def _need(language: str, present: bool) -> None:
        if not present:
            pytest.skip(f"the {language} upstreams need: apt-get install {PACKAGES[language]}")

    def _start_ruby(self) -> None:
        self._need("ruby", shutil.which("ruby") is not None)
        log = self.state_dir / "ruby.log"
        process = subprocess.Popen(
            ["ruby", str(HERE / "ruby_apps.rb")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            env={**os.environ, "RACK_ENV": "production"},
        )
        self._processes.append(process)
        assert process.stdout is not None
        ports = process.stdout.readline().split()
        if len(ports) != len(RUBY):
            stop_process(process)
            self._need("ruby", "LoadError" not in log.read_text())
            raise RuntimeError(f"the Ruby upstreams did not start:\n{log.read_text()[-3000:]}")
        for name, port in zip(RUBY, ports, strict=True):
            self._urls[name] = f"http://127.0.0.1:{int(port)}"
        self._logs[log] = 0

    def _start_php(self, name: str) -> None:
        php = Path("/usr/share/php")
        self._need(
            "php", bool(shutil.which("php")) and all((php / s).is_dir() for s in _PHP_SOURCES)
        )
        docroot = self.state_dir / "php-docroot"  # empty: every request goes to the router
        docroot.mkdir(exist_ok=True)
        log = self.state_dir / f"{name}.log"
        port = free_port()
        command = [
            "php",
            "-d",
            "error_reporting=-1",
            "-d",
            "display_errors=0",
            "-d",
            "log_errors=1",  # to standard error, never into an answer
            "-S",
            f"127.0.0.1:{port}",
            "-t",
            str(docroot),
            str(HERE / "php_router.php"),
        ]
        env = {**os.environ, "UPSTREAM_FRAMEWORK": name}
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self._processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(http_ok(url + "/health"), f"the {name} upstream", process, log)
        self._urls[name] = url
        self._logs[log] = 0

    def mark(self) -> None:
        """Forget what the processes wrote so far (call before each case)."""
        for log in self._logs:
            self._logs[log] = log.stat().st_size

    def errors(self) -> list[str]:
        """What the processes wrote to standard error since :meth:`mark`, routine lines aside."""
        found = []
        for log, offset in self._logs.items():
            with log.open("rb") as file:
                file.seek(offset)
                text = file.read().decode("utf-8", "replace")
            lines = [line for line in text.splitlines() if not _ROUTINE.match(line)]
            if any(line.strip() for line in lines):
                found.append(f"{log.name}:\n" + "\n".join(lines)[-3000:])
        return found

    def stop(self) -> None:
        for process in self._processes:
            if process.stdin is not None:
                process.stdin.close()
            stop_process(process)
