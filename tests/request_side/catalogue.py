"""The whole request-side corpus, class by class."""

from __future__ import annotations

from tests.request_side import (
    cases_cookies,
    cases_formats,
    cases_headers,
    cases_hosts,
    cases_methods,
    cases_overrides,
    cases_paths,
    cases_relay,
    cases_return_to,
    cases_roots,
    cases_tokens,
    cases_websocket,
)
from tests.request_side.corpus import Case

CLASSES = (
    cases_methods.R,
    cases_overrides.R,
    cases_paths.R,
    cases_formats.R,
    cases_roots.R,
    cases_headers.R,
    cases_hosts.R,
    cases_cookies.R,
    cases_relay.R,
    cases_return_to.R,
    cases_websocket.R,
    cases_tokens.R,
)
CORPUS: tuple[Case, ...] = tuple(case for registry in CLASSES for case in registry.cases)
CASES_BY_ID: dict[str, Case] = {case.id: case for case in CORPUS}
assert len(CASES_BY_ID) == len(CORPUS), "duplicate case ids"
