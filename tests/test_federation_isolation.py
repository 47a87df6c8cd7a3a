"""Federation isolation: a recognised domain speaks only for what chains to its own root.

Three demo domains in process, each with its own public origin: 甲 and 乙 are other provinces,
丙 is this domain, which recognises both. Every request 丙 makes to another domain goes through
one in-process network (``Net``) that routes by host name to that domain's application and
records what each host was asked; the host names resolve through a table the test controls, so
the address rule is exercised without touching the real network.

The attacks: 乙, genuinely signing its list, also lists 甲's (or 丙's) CAs, seals, TSA or QR keys
and answers every status question with "valid"; 乙's list points its OCSP, CRL or status URL at
another origin or at a private address; a host name that resolved to a public address at one
fetch resolves to a loopback one at the next; and a peer's failure text, URL or HTTP status
finds its way into a public report.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import NameOID
from sqlmodel import select

from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from core.errors import ElicenceError, InvalidInput
from tests.conftest import make_settings
from tests.domain import Domain, build_domain
from trust.federation_jws import STATUS_TYPE, sign_document
from trust.federation_store import RecognisedDomain
from trust.trustlist import MEDIA_TYPE

pytestmark = pytest.mark.slow  # three demo domains of their own

JIA, YI, BING = "甲省电子证照信任域", "乙省电子证照信任域", "丙省电子证照信任域"
JIA_HOST, YI_HOST, BING_HOST = "jia.example.gov.cn", "yi.example.gov.cn", "bing.example.gov.cn"
JIA_URL, YI_URL = f"https://{JIA_HOST}/pki/trust-list", f"https://{YI_HOST}/pki/trust-list"
START = datetime.now(UTC).replace(microsecond=0)
NEUTRAL = "对方信任域状态服务不可用 / the peer domain's status service is unavailable"
SECRET = "secret-internal-text"
# What the host names resolve to (public addresses unless the test says otherwise).
ADDRESSES = {
    JIA_HOST: ["101.6.1.1"],
    YI_HOST: ["101.6.1.2"],
    BING_HOST: ["101.6.1.3"],
    "elsewhere.example.com": ["101.6.1.9"],
    "intranet.example.gov.cn": ["10.1.2.3"],
    "metadata.example.gov.cn": ["169.254.169.254"],
    "mixed.example.gov.cn": ["101.6.1.8", "192.168.1.8"],
}


# -- the network between the domains --------------------------------------------------------


Hook = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class Net:
    """Routes every request by host to that domain's app; records (host, method, path)."""

    apps: dict[str, httpx.BaseTransport]
    asked: list[tuple[str, str, str]] = field(default_factory=list)
    hooks: dict[str, Hook] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.asked.append((host, request.method, request.url.path))
        hook = self.hooks.get(host)
        if hook is not None:
            answer = hook(request)
            if answer is not None:
                return answer
        if host not in self.apps:
            raise httpx.ConnectError("no such host", request=request)
        return self.forward(host, request)

    def forward(self, host: str, request: httpx.Request) -> httpx.Response:
        inner = httpx.Request(
            request.method,
            request.url.copy_with(host=host),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            content=request.content,
        )
        response = self.apps[host].handle_request(inner)
        response.read()
        return httpx.Response(
            response.status_code, headers=dict(response.headers), content=response.content
        )

    def asked_of(self, host: str, since: int = 0) -> list[tuple[str, str, str]]:
        return [entry for entry in self.asked[since:] if entry[0] == host]


@dataclass
class Resolver:
    table: dict[str, list[str]] = field(default_factory=lambda: copy.deepcopy(ADDRESSES))
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int = 443) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"cannot resolve {host}")
        return list(self.table[host])


@dataclass
class World:
    jia: Domain
    yi: Domain
    bing: Domain
    net: Net
    resolver: Resolver
    lists: dict[str, dict[str, Any]]  # the honest lists 丙 recognised

    def pin(self, name: str) -> str:
        return str(self.lists[name]["signer"]["sha256"])


