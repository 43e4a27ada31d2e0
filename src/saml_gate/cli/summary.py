"""What a server command prints before serving: where the gate is, which IdP it trusts, where
the setup sheet is and what to do next; with ``--ngrok``, the setup sheet itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saml_gate.config.checks import is_url

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings
    from saml_gate.middleware import SamlGate


def idp_line(settings: GateSettings, gate: SamlGate | None) -> str:
    """The IdP the gate trusts: the development IdP, or the metadata's entity ID and source."""
    if settings.dev_idp:
        return "the embedded DEVELOPMENT IdP (test users; never in production)"
    saml = gate.core.saml if gate is not None and gate.core.loaded else None
    source = saml.source if saml is not None else None
    from_url = source.is_url if source is not None else is_url(settings.idp_metadata or "")
    where = "its metadata URL" if from_url else "a file/XML"
    entity_id = saml.idp.entity_id if saml is not None else "the IdP of its metadata"
    return f"{entity_id} (metadata from {where})"


def start_summary(
    settings: GateSettings, gate: SamlGate | None, *, what: str, listen: str, workers: int
) -> str:
    """Where the gate is, which IdP it trusts, where the setup sheet is, and what to do next."""
    s = settings
    sheet = s.base_url + s.prefix + "/setup"
    next_step = (
        f"open {s.base_url}/ in a browser and pick a test user"
        if s.dev_idp
        else f"enter the setup sheet's values in the IdP (once), then open {s.base_url}/"
    )
    processes = f", {workers} workers" if workers > 1 else ""
    later = ": the values for a real IdP, later" if s.dev_idp else ""
    return (
        f"\n  saml-gate: {what} at {s.base_url}/ (listening on {listen}{processes})\n"
        f"  IdP:         {idp_line(s, gate)}\n"
        f"  Setup sheet: {sheet} (or: saml-gate setup){later}\n"
        f"  Next:        {next_step}\n"
    )


def setup_sheet(settings: GateSettings, gate: SamlGate | None) -> str:
    """The setup sheet, as ``saml-gate setup`` prints it, for the gate's own SP keys."""
    from saml_gate.ops.setup_sheet import SetupSheet
    from saml_gate.saml.sp import load_sp_keys

    if gate is not None and gate.core.loaded:
        cert = gate.core.saml.keys.cert_pem
    else:
        cert = load_sp_keys(settings).cert_pem
    return SetupSheet.build(settings, cert).as_text()
