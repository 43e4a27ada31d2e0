"""Background jobs end when the gate stops, whatever their code does with a cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import anyio
import pytest

from saml_gate.background import BackgroundJob

pytestmark = pytest.mark.anyio


async def test_a_job_that_loses_its_cancellation_still_stops() -> None:
    """A client library can swallow a cancellation (asyncio.wait_for on Python 3.11 when a
    result races it; redis-py turning it into an error): the job's loop then sleeps on, and
    stop() must not wait for it forever."""
    rounds = 0

    async def retrying() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if rounds > 1:
                    raise
                # the first cancellation is lost, as inside a client library

    job = BackgroundJob(retrying)
    job.start()
    await asyncio.sleep(0)
    with anyio.fail_after(30):  # a hang guard, not a timing assertion
        await job.stop()
    assert rounds == 2


async def test_stop_passes_its_callers_cancellation_on() -> None:
    """A deadline around stop() still ends the caller: only the job's own cancellation is
    absorbed."""

    keep_going = True

    async def stubborn() -> None:
        while keep_going:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)

    job = BackgroundJob(stubborn)
    job.start()
    await asyncio.sleep(0)
    with anyio.move_on_after(0.2) as scope:
        await job.stop()
    assert scope.cancelled_caught
    keep_going = False  # let it end, so the test leaves no task behind
    await asyncio.sleep(0.2)