def domain(tmp: Any, name: str, host: str, clock: FixedClock) -> Domain:
    settings = make_settings(
        tmp.mktemp(host.split(".")[0]) / "data",
        domain_name=name,
        domain_organisation=name.replace("电子证照信任域", "政务服务数据管理局"),
        verify_isolation=False,
    ).model_copy(update={"public_base_url": f"https://{host}"})
    return build_domain(settings, clock=clock)


def trust_list(d: Domain) -> dict[str, Any]:
    response = d.client.get("/pki/trust-list")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = FixedClock(START)
    jia = domain(tmp_path_factory, JIA, JIA_HOST, clock)
    yi = domain(tmp_path_factory, YI, YI_HOST, clock)
    bing = domain(tmp_path_factory, BING, BING_HOST, clock)
    net = Net({JIA_HOST: jia.client._transport, YI_HOST: yi.client._transport})
    resolver = Resolver()
    federation = bing.services.federation
    federation.transport = httpx.MockTransport(net.handle)
    federation.resolve = resolver
    lists = {JIA: trust_list(jia), YI: trust_list(yi)}
    assert federation.add(JIA_URL, lists[JIA]["signer"]["sha256"], actor="test").result == "added"
    assert federation.add(YI_URL, lists[YI]["signer"]["sha256"], actor="test").result == "added"
    yield World(jia, yi, bing, net, resolver, lists)
    federation.transport = None


@pytest.fixture
def net(world: World) -> Iterator[Net]:
    """The network, with 乙 honest again and the address table as it was after each test."""
    yield world.net
    world.net.hooks.clear()
    world.resolver.table = copy.deepcopy(ADDRESSES)
    world.bing.services.federation.allow_private_addresses = False


# -- lists 乙 signs -------------------------------------------------------------------------


def signed(d: Domain, body: dict[str, Any], typ: str = MEDIA_TYPE) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k != "signature"}
    with transaction(d.services.engine) as session:
        return sign_document(d.services.trust, session, body, typ=typ, purpose="test", listener=None)


def rehomed(entry: dict[str, Any], host: str) -> dict[str, Any]:
    """A CA entry whose OCSP and CRL URLs are moved to ``host`` (so only isolation can catch it)."""
    moved = dict(entry)
    for member in ("ocsp_url", "crl_url"):
        if moved.get(member):
            moved[member] = httpx.URL(moved[member]).copy_with(host=host).__str__()
    return moved


