"""XSD validation with the SAML 2.0 schemas that pysaml2 ships, loaded offline once."""

from __future__ import annotations

import importlib.util
import queue
from functools import cache
from pathlib import Path
from typing import Any, cast

from lxml import etree

from saml_gate.errors import GateError

POOL_SIZE = 4
"""Validations at once in a process that verifies in threads (``verify_isolation="thread"``:
``verify_slots`` at a time). A verification child (and its zygote) validates one document at a
time: :func:`one_validation_at_a_time` gives it one validator (each is about 0.6 MB)."""
_pool_size = POOL_SIZE


class _LocalSchemas(etree.Resolver):
    """Resolve every schemaLocation (local name or w3.org URL) to pysaml2's bundled copy."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self._folder = folder

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        name = (system_url or "").rsplit("/", 1)[-1]
        candidate = self._folder / name
        if name and candidate.is_file():
            return cast(Any, self).resolve_filename(str(candidate), context)
        raise LookupError(f"schema {system_url!r} is not available offline")


def _schema_folder() -> Path:
    """pysaml2's schemas, found without importing pysaml2 (the verification child needs none)."""
    spec = importlib.util.find_spec("saml2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pysaml2 is not installed: its SAML schemas are needed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "schemas"


class SamlSchema:
    """Validates a Response or a standalone Assertion, with validators borrowed from a pool.

    A validator serves one thread at a time, and none is built while requests are served:
    lxml swaps libxml2's process-wide document loader around a schema build, so a build in one
    worker thread while another thread parses can lose the build's ``xs:import`` (the
    benchmark's sign-in storm saw "EncryptedData does not resolve" refuse a valid sign-in).
    The pool is filled once, in the thread that constructs it (at start-up), and a thread
    that finds it empty waits for a validator to come back.
    """

    def __init__(self, size: int = POOL_SIZE) -> None:
        self._pool: queue.SimpleQueue[etree.XMLSchema] = queue.SimpleQueue()
        for _ in range(size):
            self._pool.put(_build_validator())

    def error(self, element: etree._Element) -> str | None:
        """None when valid, else the first schema error (line and message, no content)."""
        validator = self._pool.get()
        try:
            if validator.validate(element):
                return None
            errors: list[Any] = list(cast(Any, validator.error_log))
        finally:
            self._pool.put(validator)
        return f"line {errors[-1].line}: {errors[-1].message}" if errors else "invalid"

    def check(self, element: etree._Element) -> None:
        """Return when valid; GateError ``schema_invalid`` with the first error otherwise."""
        error = self.error(element)
        if error is not None:
            raise GateError("schema_invalid", error)


def _build_validator() -> etree.XMLSchema:
    folder = _schema_folder()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalSchemas(folder))
    doc = etree.parse(str(folder / "saml-schema-protocol-2.0.xsd"), parser)
    return etree.XMLSchema(doc)


@cache
def saml_schema() -> SamlSchema:
    return SamlSchema(_pool_size)


def one_validation_at_a_time() -> None:
    """This process validates one document at a time (a verification child, whose loop answers
    one request after the other, or the zygote that forks them): :func:`saml_schema` builds
    one validator. To be called before it first is."""
    global _pool_size
    _pool_size = 1
