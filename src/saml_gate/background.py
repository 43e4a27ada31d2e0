"""A background job of the gate: started in the running event loop, cancelled at shutdown.

A leaf: it imports nothing of the package, so the session, ops and runtime layers all use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final

#: Seconds a stopping job gets to end before it is cancelled again.
_CANCEL_AGAIN_AFTER: Final = 0.5


class BackgroundJob:
    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start it unless it is running (again, once it has finished); call from a running
        event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the job and wait for it to end. Only the job's own cancellation is
        absorbed: a cancellation of the caller (a shutdown deadline) still reaches it."""
        task, self._task = self._task, None
        if task is None:
            return
        # Cancelled again until it ends: a cancellation can be lost on the way (redis-py turning
        # it into an error, asyncio.wait_for on Python 3.11 swallowing one that races a result).
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=_CANCEL_AGAIN_AFTER)
        if not task.cancelled():
            task.result()  # the job's own error, if it failed while stopping


def raise_if_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop. A retry loop calls it where it
    catches errors: a client library (redis-py) may turn a cancellation into an error of its
    own, and a loop that then retries would run on after shutdown (and hang its stop)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