def doctored(world: World, *, cas: list[dict[str, Any]] = (), seals: list[dict[str, Any]] = (),  # type: ignore[assignment]
             tsa: dict[str, Any] | None = None, qr_keys: list[dict[str, Any]] = (),  # type: ignore[assignment]
             change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """乙's honest list with more in it, a higher sequence, genuinely signed by 乙."""
    body = copy.deepcopy(trust_list(world.yi))
    body["sequence"] = max(body["sequence"], stored(world, YI).sequence) + 1
    body["cas"] += [rehomed(entry, YI_HOST) for entry in cas]
    body["seals"] += list(seals)
    body["qr_keys"] = body.get("qr_keys", []) + list(qr_keys)
    if tsa is not None:
        body["tsa"] = {**tsa, "url": f"https://{YI_HOST}/pki/tsa"}
    if change is not None:
        change(body)
    return signed(world.yi, body)


def serve(net: Net, host: str, document: dict[str, Any]) -> None:
    previous = net.hooks.get(host)

    def hook(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/pki/trust-list":
            return httpx.Response(200, json=document)
        return previous(request) if previous is not None else None

    net.hooks[host] = hook


def stored(world: World, name: str) -> RecognisedDomain:
    with reading(world.bing.services.engine) as session:
        row = session.get(RecognisedDomain, name)
    assert row is not None
    return row


def snapshot(world: World, name: str) -> tuple[Any, ...]:
    row = stored(world, name)
    return (row.url, row.fingerprint, row.sequence, row.document, row.fetched_at, row.next_update)


def refusals(world: World, action: str) -> list[dict[str, Any]]:
    with reading(world.bing.services.engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.outcome == "refused")
        ).all()
        return [dict(row.detail) for row in rows]


def material(world: World, d: Domain, kind: str) -> dict[str, Any]:
    """What ``kind`` of ``d``'s material a doctored list of 乙 lists."""
    listed = trust_list(d)
    if kind == "ca":
        return {"cas": listed["cas"]}
    if kind == "seal":
        return {"seals": listed["seals"][:1]}
    if kind == "tsa":
        return {"tsa": listed["tsa"]}
    return {"qr_keys": listed["qr_keys"]}


# -- 乙 may not speak for 甲, nor for us ------------------------------------------------------


@pytest.mark.parametrize("kind", ["ca", "seal", "tsa", "qr_key"])
def test_a_list_of_yi_naming_jias_material_is_refused_whole(world: World, net: Net, kind: str) -> None:
    federation = world.bing.services.federation
    before = snapshot(world, YI)
    refused_before = len(refusals(world, "federation.refresh"))
    serve(net, YI_HOST, doctored(world, **material(world, world.jia, kind)))
    with pytest.raises(InvalidInput, match=JIA):
        federation.refresh(YI, actor="test")
    # ``add`` of a recognised domain is a refresh from that URL: the same refusal
    with pytest.raises(InvalidInput, match=JIA):
        federation.add(YI_URL, world.pin(YI), actor="test")
    assert snapshot(world, YI) == before  # the accepted list stays in force, nothing half-written
    details = refusals(world, "federation.refresh")
    assert len(details) == refused_before + 1 and JIA in details[-1]["reason"]
    # refreshing every domain reports it without raising, and changes nothing either
    outcomes = {o.name: o.result for o in federation.refresh(actor="test")}
    assert outcomes[YI] == "refused" and outcomes[JIA] in ("unchanged", "refreshed")
    assert snapshot(world, YI) == before


@pytest.mark.parametrize("kind", ["ca", "seal", "qr_key"])
def test_a_new_domain_naming_this_domains_material_is_refused(world: World, net: Net, kind: str) -> None:
    federation = world.bing.services.federation
    honest = snapshot(world, YI)
    federation.remove(YI, actor="test")
    try:
        refused_before = len(refusals(world, "federation.add"))
        serve(net, YI_HOST, doctored_fresh(world, **material(world, world.bing, kind)))
        with pytest.raises(InvalidInput, match="this domain"):
            federation.add(YI_URL, world.pin(YI), actor="test")
        with reading(world.bing.services.engine) as session:
            assert session.get(RecognisedDomain, YI) is None
        details = refusals(world, "federation.add")
        assert len(details) == refused_before + 1 and "this domain" in details[-1]["reason"]
    finally:
        net.hooks.clear()
        federation.add(YI_URL, world.pin(YI), actor="test")
    assert snapshot(world, YI)[:3] == honest[:3]


def doctored_fresh(world: World, **extra: Any) -> dict[str, Any]:
    """Like ``doctored`` for a domain not recognised at the moment (sequence of 乙's own list)."""
    body = copy.deepcopy(trust_list(world.yi))
    body["cas"] += [rehomed(entry, YI_HOST) for entry in extra.get("cas", [])]
    body["seals"] += extra.get("seals", [])
    body["qr_keys"] = body.get("qr_keys", []) + extra.get("qr_keys", [])
    return signed(world.yi, body)


def test_a_ca_outside_the_domains_own_root_is_refused(world: World, net: Net) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "另一根CA / another root")])
    other = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = other.public_bytes(serialization.Encoding.PEM).decode()
    entry = {"name": "other-root", "certificate": pem, "sha256": other.fingerprint(hashes.SHA256()).hex(),
             "crl_url": f"https://{YI_HOST}/pki/crl/other.crl", "ocsp_url": f"https://{YI_HOST}/pki/ocsp"}
    before = snapshot(world, YI)
    serve(net, YI_HOST, doctored(world, cas=[entry]))
    with pytest.raises(InvalidInput, match="own root"):
        world.bing.services.federation.refresh(YI, actor="test")
    assert snapshot(world, YI) == before


# -- attribution by root: 甲's licences are 甲's to judge -------------------------------------


