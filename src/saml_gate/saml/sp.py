"""pysaml2 wiring: the SP's keys, its metadata and the requests it sends (sign-in, logout).

pysaml2 is used for what it does well and what is not on the hot path: the signed
LogoutRequests and LogoutResponses of Single Logout (its client built on the first of them).
The SP EntityDescriptor is built here with lxml, AuthnRequests, built on every sign-in start, by
:mod:`saml_gate.saml.outgoing`. It never reads what the IdP
sends: Responses go to :mod:`saml_gate.saml.response`, logout messages to
:mod:`saml_gate.saml.logout`.
pysaml2's logging is quieted by :func:`saml_gate.saml.process_policy.install_process_policy`.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import IdpInfo
from saml_gate.saml.outgoing import AuthnRequests
from saml_gate.saml.pem_keys import SpKeys
from saml_gate.user import SamlUser

log = logging.getLogger("saml_gate")


def pem_or_file(setting: str, value: str, marker: str) -> tuple[bytes, str | None]:
    """(PEM bytes, path if the value was a path)."""
    if marker in value:
        return value.encode(), None
    path = Path(value).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(setting, f"is neither PEM text nor a readable file: {exc}") from exc
    if marker.encode() not in data:
        raise ConfigError(setting, f"{path} does not hold a PEM {marker.split()[-1].lower()}")
    return data, str(path)


@functools.lru_cache(maxsize=16)
def _check_key_pair(key_pem: bytes, cert_pem: bytes) -> None:
    """Raise ConfigError unless the key loads and the certificate is its. Cached: loading an RSA
    key validates it (~36 ms), and tests and workers build many gates with one key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError("sp_key", f"cannot load the SP key pair: {exc}") from exc
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ConfigError("sp_cert", "the certificate does not match sp_key")


def load_sp_keys(settings: GateSettings) -> SpKeys:
    """The SP key pair from settings, or a development pair generated once in ``state_dir``."""
    if bool(settings.sp_key) != bool(settings.sp_cert):
        missing = "sp_cert" if settings.sp_key else "sp_key"
        raise ConfigError(missing, "sp_key and sp_cert must be given together")
    if settings.sp_key and settings.sp_cert:
        key_pem, key_path = pem_or_file("sp_key", settings.sp_key, "PRIVATE KEY")
        cert_pem, cert_path = pem_or_file("sp_cert", settings.sp_cert, "BEGIN CERTIFICATE")
    else:
        from saml_gate.saml.keys import load_or_create_keypair

        directory = Path(settings.state_dir).expanduser()
        pair, created = load_or_create_keypair(directory, "sp", "saml-gate development SP")
        if created:
            log.warning(
                "saml-gate generated a development SP key pair in %s; set sp_key and sp_cert"
                " for production (the IdP must know the certificate)",
                directory,
            )
        key_pem, cert_pem = pair.key_pem, pair.cert_pem
        key_path = str(directory / "sp.key.pem")
        cert_path = str(directory / "sp.cert.pem")
    _check_key_pair(key_pem, cert_pem)
    if key_path is None or cert_path is None:
        tmp = Path(tempfile.mkdtemp(prefix="saml-gate-"))
        os.chmod(tmp, 0o700)
        key_path = key_path or str(tmp / "sp.key.pem")
        cert_path = cert_path or str(tmp / "sp.cert.pem")
        for path, data in ((key_path, key_pem), (cert_path, cert_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    return SpKeys(key_pem=key_pem, cert_pem=cert_pem, key_path=key_path, cert_path=cert_path)


def sp_config(settings: GateSettings, keys: SpKeys, sign_requests: bool) -> dict[str, Any]:
    """pysaml2's SP configuration for this gate (without IdP metadata)."""
    config: dict[str, Any] = {
        "entityid": settings.entity_id,
        # Placeholder so pysaml2 never looks for the xmlsec1 program; nothing here verifies.
        "crypto_backend": "XMLSecurity",
        "key_file": keys.key_path,
        "cert_file": keys.cert_path,
        "encryption_keypairs": [{"key_file": keys.key_path, "cert_file": keys.cert_path}],
        "allow_unknown_attributes": True,
        "accepted_time_diff": int(settings.clock_skew),
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(settings.acs_url, X.BINDING_HTTP_POST)],
                    # Both: Okta posts its LogoutResponse, other IdPs redirect.
                    "single_logout_service": [
                        (settings.slo_url, X.BINDING_HTTP_REDIRECT),
                        (settings.slo_url, X.BINDING_HTTP_POST),
                    ],
                },
                "name_id_format": [settings.name_id_format],
                "name_id_policy_format": settings.name_id_format,
                "name_id_format_allow_create": True,
                "want_response_signed": settings.want_response_signed,
                "want_assertions_signed": settings.want_assertions_signed,
                "want_assertions_or_response_signed": True,
                "authn_requests_signed": sign_requests,
                "allow_unsolicited": settings.allow_idp_initiated,
                "signing_algorithm": X.RSA_SHA256,
                "digest_algorithm": X.DIGEST_SHA256,
                "force_authn": settings.force_authn,
            }
        },
    }
    return config


