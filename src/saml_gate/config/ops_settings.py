"""Settings of operation, declared: the shared store, running and watching the gate, and where
its CPU work runs.

Each group is a frozen dataclass of declared fields (see :mod:`saml_gate.config.declaration`);
:class:`~saml_gate.config.settings.GateSettings` inherits them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from saml_gate.config import checks
from saml_gate.config.declaration import SECONDS, setting
from saml_gate.config.kinds import CALLABLE, HOOKS, OBJECT, TEXT
from saml_gate.config.value_types import StoreOutage, VerifyIsolation

if TYPE_CHECKING:
    from saml_gate.config.value_types import ErrorPageHook


@dataclass(frozen=True, kw_only=True)
class StorageFields:
    """The shared state (replay cache, revocations) and its failure policy."""

    GROUP: ClassVar[str] = "storage"
    TITLE: ClassVar[str] = "The shared store: replay cache, sign-outs, large identities"

    store: str = setting(
        "memory",
        help="shared state: `memory` (one process) or a Redis URL (needs the `redis` extra):"
        " `redis://host:6379/0`, `rediss://` (TLS), `unix://`, `redis+cluster://h:p,h:p`,"
        " `redis+sentinel://h:p/service` (see Operating); `SamlGate(store=...)` also takes a"
        " `redis.asyncio.Redis` client or a `saml_gate.Store`",
        keyword_type="str | Store | Redis",
        check=checks.store_location,
    )
    store_prefix: str = setting(
        "saml-gate:",
        help="prefix of every Redis key, so several gates can share one Redis",
        check=checks.key_prefix,
    )
    store_timeout: float = setting(
        0.5,
        help="seconds a store call may take (connect, reply, pool wait) before it counts as failed",
        range=(0.05, 30),
        unit=SECONDS,
    )
    store_outage: StoreOutage = setting(  # noqa: RUF009 (returns a field)
        "refuse",
        help="while the store is unreachable and this process cannot check revocations:"
        " `refuse` signed-in requests with 503, or `serve` valid session cookies (sign-outs"
        " made on other gates during the outage are then not enforced; see Security model); a"
        " sign-out this process knows is enforced either way, new sign-ins get 503 either way",
        choices=get_args(StoreOutage),
    )


@dataclass(frozen=True, kw_only=True)
class OpsFields:
    """Operating the gate: proxies, error details, hooks, metrics, status."""

    GROUP: ClassVar[str] = "ops"
    TITLE: ClassVar[str] = "Operating: proxies, error details, hooks, metrics, status"

    trusted_proxies: tuple[str, ...] = setting(
        ("127.0.0.1", "::1"),
        help="proxies (addresses or networks, `*` for any) whose `X-Forwarded-For` /"
        " `Forwarded` the gate believes about the client address (logs, proxy mode,"
        " `check_subject_address`); error details, status and metrics are for loopback clients"
        " not behind any proxy, whatever this says",
        check=checks.networks,
    )
    debug: bool = setting(False, help="show error details to every client")
    on_event: tuple[Callable[..., Any], ...] = setting(
        (),
        help="callables (sync or async) given every auth event; a failing hook is logged, never"
        " breaks a request",
        kind=HOOKS,
        env=False,
        compare=False,
    )
    on_error: ErrorPageHook | None = setting(  # noqa: RUF009 (returns a field)
        None,
        help="`on_error(connection, error)` for branded error pages: given the request (a"
        " Starlette `HTTPConnection`) and the `GateError` (`.code`, `.status`, `.info.title`),"
        " it returns a Starlette `Response`, or `None` for the gate's own page; called for"
        " every error page and JSON error body, not for the sign-in redirect, the 401 to an"
        " API call or a refused WebSocket",
        kind=CALLABLE,
        env=False,
        compare=False,
        shown_default="none",
    )
    metrics_path: str | None = setting(
        None,
        help="serve Prometheus metrics at this path (needs the `metrics` extra)",
        kind=TEXT,
        check=checks.url_path,
        shown_default="off",
    )
    metrics_public: bool = setting(
        False,
        help="let any client scrape `metrics_path` (default: loopback clients not behind a proxy)",
    )
    metrics_registry: Any = setting(  # noqa: RUF009 (returns a field)
        None,
        help="a `prometheus_client.CollectorRegistry` to register the gate's metrics into",
        kind=OBJECT,
        env=False,
        compare=False,
    )
    status_group: str | None = setting(
        None,
        help="members of this group may read `/saml/status` from anywhere",
        kind=TEXT,
    )


@dataclass(frozen=True, kw_only=True)
class PerformanceFields:
    """Where the CPU work of sign-ins runs, and the garbage collector."""

    GROUP: ClassVar[str] = "performance"
    TITLE: ClassVar[str] = "Performance: where Responses are verified, garbage collection"
    ADVANCED: ClassVar[bool] = True

    verify_isolation: VerifyIsolation = setting(  # noqa: RUF009 (returns a field)
        "process",
        help="where Responses are verified and AuthnRequests built: `process` (child processes"
        " started with the gate, so the event loop never waits for the GIL behind XML work and"
        " a crash on hostile input ends a child, not your app) or `thread` (threads of the"
        " app's process, for platforms without child processes; the gate also falls back to"
        " it, with a warning, when it cannot start one)",
        choices=get_args(VerifyIsolation),
    )
    verify_concurrency: int = setting(
        0,
        help="Responses verified at once: child processes with `process`, worker threads with"
        " `thread` (there the work is mostly GIL-bound: more threads add little throughput"
        " and slow the event loop). `0`: one child per CPU core this process may use with"
        " `process`, at most 8 (so a sign-in storm uses every core), one thread with"
        " `thread`; with `--workers N`, each server process starts its own",
        range=(0, 64),
        shown_default="`0` (the cores)",
    )
    gc_freeze: bool = setting(
        False,
        help="call `gc.freeze()` once when the gate starts serving (and in each verification"
        " child after its first job): the tens of thousands of objects the imports and start-up"
        " leave (the XML schemas in a child) are then never walked by the cyclic garbage"
        " collector, whose full passes otherwise stall the event loop 20-60 ms during a sign-in"
        " storm. Turn it on when p99 latency under sign-in load matters; it freezes the app's"
        " start-up objects too (never collected as cycles, still freed by reference counting),"
        " so it is off by default",
    )

    @property
    def verify_slots(self) -> int:
        """``verify_concurrency`` with ``0`` resolved: what the engine runs at once."""
        if self.verify_concurrency:
            return self.verify_concurrency
        if self.verify_isolation == "thread":
            return 1
        return min(usable_cores(), AUTO_CHILDREN_AT_MOST)


AUTO_CHILDREN_AT_MOST = 8
"""``verify_concurrency=0`` starts at most this many children (each about 40 MB): what the pool
keeps idle between sign-ins (``runtime.workers``), so none is ended and started again."""


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
