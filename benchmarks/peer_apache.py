"""The peers of the peers section: Apache 2.4 with Shibboleth SP 3, and with mod_auth_mellon.

Each is started from Debian's packages (apache2, libapache2-mod-shib + shibboleth-sp-utils,
libapache2-mod-auth-mellon) in a folder of its own, on a free loopback port, in processes of its
own: ``apache2 -DFOREGROUND`` (its parent and its event-MPM children) and, for Shibboleth, ``shibd
-F``. Nothing under /etc/apache2 or /etc/shibboleth is changed or used at run time except
Debian's module files (``mods-available/*.load|conf``, read as the packages install them) and
Shibboleth's XML schemas; Debian's default Shibboleth files (protocols, security policy,
attribute map and policy, error templates) are copied into the folder and used from there.

How each is configured, and why where it departs from the documentation or Debian's defaults,
is said next to each setting below; docs/performance.md ("The peers") says it for readers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench_common import IDP_ENTITY_ID, World
from lxml import etree

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import cert_base64

APACHE = "/usr/sbin/apache2"
SHIBD = "/usr/sbin/shibd"
MODULES = Path("/usr/lib/apache2/modules")
DEBIAN_MODS = Path("/etc/apache2/mods-available")
DEBIAN_SHIB = Path("/etc/shibboleth")

#: The modules a fresh Debian 12 apache2 enables (``a2query -m`` after installing apache2), its
#: default MPM (event) included. Loaded from Debian's own .load/.conf files.
DEBIAN_DEFAULT_MODULES = (
    "mpm_event",
    "access_compat",
    "alias",
    "auth_basic",
    "authn_core",
    "authn_file",
    "authz_core",
    "authz_host",
    "authz_user",
    "autoindex",
    "deflate",
    "dir",
    "env",
    "filter",
    "mime",
    "negotiation",
    "reqtimeout",
    "setenvif",
    "status",
)

#: What each peer needs installed: (what, path, Debian package).
NEEDS = {
    "shibboleth": (
        (APACHE, "apache2"),
        (str(MODULES / "mod_shib.so"), "libapache2-mod-shib"),
        (SHIBD, "shibboleth-sp-utils"),
    ),
    "mellon": (
        (APACHE, "apache2"),
        (str(MODULES / "mod_auth_mellon.so"), "libapache2-mod-auth-mellon"),
    ),
}

PAGE = b"hello"
PROTECTED = "/protected/hello.txt"
BARE = "/bare/hello.txt"


def missing(peer: str) -> list[str]:
    """The Debian packages ``peer`` needs that are not installed (by the files they install)."""
    return [package for path, package in NEEDS[peer] if not Path(path).exists()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PeerSite:
    """A running peer: where it listens, its URLs, and the processes that are the server."""

    name: str
    port: int
    base_url: str
    entity_id: str
    acs_url: str
    acs_path: str
    session_cookie: str
    """The session cookie's name, or its prefix (Shibboleth's ends in a hash of the app)."""
    roots: tuple[int, ...]
    """The server's top processes (Apache's parent, shibd): the server is them and their
    descendants."""
    folder: Path
    version: str


# ---------------------------------------------------------------------------------- Apache
def _httpd_conf(folder: Path, port: int, body: str) -> str:
    """Debian's apache2.conf, with its paths in ``folder`` and one port, plus ``body``.

    Kept from Debian: the default modules and MPM (event, with Debian's mpm_event.conf), Timeout,
    KeepAlive (100 requests per connection, 5 s), LogLevel warn, the <Directory> defaults.
    Left out: the access log (no server in this section writes one: uvicorn's is off too), the
    sites/conf folders (the one site is here).
    """
    user = ""
    if os.geteuid() == 0:  # children run as www-data, as Debian's envvars say
        user = "User www-data\nGroup www-data\n"
    loads = "\n".join(
        f"Include {DEBIAN_MODS}/{m}.load\nIncludeOptional {DEBIAN_MODS}/{m}.conf"
        for m in DEBIAN_DEFAULT_MODULES
    )
    return f"""\
ServerRoot "{folder}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
DefaultRuntimeDir "{folder}/run"
PidFile "{folder}/run/apache2.pid"
Mutex file:{folder}/run default
{user}Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
HostnameLookups Off
ErrorLog "{folder}/error.log"
LogLevel warn
{loads}
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
<Directory "{folder}/htdocs">
    Options Indexes FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
AccessFileName .htaccess
<FilesMatch "^\\.ht">
    Require all denied
</FilesMatch>
DocumentRoot "{folder}/htdocs"
{body}
"""


@contextlib.contextmanager
def _site(name: str, world: World) -> Iterator[tuple[Path, int, str]]:
    """(folder, port, base URL) of a new site: the folder holds its page, the IdP's metadata and
    the SP's key pair; it is world-readable (Apache's children and shibd read it as www-data)
    and removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"saml-gate-bench-{name}-"))
    folder.chmod(0o755)
    for sub in ("run", "htdocs/protected", "htdocs/bare", "logs"):
        (folder / sub).mkdir(parents=True)
    for path in (folder / "htdocs/protected/hello.txt", folder / "htdocs/bare/hello.txt"):
        path.write_bytes(PAGE)
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        for sub in ("run", "logs"):
            os.chown(folder / sub, www.pw_uid, www.pw_gid)
    _write(folder / "idp-metadata.xml", world.metadata)
    _write(folder / "sp-key.pem", world.sp.key_pem)
    _write(folder / "sp-cert.pem", world.sp.cert_pem)
    port = free_port()
    try:
        yield folder, port, f"http://127.0.0.1:{port}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o644)
    return path