def sp_metadata_xml(settings: GateSettings, keys: SpKeys, sign_requests: bool) -> bytes:
    """The SP EntityDescriptor (unsigned), indented, with ``md:`` / ``ds:`` prefixes declared
    once at the top. Needs no IdP metadata: Okta wants these values first. Built here rather
    than by pysaml2 (byte for byte what pysaml2's ``entity_descriptor`` of :func:`sp_config`
    gave, which tests/test_differential.py checks), so the app's process never imports it."""
    from lxml import etree

    md = f"{{{X.NS_MD}}}"
    ds = f"{{{X.NS_DS}}}"
    root = etree.Element(
        md + "EntityDescriptor",
        {"entityID": settings.entity_id},
        nsmap={"md": X.NS_MD, "ds": X.NS_DS},
    )
    sp = etree.SubElement(root, md + "SPSSODescriptor")
    sp.set("protocolSupportEnumeration", X.NS_SAMLP)
    sp.set("AuthnRequestsSigned", "true" if sign_requests else "false")
    sp.set("WantAssertionsSigned", "true" if settings.want_assertions_signed else "false")
    certificate = "".join(
        line.strip() for line in keys.cert_pem.decode().splitlines() if "-----" not in line
    )
    for use in ("signing", "encryption"):
        key_info = etree.SubElement(
            etree.SubElement(sp, md + "KeyDescriptor", {"use": use}), ds + "KeyInfo"
        )
        etree.SubElement(
            etree.SubElement(key_info, ds + "X509Data"), ds + "X509Certificate"
        ).text = certificate
    for binding in (X.BINDING_HTTP_REDIRECT, X.BINDING_HTTP_POST):  # Okta posts, others redirect
        etree.SubElement(
            sp, md + "SingleLogoutService", {"Binding": binding, "Location": settings.slo_url}
        )
    etree.SubElement(sp, md + "NameIDFormat").text = settings.name_id_format
    etree.SubElement(
        sp,
        md + "AssertionConsumerService",
        {"Binding": X.BINDING_HTTP_POST, "Location": settings.acs_url, "index": "1"},
    )
    etree.indent(root, space="  ")
    text: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return text