def liar(world: World) -> Hook:
    """乙's status service: whatever 甲 knows about a licence, signed by 乙 as "valid"; its OCSP
    responder hands 甲's certificates to 甲's responder (which rightly says "good" for the seal)."""
    yi_domain = trust_list(world.yi)["domain"]

    def hook(request: httpx.Request) -> httpx.Response | None:
        path = request.url.path
        if path.startswith("/pki/licence-status/"):
            real = world.net.forward(JIA_HOST, request).json()
            if not real.get("found"):
                return None
            body = {**real, "domain": yi_domain}
            body["licence"] = {**real["licence"], "status": "valid", "status_label": "有效 / valid"}
            return httpx.Response(200, json=signed(world.yi, body, STATUS_TYPE))
        if path == "/pki/ocsp" and request.method == "POST":
            answer = world.net.forward(JIA_HOST, request)
            status = x509_ocsp.load_der_ocsp_response(answer.content).response_status
            return answer if status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL else None
        return None

    return hook


def revoked_licence_of_jia(world: World) -> tuple[dict[str, Any], bytes]:
    issued = world.jia.issue(0)
    pdf = world.jia.pdf(issued)
    response = world.jia.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "吊销许可 / licence revoked"},
        headers=world.jia.auth(0),
    )
    assert response.status_code == 200, response.text
    return issued, pdf


def everything_of_jia(world: World) -> dict[str, Any]:
    listed = trust_list(world.jia)
    return {"cas": listed["cas"], "seals": listed["seals"], "qr_keys": listed["qr_keys"]}


def assert_revoked_by_jia(world: World, issued: dict[str, Any], pdf: bytes) -> None:
    since = len(world.net.asked)
    report = world.bing.verify_pdf(pdf)
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "REVOKED"), report
    assert report["domain"]["name"] == JIA and report["licence"]["status"] == "revoked"
    scanned = world.bing.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
    assert (scanned["indication"], scanned["sub_indication"]) == ("FAILED", "REVOKED"), scanned
    assert scanned["domain"]["name"] == JIA
    # 乙 was never asked about 甲's material
    assert world.net.asked_of(YI_HOST, since) == []
    assert any(path.startswith("/pki/licence-status/") for _, _, path in world.net.asked_of(JIA_HOST, since))


def test_yi_cannot_take_over_jias_licences_by_its_list(world: World, net: Net) -> None:
    issued, pdf = revoked_licence_of_jia(world)
    net.hooks[YI_HOST] = liar(world)
    serve(net, YI_HOST, doctored(world, **everything_of_jia(world)))
    with pytest.raises(InvalidInput, match=JIA):
        world.bing.services.federation.refresh(YI, actor="test")
    assert_revoked_by_jia(world, issued, pdf)


def test_a_list_stored_before_the_rule_cannot_speak_for_jia(world: World, net: Net) -> None:
    """A list of 乙 naming 甲's material that is already in the store (accepted before this rule
    existed) is not used: the seal is attributed to 甲 by its root, the QR key to 甲 alone."""
    issued, pdf = revoked_licence_of_jia(world)
    net.hooks[YI_HOST] = liar(world)
    document = doctored(world, **everything_of_jia(world))
    honest = stored(world, YI)
    with transaction(world.bing.services.engine) as session:
        row = session.get(RecognisedDomain, YI)
        assert row is not None
        row.document = json.dumps(document, ensure_ascii=False)
        row.sequence = document["sequence"]
        session.add(row)
    try:
        assert_revoked_by_jia(world, issued, pdf)
    finally:
        with transaction(world.bing.services.engine) as session:
            row = session.get(RecognisedDomain, YI)
            assert row is not None
            row.document, row.sequence = honest.document, honest.sequence
            session.add(row)


