"""The whole corpus, in catalogue order."""

from __future__ import annotations

from tests.security import (
    cases_binding,
    cases_encryption,
    cases_parser,
    cases_semantics,
    cases_signature,
    cases_structure,
    cases_xsw,
)
from tests.security.corpus import Case

SECTIONS = (
    cases_signature.R,
    cases_xsw.R,
    cases_structure.R,
    cases_parser.R,
    cases_semantics.R,
    cases_encryption.R,
    cases_binding.R,
)
CORPUS: tuple[Case, ...] = tuple(case for section in SECTIONS for case in section.cases)
CASES_BY_ID: dict[str, Case] = {case.id: case for case in CORPUS}
assert len(CASES_BY_ID) == len(CORPUS), "duplicate case ids"
