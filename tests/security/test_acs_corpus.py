"""Every corpus case through the real ACS endpoint, under the gate's default settings (plus the
setting a case is about): a 4xx with a stable code and the generic page, no session cookie, no
redirect (RelayState not followed), exactly one log line giving the reason, nothing fetched.
The positive controls in the same run must sign in.
"""

from __future__ import annotations

import html
import logging
import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from saml_gate.errors import ERRORS
from tests.security.acs import RETURN_PATH, Canary, CorpusKeys, gate_overrides, run_at_acs
from tests.security.catalogue import CORPUS
from tests.security.corpus import Case
from tests.security.forge import VICTIM
from tests.security.positives import R as POSITIVES
from tests.test_okta_fixtures import CASES as OKTA_CASES
from tests.test_okta_fixtures import OktaCase

pytestmark = pytest.mark.anyio
CODE = re.compile(r"<code>([a-z_]+)</code>")


def refusal_code(body: str) -> str:
    found = CODE.findall(body)
    assert len(found) == 1, body[:500]
    return found[0]


async def check_refused(case: Case, run: Any, caplog: pytest.LogCaptureFixture) -> None:
    r = run.response
    code = refusal_code(r.text)
    assert code in case.codes, f"refused with {code}, expected one of {case.codes}"
    assert r.status_code == ERRORS[code].status and 400 <= r.status_code < 500
    assert "location" not in r.headers, "a refusal must not redirect (RelayState followed?)"
    assert "saml_gate_session=" not in "\n".join(r.headers.get_list("set-cookie"))
    if not case.transport.post_twice:  # after a replay, the first sign-in's session lives on
        assert (await run.client.get("/saml/session")).status_code == 401

    records = [
        x
        for x in caplog.records
        if (x.name == "saml_gate" or x.name.startswith("saml_gate."))
        and x.levelno >= logging.WARNING
    ]
    assert len(records) == 1, [x.getMessage() for x in records]
    record = records[0]
    message = record.getMessage()
    assert getattr(record, "error_code", None) == code
    assert code in message and len(message) > len(code) + 20, message
    for secret in ("<saml", "BEGIN CERTIFICATE", "PRIVATE KEY", run.value[:40]):
        assert secret not in message

    # The generic page: the code's title and hint, never the detail or anything from the message.
    assert html.escape(ERRORS[code].title) in r.text
    assert "class=detail" not in r.text
    detail = str(getattr(record, "reason", "") or "")
    public = ERRORS[code].title + ERRORS[code].hint
    if len(detail) > 8 and detail not in public:
        assert html.escape(detail) not in r.text
    for leaked in (VICTIM, "evil", "<saml", run.value[:40]):
        assert leaked not in r.text


async def check_signed_in(case: Case, run: Any) -> None:
    r = run.response
    assert r.status_code == 303, r.text
    assert r.headers["location"] == RETURN_PATH
    # The cookie as set, not from httpx's jar: the jar ages Max-Age in real time, and a case
    # whose session ends one second after the frozen clock must not depend on the machine's speed.
    session = next(
        c for c in r.headers.get_list("set-cookie") if c.startswith("saml_gate_session=")
    )
    me = await run.client.get("/saml/session", headers={"cookie": session.split(";")[0]})
    assert me.status_code == 200, me.text
    assert me.json()["name_id"] == case.name_id


async def run_case(
    case: Case,
    make_harness: Any,
    corpus_keys: CorpusKeys,
    canary: Canary,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="saml_gate")
    h = make_harness(**gate_overrides(case.policy, corpus_keys))
    before = canary.connections
    async with AsyncExitStack() as stack:
        run = await run_at_acs(case, h.gate, h.clock, corpus_keys, canary, stack, caplog)
        if case.expects_refusal:
            await check_refused(case, run, caplog)
        else:
            await check_signed_in(case, run)
    assert canary.connections == before, "the gate fetched a URL named in the message"


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
async def test_attack_through_acs(
    case: Case,
    make_harness: Any,
    corpus_keys: CorpusKeys,
    canary: Canary,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_case(case, make_harness, corpus_keys, canary, caplog)


@pytest.mark.parametrize("case", POSITIVES.cases, ids=[case.id for case in POSITIVES.cases])
async def test_positive_control_through_acs(
    case: Case,
    make_harness: Any,
    corpus_keys: CorpusKeys,
    canary: Canary,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_case(case, make_harness, corpus_keys, canary, caplog)


@pytest.mark.parametrize("stem", sorted(OKTA_CASES))
async def test_real_okta_response_is_accepted(stem: str, tmp_path: Path) -> None:
    okta = OktaCase(stem, tmp_path)
    try:
        r = await okta.post()
        assert r.status_code == 303, r.text
        assert (await okta.client.get("/saml/session")).json()["name_id"] == "testuser@testrsc.com"
    finally:
        await okta.client.aclose()


def test_corpus_size_and_numbering() -> None:
    """At least 70 distinct attack cases, each named after its catalogue number."""
    assert len(CORPUS) >= 70
    assert len({case.id for case in CORPUS}) == len(CORPUS)
    for case in CORPUS:
        assert case.id.startswith(case.number + "-")
        assert case.number == "A8" or 1 <= int(case.number) <= 68
        assert case.expects_refusal == bool(case.codes)
