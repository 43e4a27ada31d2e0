"""Verification children forked from one zygote (Linux): what they share, hold and survive.

Each test has a pool of its own (an empty one, with its own zygote) and drives sign-ins through
the real ACS endpoint; what the processes are and hold is read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from saml_gate.runtime import worker_processes, workers
from saml_gate.runtime.workers import WorkerPool
from tests.conftest import HarnessFactory
from tests.support import Harness
from tests.test_workers import sign_in_crashing_its_child

pytestmark = pytest.mark.anyio
needs_zygote = pytest.mark.skipif(
    not worker_processes.FORKS, reason="children are forked by a zygote on Linux only"
)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def memory_kb(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup: Private_Dirty, Shared_Dirty, Pss... in kB."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {line.split(":")[0]: int(line.split()[1]) for line in lines}


async def gone(pid: int) -> bool:
    """Whether the process ends and is reaped (by its parent) within 10 s."""
    with anyio.move_on_after(10):
        while Path(f"/proc/{pid}").exists():
            await anyio.sleep(0.02)
    return not Path(f"/proc/{pid}").exists()


def open_files(pid: int) -> dict[int, str]:
    folder = Path(f"/proc/{pid}/fd")
    return {int(fd.name): os.readlink(fd) for fd in folder.iterdir()}


@contextlib.asynccontextmanager
async def signed_in_pool(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Harness, WorkerPool]]:
    """A gate with a pool of its own, warmed by the start-up (two children), after a sign-in;
    the pool is closed when the block ends."""
    monkeypatch.setattr(workers, "_shared", None)
    h = make_harness(verify_concurrency=2)
    await h.gate.start()
    pool = h.gate.core.workers
    assert pool is not None
    with anyio.fail_after(60):
        while len(pool._idle) < 2:
            await anyio.sleep(0.02)
    r = await h.login()
    assert r.status_code == 303, r.text
    try:
        yield h, pool
    finally:
        pool.close()


@needs_zygote
async def test_children_are_forked_from_the_zygote_and_share_its_pages(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zygote is the app's child and the children's parent; a child's own memory after a
    sign-in is a few MB, the rest (imports, validators, the spec's verifiers) the zygote's."""
    async with signed_in_pool(make_harness, monkeypatch) as (_h, pool):
        zygote = pool.launcher.zygote_pid
        assert zygote is not None and parent_of(zygote) == os.getpid()
        children = [child.process.pid for child in pool._idle]
        assert len(children) == 2
        for pid in children:
            assert parent_of(pid) == zygote
            memory = memory_kb(pid)
            assert memory["Shared_Dirty"] > 10_000, memory  # the zygote's heap, about 15 MB
            assert memory["Private_Dirty"] < memory["Shared_Dirty"] / 2, memory
    assert all([await gone(pid) for pid in [zygote, *children]])  # the zygote reaped them


@needs_zygote
async def test_a_child_holds_only_its_own_pipes_and_the_zygote_only_its_socket(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with signed_in_pool(make_harness, monkeypatch) as (_h, pool):
        children = [child.process.pid for child in pool._idle]
        pipes = []
        for pid in children:
            files = open_files(pid)
            # stdin (/dev/null), stdout (a copy of stderr), stderr, then its requests and answers
            assert sorted(files) == [0, 1, 2, 3, 4], files
            assert files[0] == os.devnull and files[1] == files[2]
            assert not any(target.startswith("socket:") for target in files.values()), files
            pipes += [files[3], files[4]]
        assert len(set(pipes)) == 4  # each child its own pipes
        zygote = pool.launcher.zygote_pid
        assert zygote is not None
        files = open_files(zygote)
        assert sorted(files) == [0, 1, 2, 3], files
        assert files[3].startswith("socket:") and not set(pipes) & set(files.values())


@needs_zygote
async def test_the_zygote_is_started_again_when_it_died(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its children go on serving; the next child comes from a new zygote."""
    async with signed_in_pool(make_harness, monkeypatch) as (h, pool):
        first = pool.launcher.zygote_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        h.client.cookies.clear()
        r = await h.login()  # an idle child of the dead zygote
        assert r.status_code == 303, r.text
        for child in pool._idle:
            child.close()
        pool._idle.clear()
        h.client.cookies.clear()
        r = await h.login()
        assert r.status_code == 303, r.text
        second = pool.launcher.zygote_pid
        assert second is not None and second != first
        assert [parent_of(child.process.pid) for child in pool._idle] == [second]


async def test_without_a_zygote_each_child_is_a_new_program(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there are no pidfds (macOS, the BSDs) the app starts each child itself."""
    monkeypatch.setattr(worker_processes, "FORKS", False)
    async with signed_in_pool(make_harness, monkeypatch) as (_h, pool):
        assert pool.launcher.zygote_pid is None
        children = [child.process.pid for child in pool._idle]
        assert len(children) == 2 and all(parent_of(pid) == os.getpid() for pid in children)


@needs_zygote
async def test_a_child_that_failed_retires_its_zygote_and_its_siblings(
    make_harness: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zygote's children share its address-space layout and stack canary, so a crash could
    tell an attacker about its siblings: after one, the next child comes from a new zygote (a
    new program) and no sibling of the failed child is used again."""
    async with signed_in_pool(make_harness, monkeypatch) as (h, pool):
        first = pool.launcher.zygote_pid
        siblings = {child.process.pid for child in pool._idle}
        h.client.cookies.clear()
        r = await sign_in_crashing_its_child(h)
        assert r.status_code == 400, r.text
        h.client.cookies.clear()
        r = await h.login()
        assert r.status_code == 303, r.text
        second = pool.launcher.zygote_pid
        assert second is not None and second != first
        now = {child.process.pid for child in pool._idle}
        assert now and not now & siblings
        assert all(parent_of(pid) == second for pid in now)
        assert all([await gone(pid) for pid in siblings])  # ended, and reaped by the old zygote
    assert first is not None and await gone(first)  # which exited then, and was reaped
