"""Errors the development IdP shows the developer as an HTML page, and quoting values in them."""

from __future__ import annotations

import re
from typing import Final

CONTROL_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]")
"""Characters refused in typed-in values and replaced when quoting a value."""


class Problem(Exception):
    """An error shown to the developer as an HTML page (the text is escaped when shown)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def bad_request(detail: str) -> Problem:
    return Problem(400, "Bad request", detail)


def short(value: str, limit: int = 200) -> str:
    """For quoting a value in an error page: bounded length, printable."""
    value = CONTROL_RE.sub("?", value)
    return value if len(value) <= limit else value[:limit] + "…"