def test_a_qr_key_claimed_by_two_domains_is_attributed_to_neither(world: World, net: Net) -> None:
    issued = world.jia.issue(0)
    net.hooks[YI_HOST] = liar(world)
    document = doctored(world, qr_keys=trust_list(world.jia)["qr_keys"])
    honest = stored(world, YI)
    with transaction(world.bing.services.engine) as session:
        row = session.get(RecognisedDomain, YI)
        assert row is not None
        row.document, row.sequence = json.dumps(document, ensure_ascii=False), document["sequence"]
        session.add(row)
    try:
        since = len(world.net.asked)
        scanned = world.bing.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
        assert scanned["indication"] != "PASSED" and scanned.get("domain") is None
        assert world.net.asked_of(YI_HOST, since) == []
    finally:
        with transaction(world.bing.services.engine) as session:
            row = session.get(RecognisedDomain, YI)
            assert row is not None
            row.document, row.sequence = honest.document, honest.sequence
            session.add(row)


# -- where a peer may send us --------------------------------------------------------------


def move(member: str, url: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        if member == "base_url":
            body["domain"]["base_url"] = url
        else:
            for ca in body["cas"]:
                ca[member] = url

    return change


@pytest.mark.parametrize(
    "member,url",
    [
        ("ocsp_url", "https://elsewhere.example.com/pki/ocsp"),
        ("crl_url", "https://elsewhere.example.com/pki/crl/root.crl"),
        ("base_url", "https://elsewhere.example.com"),
        ("ocsp_url", f"http://{YI_HOST}/pki/ocsp"),  # another scheme is another origin
        ("ocsp_url", f"https://{YI_HOST}:8443/pki/ocsp"),  # and another port
        ("ocsp_url", "http://169.254.169.254/latest/meta-data"),
    ],
)
def test_peer_urls_must_share_the_trust_list_origin(world: World, net: Net, member: str, url: str) -> None:
    before = snapshot(world, YI)
    serve(net, YI_HOST, doctored(world, change=move(member, url)))
    with pytest.raises(InvalidInput, match="origin"):
        world.bing.services.federation.refresh(YI, actor="test")
    assert snapshot(world, YI) == before
    assert "origin" in refusals(world, "federation.refresh")[-1]["reason"]


@pytest.mark.parametrize(
    "url",
    [
        "https://intranet.example.gov.cn/pki/trust-list",  # resolves to 10.1.2.3
        "https://metadata.example.gov.cn/pki/trust-list",  # resolves to 169.254.169.254
        "https://mixed.example.gov.cn/pki/trust-list",  # one public, one private address
        "http://127.0.0.1:8000/pki/trust-list",
        "http://[::1]:8000/pki/trust-list",
        "http://[::ffff:127.0.0.1]:8000/pki/trust-list",
        "http://169.254.169.254/pki/trust-list",
        "http://0.0.0.0/pki/trust-list",
    ],
)
def test_private_addresses_are_refused_unless_allowed(world: World, net: Net, url: str) -> None:
    federation = world.bing.services.federation
    host = httpx.URL(url).host
    since = len(net.asked)
    with pytest.raises(InvalidInput, match="private"):
        federation.add(url, world.pin(JIA), actor="test")
    assert net.asked_of(host, since) == []  # refused before any request was made
    assert "private" in refusals(world, "federation.add")[-1]["reason"]
    # the operator's setting allows them (e.g. two provinces on one private network)
    federation.allow_private_addresses = True
    with pytest.raises(ElicenceError) as raised:
        federation.add(url, world.pin(JIA), actor="test")
    assert "private" not in raised.value.message
    assert net.asked_of(host, since) != []


def test_an_address_is_checked_at_every_fetch_not_only_when_added(world: World, net: Net) -> None:
    """DNS rebinding: 乙's name resolved to a public address when it was recognised; now it
    resolves to loopback. Neither the refresh nor a verification may reach it."""
    federation = world.bing.services.federation
    issued = world.yi.issue(0)
    pdf = world.yi.pdf(issued)
    assert world.bing.verify_pdf(pdf)["indication"] == "PASSED"
    before = snapshot(world, YI)
    world.resolver.table[YI_HOST] = ["127.0.0.1"]
    since = len(net.asked)
    with pytest.raises(InvalidInput, match="private"):
        federation.refresh(YI, actor="test")
    report = world.bing.verify_pdf(pdf)
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
    scanned = world.bing.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
    assert (scanned["indication"], scanned["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
    assert net.asked_of(YI_HOST, since) == []
    assert snapshot(world, YI) == before
    for text in (json.dumps(report, ensure_ascii=False), json.dumps(scanned, ensure_ascii=False)):
        assert "127.0.0.1" not in text and YI_HOST not in text


class Counter:
    """A real HTTP server on loopback that counts the requests it got."""

    def __init__(self) -> None:
        self.hits = 0
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_real_transport_connects_only_to_the_address_it_checked() -> None:
    from trust.federation_http import Peers, fetch

    counter = Counter()
    answers: list[list[str]] = []

    def resolve(host: str, port: int = 443) -> list[str]:
        assert host == "peer.example.gov.cn"
        return answers.pop(0) if answers else ["127.0.0.1"]

    url = f"http://peer.example.gov.cn:{counter.port}/pki/trust-list"
    try:
        # allowed: the name is connected through the resolver's answer, nothing else
        answers[:] = [["127.0.0.1"]]
        body, _ = fetch("GET", url, peers=Peers(allow_private=True, resolve=resolve),
                        max_bytes=1024, what="信任列表")
        assert body == b"{}" and counter.hits == 1
        # refused: a public answer first, loopback when the connection is made
        answers[:] = [["101.6.1.7"], ["127.0.0.1"]]
        with pytest.raises(InvalidInput, match="private"):
            fetch("GET", url, peers=Peers(allow_private=False, resolve=resolve),
                  max_bytes=1024, what="信任列表")
        assert counter.hits == 1
    finally:
        counter.server.shutdown()


# -- public reports ------------------------------------------------------------------------


def failing(path_prefix: str, status: int = 599) -> Hook:
    def hook(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith(path_prefix):
            return httpx.Response(
                status, text=f"{SECRET} at http://10.9.8.7:8080/internal", headers={"X-Debug": SECRET}
            )
        return None

    return hook


def no_peer_text(text: str) -> None:
    for leak in (YI_HOST, SECRET, "10.9.8.7", "HTTP 599"):
        assert leak not in text, leak


@pytest.mark.parametrize("path", ["/pki/licence-status/", "/pki/ocsp"])
def test_public_reports_never_echo_peer_urls_or_answers(world: World, net: Net, path: str) -> None:
    issued = world.yi.issue(0)
    pdf = world.yi.pdf(issued)
    passed = world.bing.verify_pdf(pdf)
    assert passed["indication"] == "PASSED" and passed["domain"]["name"] == YI
    net.hooks[YI_HOST] = failing(path)
    report = world.bing.verify_pdf(pdf)
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
    (failed,) = [c for c in report["checks"] if c["result"] == "failed"]
    assert failed["detail"] == NEUTRAL
    for check in report["checks"]:
        no_peer_text(check["detail"])
    no_peer_text(report["message"])
    assert YI_HOST not in json.dumps(report, ensure_ascii=False)
    page = world.bing.client.post("/verify", files={"file": ("licence.pdf", pdf, "application/pdf")})
    assert page.status_code == 200 and 'data-indication="INDETERMINATE"' in page.text
    assert NEUTRAL.split(" / ")[0] in page.text  # the neutral detail, and nothing of the peer's
    assert YI_HOST not in page.text and SECRET not in page.text
    assert "HTTP 599" not in page.text
    if path.startswith("/pki/licence-status/"):
        code = issued["links"]["verify"].rsplit("/", 1)[1]
        scanned = world.bing.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
        assert (scanned["indication"], scanned["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
        assert YI_HOST not in json.dumps(scanned, ensure_ascii=False)
        for check in scanned["checks"]:
            no_peer_text(check["detail"])
        qr_page = world.bing.client.get(f"/V/{code}", headers={"Accept": "text/html"})
        assert qr_page.status_code == 200
        assert YI_HOST not in qr_page.text and SECRET not in qr_page.text
    # nor does a report that passed: the domain is named, its URL is not
    assert "trust_list_url" not in passed["domain"]
    assert YI_HOST not in json.dumps(passed, ensure_ascii=False)
