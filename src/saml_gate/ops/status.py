"""What the readiness and status endpoints report, from the facts they are given."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from saml_gate.ops.certificates import certificate_days_left
from saml_gate.store import MemoryStore, Store, StoreUnavailable

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings
    from saml_gate.saml.idp import IdpInfo

READY_PROBE_KEY = "ready-probe"


async def readiness(idp: IdpInfo, store: Store) -> dict[str, dict[str, Any]]:
    """Each check: ok plus a short reason. Cheap: one store round trip at most."""
    checks: dict[str, dict[str, Any]] = {
        "idp_metadata": {"ok": bool(idp.signing_certs), "entity_id": idp.entity_id},
    }
    if isinstance(store, MemoryStore):
        checks["store"] = {"ok": True, "kind": "memory"}
    else:
        try:
            await store.contains(READY_PROBE_KEY)
            checks["store"] = {"ok": True, "kind": "shared"}
        except StoreUnavailable as exc:
            checks["store"] = {"ok": False, "kind": "shared", "reason": str(exc)}
    return checks


def _certificate(pem: bytes, now: float) -> dict[str, Any]:
    subject, days = certificate_days_left(pem, now)
    return {"subject": subject, "days_left": round(days, 1)}


def status(
    settings: GateSettings,
    idp: IdpInfo,
    sp_cert: bytes,
    metadata: Mapping[str, Any],
    store: Store,
    warnings: list[str],
) -> dict[str, Any]:
    """``/saml/status``: ``metadata`` says where the IdP metadata came from and how old it is."""
    from saml_gate import __version__

    s = settings
    now = s.clock()
    return {
        "version": __version__,
        "python": platform.python_version(),
        "base_url": s.base_url,
        "entity_id": s.entity_id,
        "acs_url": s.acs_url,
        "idp": {
            "entity_id": idp.entity_id,
            "sso_url": idp.sso_url,
            "metadata": dict(metadata),
            "signing_certificates": [_certificate(p, now) for p in idp.signing_certs],
        },
        "sp_certificate": _certificate(sp_cert, now),
        "store": "memory" if isinstance(store, MemoryStore) else "shared (redis)",
        "clock": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "warnings": warnings,
    }
