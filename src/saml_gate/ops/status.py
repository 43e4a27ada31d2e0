"""What the readiness and status endpoints report, from the gate's current state."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from saml_gate.ops.selfcheck import certificate_days_left
from saml_gate.store import MemoryStore, StoreUnavailable

if TYPE_CHECKING:
    from saml_gate.runtime.core import GateCore

READY_PROBE_KEY = "ready-probe"


async def readiness(core: GateCore) -> dict[str, dict[str, Any]]:
    """Each check: ok plus a short reason. Cheap: one store round trip at most."""
    checks: dict[str, dict[str, Any]] = {
        "idp_metadata": {"ok": bool(core.idp.signing_certs), "entity_id": core.idp.entity_id},
    }
    if isinstance(core.store, MemoryStore):
        checks["store"] = {"ok": True, "kind": "memory"}
    else:
        try:
            await core.store.contains(READY_PROBE_KEY)
            checks["store"] = {"ok": True, "kind": "shared"}
        except StoreUnavailable as exc:
            checks["store"] = {"ok": False, "kind": "shared", "reason": str(exc)}
    return checks


def _certificate(pem: bytes, now: float) -> dict[str, Any]:
    subject, days = certificate_days_left(pem, now)
    return {"subject": subject, "days_left": round(days, 1)}


def status(core: GateCore) -> dict[str, Any]:
    from saml_gate import __version__

    s = core.settings
    now = s.clock()
    source = core.idp_source
    if core.devidp is not None:
        metadata: dict[str, Any] = {"source": "development IdP"}
    elif source is not None:
        metadata = {
            "source": "url" if source.is_url else "file or inline",
            "age_seconds": round(now - source.loaded_at, 1) if source.loaded_at else None,
            "last_error": source.last_error,
        }
    else:
        metadata = {}
    return {
        "version": __version__,
        "python": platform.python_version(),
        "base_url": s.base_url,
        "entity_id": s.entity_id,
        "acs_url": s.acs_url,
        "idp": {
            "entity_id": core.idp.entity_id,
            "sso_url": core.idp.sso_url,
            "metadata": metadata,
            "signing_certificates": [_certificate(p, now) for p in core.idp.signing_certs],
        },
        "sp_certificate": _certificate(core.sp_keys.cert_pem, now),
        "store": "memory" if isinstance(core.store, MemoryStore) else "shared (redis)",
        "clock": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "warnings": [message for _, message in core.warnings.collect()]
        + list(core.agreement.findings),
    }