class ServiceProvider:
    """SP metadata and Single Logout messages (pysaml2, configured once at start-up), and
    AuthnRequests (:class:`~saml_gate.saml.outgoing.AuthnRequests`)."""

    def __init__(self, settings: GateSettings, idp: IdpInfo, keys: SpKeys) -> None:
        self._settings = settings
        self._idp = idp
        self._keys = keys
        self._authn = AuthnRequests(settings, idp, keys.key_pem)
        self.sign_requests = self._authn.signed
        # pysaml2 keeps mutable state (signer key globals, Config.context): one caller at a time.
        self._lock = threading.Lock()
        self._saml2_client: Any = None
        self.metadata_xml = sp_metadata_xml(settings, keys, self.sign_requests)

    def _client(self) -> Any:
        """pysaml2's client, built on the first logout message (call with ``_lock`` held): a
        process that sends none (the app's, when children do the SAML work) never imports
        pysaml2 (about 20 MB)."""
        if self._saml2_client is None:
            from saml2.client import Saml2Client
            from saml2.config import SPConfig
            from saml2.sigver import RSACrypto, import_rsa_key_from_file

            config = sp_config(self._settings, self._keys, self.sign_requests)
            config["metadata"] = {"inline": [self._idp.metadata_xml]}
            client = Saml2Client(SPConfig().load(config))
            client.sec.sec_backend = RSACrypto(import_rsa_key_from_file(self._keys.key_path))
            client.signing_algorithm = X.RSA_SHA256
            client.digest_algorithm = X.DIGEST_SHA256
            self._saml2_client = client
        return self._saml2_client

    def authn_request_url(
        self, relay_state: str, *, force_authn: bool = False, is_passive: bool = False
    ) -> tuple[str, str]:
        """(request ID, the IdP URL carrying the AuthnRequest with the HTTP-Redirect binding):
        :class:`~saml_gate.saml.outgoing.AuthnRequests`' (pysaml2 builds no AuthnRequest)."""
        return self._authn.url(relay_state, force_authn=force_authn, is_passive=is_passive)

    # ------------------------------------------------------------------ Single Logout
    def logout_request_url(self, user: SamlUser) -> tuple[str, str] | None:
        """(request ID, the IdP's SLO URL carrying a LogoutRequest for ``user``'s session), or
        None when the IdP metadata has no HTTP-Redirect SingleLogoutService. Always signed with
        RSA-SHA256 (Okta refuses unsigned logout requests)."""
        from saml2.saml import NameID
        from saml2.xmldsig import SIG_RSA_SHA256

        destination = self._idp.slo_url
        if destination is None:
            return None
        with self._lock:
            client = self._client()
            request_id, request = client.create_logout_request(
                destination=destination,
                issuer_entity_id=self._idp.entity_id,
                name_id=NameID(text=user.name_id, format=user.name_id_format),
                session_indexes=[user.session_index] if user.session_index else None,
                sign=False,
            )
            info = client.apply_binding(
                X.BINDING_HTTP_REDIRECT, str(request), destination, sign=True, sigalg=SIG_RSA_SHA256
            )
        return str(request_id), str(dict(info["headers"])["Location"])

    def logout_response_url(
        self, in_response_to: str, relay_state: str | None, *, success: bool
    ) -> str | None:
        """The IdP URL carrying our signed LogoutResponse (HTTP-Redirect binding, to the SLO
        endpoint's ResponseLocation when it has one), or None when the IdP has no such endpoint.
        ``success`` False answers urn:...:status:Responder (we could not end the sessions)."""
        from saml2 import saml, samlp
        from saml2.s_utils import status_message_factory
        from saml2.xmldsig import SIG_RSA_SHA256

        with self._lock:
            endpoints = self._client().metadata.single_logout_service(
                self._idp.entity_id, X.BINDING_HTTP_REDIRECT, "idpsso"
            )
        if not endpoints:
            return None
        destination = str(endpoints[0].get("response_location") or endpoints[0]["location"])
        status = (
            None
            if success
            else status_message_factory("the sessions could not be ended", samlp.STATUS_RESPONDER)
        )
        request = samlp.LogoutRequest(
            id=in_response_to, issuer=saml.Issuer(text=self._idp.entity_id)
        )
        with self._lock:
            client = self._client()
            response = client.create_logout_response(
                request, [X.BINDING_HTTP_REDIRECT], status=status, sign=False
            )
            response.destination = destination
            info = client.apply_binding(
                X.BINDING_HTTP_REDIRECT,
                str(response),
                destination,
                relay_state or "",
                response=True,
                sign=True,
                sigalg=SIG_RSA_SHA256,
            )
        return str(dict(info["headers"])["Location"])