def _wait_for_port(port: int, processes: list[subprocess.Popen[bytes]], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        dead = [p for p in processes if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit {[p.poll() for p in processes]})")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-2000:]
    return ""


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", **extra}


@contextlib.contextmanager
def _apache(
    folder: Path,
    port: int,
    body: str,
    *,
    helpers: list[subprocess.Popen[bytes]],
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    conf = _write(folder / "apache2.conf", _httpd_conf(folder, port, body))
    args = [APACHE, "-d", str(folder), "-f", str(conf), "-DFOREGROUND"]
    apache = subprocess.Popen(args, env=env or _env(), stdin=subprocess.DEVNULL)
    try:
        try:
            _wait_for_port(port, [apache, *helpers], f"Apache ({folder})")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{_log_tail(folder / 'error.log')}") from None
        yield apache
    finally:
        _stop(apache)


def _package_version(package: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "?"


# ---------------------------------------------------------------------------------- Shibboleth
#: Okta's attributes as they arrive (unspecified NameFormat), and the email-format NameID, mapped
#: as Shibboleth's attribute-extractor documentation shows; appended to Debian's attribute-map.xml.
SHIB_OKTA_ATTRIBUTES = f"""
    <Attribute name="{X.NAMEID_EMAIL}" id="nameid">
        <AttributeDecoder xsi:type="NameIDAttributeDecoder" formatter="$Name"/>
    </Attribute>
    <Attribute name="email" nameFormat="{X.ATTRNAME_UNSPECIFIED}" id="email"/>
    <Attribute name="displayName" nameFormat="{X.ATTRNAME_UNSPECIFIED}" id="displayName"/>
    <Attribute name="groups" nameFormat="{X.ATTRNAME_UNSPECIFIED}" id="groups"/>
"""


def _shibboleth2_xml(folder: Path, entity_id: str) -> str:
    """Debian's shibboleth2.xml with this folder's files and one IdP (the benchmark's).

    Departures from Debian's file, each needed here: absolute paths (relative ones resolve against
    /etc/shibboleth), the socket and log configurations in the folder, ``handlerSSL="false"
    cookieProps="http"`` (plain HTTP on loopback, as every server in this section), the SSO
    element naming the one IdP (no discovery service), the IdP's metadata file, the SP's key.
    """
    return f"""\
<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config"
    xmlns:conf="urn:mace:shibboleth:3.0:native:sp:config"
    clockSkew="180">

    <OutOfProcess logger="{folder}/shibd.logger"
        tranLogFormat="%u|%s|%IDP|%i|%ac|%t|%attr|%n|%b|%E|%S|%SS|%L|%UA|%a" />
    <InProcess logger="{folder}/native.logger"/>
    <UnixListener address="{folder}/run/shibd.sock"/>

    <ApplicationDefaults entityID="{entity_id}"
        REMOTE_USER="eppn subject-id pairwise-id persistent-id nameid"
        cipherSuites="DEFAULT:!EXP:!LOW:!aNULL:!eNULL:!DES:!IDEA:!SEED:!RC4:!3DES:!kRSA:!SSLv2:!SSLv3:!TLSv1:!TLSv1.1">

        <Sessions lifetime="28800" timeout="3600" relayState="ss:mem"
                  checkAddress="false" handlerSSL="false" cookieProps="http"
                  redirectLimit="exact">
            <SSO entityID="{IDP_ENTITY_ID}">SAML2</SSO>
            <Logout>SAML2 Local</Logout>
            <LogoutInitiator type="Admin" Location="/Logout/Admin" acl="127.0.0.1 ::1" />
            <Handler type="MetadataGenerator" Location="/Metadata" signing="false"/>
            <Handler type="Status" Location="/Status" acl="127.0.0.1 ::1"/>
            <Handler type="Session" Location="/Session" showAttributeValues="false"/>
            <Handler type="DiscoveryFeed" Location="/DiscoFeed"/>
        </Sessions>

        <Errors supportContact="root@localhost"
            helpLocation="/about.html"
            styleSheet="/shibboleth-sp/main.css"
            session="{folder}/sessionError.html"
            metadata="{folder}/metadataError.html"
            access="{folder}/accessError.html"
            ssl="{folder}/sslError.html"
            localLogout="{folder}/localLogout.html"
            partialLogout="{folder}/partialLogout.html"
            globalLogout="{folder}/globalLogout.html"/>

        <MetadataProvider type="XML" validate="true" path="{folder}/idp-metadata.xml"/>

        <AttributeExtractor type="XML" validate="true" reloadChanges="false"
            path="{folder}/attribute-map.xml"/>
        <AttributeFilter type="XML" validate="true" path="{folder}/attribute-policy.xml"/>

        <CredentialResolver type="File" use="signing"
            key="{folder}/sp-key.pem" certificate="{folder}/sp-cert.pem"/>
        <CredentialResolver type="File" use="encryption"
            key="{folder}/sp-key.pem" certificate="{folder}/sp-cert.pem"/>
    </ApplicationDefaults>

    <SecurityPolicyProvider type="XML" validate="true" path="{folder}/security-policy.xml"/>
    <ProtocolProvider type="XML" validate="true" reloadChanges="false"
        path="{folder}/protocols.xml"/>
</SPConfig>
"""


def _shib_loggers(folder: Path) -> None:
    """Debian's logger files, writing to the folder (native.logger: a file, not syslog)."""
    shibd = (DEBIAN_SHIB / "shibd.logger").read_text().replace("/var/log/shibboleth/", "")
    shibd = shibd.replace("fileName=", f"fileName={folder}/logs/")
    _write(folder / "shibd.logger", shibd)
    native = "\n".join(
        line
        for line in (DEBIAN_SHIB / "native.logger").read_text().splitlines()
        if not line.startswith("log4j.appender.native_log.")
    )
    native += (
        "\nlog4j.appender.native_log=org.apache.log4j.FileAppender"
        f"\nlog4j.appender.native_log.fileName={folder}/logs/native.log"
        "\nlog4j.appender.native_log.layout=org.apache.log4j.PatternLayout"
        "\nlog4j.appender.native_log.layout.ConversionPattern=%p %c %x: %m%n\n"
    )
    _write(folder / "native.logger", native)


SHIB_APACHE = """\
ShibConfig "{folder}/shibboleth2.xml"
Include /etc/apache2/mods-available/shib.load
# Debian's conf-available/shib.conf: the handler and the error pages' style sheet are open
ShibCompatValidUser Off
<Location /Shibboleth.sso>
  AuthType None
  Require all granted
</Location>
<Location /shibboleth-sp>
  AuthType None
  Require all granted
</Location>
Alias /shibboleth-sp/main.css /usr/share/shibboleth/main.css
# The protected page, as Debian's README.Debian and Shibboleth's Apache page show
<Location /protected>
  AuthType shibboleth
  ShibRequestSetting requireSession 1
  Require shib-session
</Location>
"""


@contextlib.contextmanager
def shibboleth(world: World) -> Iterator[PeerSite]:
    """Apache + mod_shib, and shibd with a configuration folder of its own."""
    with _site("shibboleth", world) as (folder, port, base):
        yield from _shibboleth(folder, port, base)


def _shibboleth(folder: Path, port: int, base: str) -> Iterator[PeerSite]:
    entity_id = f"{base}/shibboleth"
    for name in (
        "protocols.xml",
        "security-policy.xml",
        "attribute-policy.xml",
        "sessionError.html",
        "metadataError.html",
        "sslError.html",
        "localLogout.html",
        "partialLogout.html",
        "globalLogout.html",
        "attrChecker.html",
        "bindingTemplate.html",
        "discoveryTemplate.html",
        "postTemplate.html",
    ):
        _write(folder / name, (DEBIAN_SHIB / name).read_bytes())
    _write(folder / "accessError.html", (DEBIAN_SHIB / "sessionError.html").read_bytes())
    attribute_map = (DEBIAN_SHIB / "attribute-map.xml").read_text()
    head, tail = attribute_map.rsplit("</Attributes>", 1)
    _write(folder / "attribute-map.xml", head + SHIB_OKTA_ATTRIBUTES + "</Attributes>" + tail)
    _shib_loggers(folder)
    config = _write(folder / "shibboleth2.xml", _shibboleth2_xml(folder, entity_id))
    args = [SHIBD, "-F", "-f", "-c", str(config), "-p", str(folder / "run/shibd.pid")]
    if os.geteuid() == 0:  # as Debian's unit runs it: not as root (www-data reads its socket)
        args += ["-u", "www-data", "-g", "www-data"]
    # SHIBSP_LOGGING: the logging set-up shibd and mod_shib read before their configuration
    # names one (else /etc/shibboleth's)
    shibd = subprocess.Popen(
        args,
        env=_env(SHIBSP_LOGGING=str(folder / "shibd.logger")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder / "run/shibd.sock").exists():
            if shibd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"shibd did not start (exit {shibd.poll()}):\n"
                    + _log_tail(folder / "logs/shibd.log")
                )
            time.sleep(0.05)
        with _apache(
            folder,
            port,
            SHIB_APACHE.format(folder=folder),
            helpers=[shibd],
            env=_env(SHIBSP_LOGGING=str(folder / "native.logger")),
        ) as apache:
            yield PeerSite(
                name="Apache + Shibboleth SP",
                port=port,
                base_url=base,
                entity_id=entity_id,
                acs_url=f"{base}/Shibboleth.sso/SAML2/POST",
                acs_path="/Shibboleth.sso/SAML2/POST",
                session_cookie="_shibsession_",
                roots=(apache.pid, shibd.pid),
                folder=folder,
                version=f"Shibboleth SP {_package_version('libapache2-mod-shib')}",
            )
    finally:
        _stop(shibd)


# ---------------------------------------------------------------------------------- mellon
def mellon_sp_metadata(entity_id: str, endpoint_url: str, cert_pem: bytes) -> str:
    """The SP metadata ``mellon_create_metadata ENTITY-ID ENDPOINT-URL`` writes (its template),
    for the benchmark's SP certificate instead of the fresh one that script generates."""
    cert = cert_base64(cert_pem)
    key = (
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
        f"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
    )
    xml = f"""\
<EntityDescriptor entityID="{entity_id}" xmlns="{X.NS_MD}" xmlns:ds="{X.NS_DS}">
  <SPSSODescriptor protocolSupportEnumeration="{X.NS_SAMLP}" AuthnRequestsSigned="true">
    <KeyDescriptor use="encryption">{key}</KeyDescriptor>
    <KeyDescriptor use="signing">{key}</KeyDescriptor>
    <SingleLogoutService Binding="{X.BINDING_HTTP_REDIRECT}" Location="{endpoint_url}/logout"/>
    <AssertionConsumerService Binding="{X.BINDING_HTTP_POST}"
        Location="{endpoint_url}/postResponse" index="0"/>
  </SPSSODescriptor>
</EntityDescriptor>
"""
    etree.fromstring(xml.encode())  # well-formed
    return xml


MELLON_APACHE = """\
Include /etc/apache2/mods-available/auth_mellon.load
IncludeOptional /etc/apache2/mods-available/auth_mellon.conf
# the README's global settings, at their defaults, but the lock file: one per Apache instance
MellonCacheSize 100
MellonLockFile "{folder}/run/mellon.lock"
# The protected location as mod_auth_mellon's README shows it (its endpoint inside it)
<Location /protected>
    Require valid-user
    AuthType "Mellon"
    MellonEnable "auth"
    MellonVariable "cookie"
    MellonUser "NAME_ID"
    MellonEndpointPath "/protected/endpoint"
    MellonDefaultLoginPath "/"
    MellonSessionLength 86400
    MellonSPPrivateKeyFile "{folder}/sp-key.pem"
    MellonSPCertFile "{folder}/sp-cert.pem"
    MellonSPMetadataFile "{folder}/sp-metadata.xml"
    MellonIdPMetadataFile "{folder}/idp-metadata.xml"
</Location>
"""


@contextlib.contextmanager
def mellon(world: World) -> Iterator[PeerSite]:
    """Apache + mod_auth_mellon, configured as its README shows."""
    with _site("mellon", world) as (folder, port, base):
        yield from _mellon(folder, port, base, world.sp.cert_pem)


def _mellon(folder: Path, port: int, base: str, sp_cert: bytes) -> Iterator[PeerSite]:
    endpoint = f"{base}/protected/endpoint"
    entity_id = f"{endpoint}/metadata"
    _write(folder / "sp-metadata.xml", mellon_sp_metadata(entity_id, endpoint, sp_cert))
    with _apache(folder, port, MELLON_APACHE.format(folder=folder), helpers=[]) as apache:
        yield PeerSite(
            name="Apache + mod_auth_mellon",
            port=port,
            base_url=base,
            entity_id=entity_id,
            acs_url=f"{endpoint}/postResponse",
            acs_path="/protected/endpoint/postResponse",
            session_cookie="mellon-cookie",
            roots=(apache.pid,),
            folder=folder,
            version=f"mod_auth_mellon {_package_version('libapache2-mod-auth-mellon')}",
        )
