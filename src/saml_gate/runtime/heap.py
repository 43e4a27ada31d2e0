"""The opt-in ``gc.freeze()`` of the start-up heap (the ``gc_freeze`` setting)."""

from __future__ import annotations

import gc

_heap_frozen = False


def freeze_startup_heap() -> None:
    """``gc.freeze()``, once per process: when the gate starts serving, and in a verification
    worker after its first job.

    The imports (pysaml2's schema modules above all) leave some 80,000 long-lived objects,
    and every full collection walked them with all threads stopped: 20-60 ms, the longest
    event-loop stall the benchmark's sign-in storm measured. Frozen objects are never
    collected as cycles but are still freed by reference counting.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()
