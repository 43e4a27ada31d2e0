"""The proxy's own error pages (502, 504) show their detail to a loopback client not behind a
proxy, as the gate's pages do, and to nobody else unless ``debug`` is on: through a real
``saml-gate proxy`` in front of an upstream that is not there."""

from __future__ import annotations

from tests.test_cli import Server, cli_env, config, free_port, keys

__all__ = ["config", "keys"]  # fixtures: an IdP's metadata file and keys


def test_a_502_shows_its_detail_to_a_loopback_client_only(config: dict[str, str]) -> None:
    port, gone = free_port(), free_port()  # nothing listens on `gone`
    server = Server(
        "proxy",
        "--upstream",
        f"http://127.0.0.1:{gone}",
        "--public-paths",
        "/",
        "--base-url",
        f"http://127.0.0.1:{port}",
        env=cli_env(**config),
        port=port,
    )
    try:
        local = server.get("/page", headers={"accept": "text/html"})
        local_api = server.get("/page", headers={"accept": "application/json"})
        behind = server.get(
            "/page", headers={"accept": "application/json", "x-forwarded-for": "203.0.113.7"}
        )
    finally:
        server.stop()
    assert local.status_code == local_api.status_code == behind.status_code == 502
    assert "<p class=detail>" in local.text and "ConnectError" in local.text
    assert local_api.json()["error"] == "upstream_unavailable"
    assert "ConnectError" in local_api.json()["detail"]
    assert behind.json()["error"] == "upstream_unavailable" and "detail" not in behind.json()
