"""Small trust domains for the federation tests, without a demo domain.

Each domain is a PKI made once per process with ``cryptography`` (root -> issuing CA -> seal,
TSA and trust-list signer; a QR key), its trust list as the product publishes it, signed with
the product's own JWS code (``trust.trustlist.sign_document``) under an in-memory key store,
and a fake network (an ``httpx.MockTransport``) that answers for the domains a test names:
trust lists, OCSP requests (answered by the issuing CA) and licence-status questions (signed
answers that echo the question and nonce, as ``GET /pki/licence-status`` does).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys.store import KeyRef
from licences.payload import key_id
from tests.security.support import NOW, MemoryKeyStore
from trust.federation_jws import STATUS_FORMAT, STATUS_TYPE
from trust.federation_list import TrustList, parse
from trust.profiles import DOCUMENT_SIGNING, TRUST_LIST_SIGNING
from trust.trustlist import FORMAT, MEDIA_TYPE, fingerprint, sign_document

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2030, 1, 1, tzinfo=UTC)
Key = ec.EllipticCurvePrivateKey


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    cn: str,
    public: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    issuer_key: Key,
    *,
    ca: bool = False,
    eku: x509.ObjectIdentifier | None = None,
    not_before: datetime = START,
    not_after: datetime = END,
    issuer_name: x509.Name | None = None,
    subject: x509.Name | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """A certificate for ``public`` signed by ``issuer_key`` (self-signed when no issuer)."""
    subject = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    if issuer_name is not None:
        name = issuer_name
    else:
        name = issuer.subject if issuer is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    edwards = isinstance(issuer_key, ed25519.Ed25519PrivateKey)
    return builder.sign(issuer_key, None if edwards else hashes.SHA256())


@dataclass
class Pki:
    """One trust domain's keys and certificates."""

    name: str
    host: str
    root: x509.Certificate
    root_key: Key
    ca: x509.Certificate
    ca_key: Key
    seal: x509.Certificate
    seal_key: Key
    tsa: x509.Certificate
    signer: x509.Certificate
    store: MemoryKeyStore
    signer_ref: KeyRef
    qr_key: Key
    ocsp: dict[int, tuple[str, datetime | None]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"https://{self.host}"

    @property
    def url(self) -> str:
        return f"{self.base}/pki/trust-list"

    @property
    def pin(self) -> str:
        return fingerprint(self.signer)

    @property
    def kid(self) -> bytes:
        return key_id(self.qr_key.public_key())

    def trust(self) -> Any:
        """What ``sign_document`` asks of a trust domain: the signer and its key store."""
        record = SimpleNamespace(key_ref=str(self.signer_ref))
        return SimpleNamespace(
            keystore=self.store, service_certificate=lambda *_: (self.signer, record)
        )

    def sign(self, body: dict[str, Any], typ: str = MEDIA_TYPE) -> dict[str, Any]:
        return sign_document(self.trust(), None, body, typ=typ, purpose="test", listener=None)  # type: ignore[arg-type]

    def qr_entry(self, key: Key | None = None) -> dict[str, Any]:
        public = (key or self.qr_key).public_key()
        text = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        return {"kid": key_id(public).hex(), "alg": "ES256", "public_key_pem": text}

    def body(
        self,
        sequence: int = 1,
        *,
        next_update: datetime | str = NOW + timedelta(days=7),
        **changes: Any,
    ) -> dict[str, Any]:
        """The unsigned list, as ``trust.trustlist`` publishes it, with ``changes``."""
        document: dict[str, Any] = {
            "format": FORMAT,
            "sequence": sequence,
            "issued_at": iso(NOW - timedelta(hours=1)),
            "next_update": iso(next_update) if isinstance(next_update, datetime) else next_update,
            "domain": {
                "name": self.name,
                "organisation": f"{self.name} 数据局",
                "base_url": self.base,
                "trust_list_url": self.url,
            },
            "cas": [
                ca_entry("root", self.root, self.base),
                ca_entry("issuing", self.ca, self.base),
            ],
            "seals": [seal_entry(self.seal)],
            "tsa": {"url": f"{self.base}/pki/tsa", "certificate": pem(self.tsa)},
            "signer": {"certificate": pem(self.signer), "sha256": self.pin},
            "qr_keys": [self.qr_entry()],
        }
        document.update(changes)
        return document

    def document(self, sequence: int = 1, **changes: Any) -> dict[str, Any]:
        return self.sign(self.body(sequence, **changes))

    def parsed(self, sequence: int = 1, **changes: Any) -> TrustList:
        return parse(self.document(sequence, **changes))


def ca_entry(name: str, cert: x509.Certificate, base: str) -> dict[str, Any]:
    return {
        "name": name,
        "certificate": pem(cert),
        "sha256": fingerprint(cert),
        "crl_url": f"{base}/pki/crl/{name}",
        "ocsp_url": f"{base}/pki/ocsp/{name}",
    }


def seal_entry(cert: x509.Certificate, status: str = "valid", **changes: Any) -> dict[str, Any]:
    entry = {
        "seal": "S1",
        "department": {"name": "测试局", "code": "D1"},
        "certificate": pem(cert),
        "serial": format(cert.serial_number, "x"),
        "status": status,
        "revoked_at": None,
        "revocation_reason": None,
    }
    entry.update(changes)
    return entry


@cache
def domain(name: str) -> Pki:
    """The domain ``name`` (made once per process), reached at ``<name>.example``."""
    root_key, ca_key, seal_key, tsa_key = new_key(), new_key(), new_key(), new_key()
    root = certificate(f"{name} Root", root_key.public_key(), None, root_key, ca=True)
    ca = certificate(f"{name} CA", ca_key.public_key(), root, root_key, ca=True)
    seal = certificate(f"{name} Seal", seal_key.public_key(), ca, ca_key, eku=DOCUMENT_SIGNING)
    tsa = certificate(
        f"{name} TSA", tsa_key.public_key(), ca, ca_key, eku=ExtendedKeyUsageOID.TIME_STAMPING
    )
    store = MemoryKeyStore()
    ref = store.create(f"signer-{name}")
    public = store.public_key(ref)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signer = certificate(f"{name} Trust List", public, ca, ca_key, eku=TRUST_LIST_SIGNING)
    return Pki(
        name, f"{name}.example", root, root_key, ca, ca_key, seal, seal_key, tsa, signer, store,
        ref, new_key(),
    )


# -- OCSP and status answers ----------------------------------------------------------------


def ocsp_response(
    pki: Pki,
    request_der: bytes,
    *,
    status: str = "good",
    revoked_at: datetime | None = None,
    this_update: datetime = NOW,
) -> bytes:
    """The issuing CA's answer (or the root's, about the CA) to a request, echoing its nonce."""
    request = ocsp.load_der_ocsp_request(request_der)
    serial = request.serial_number
    if serial == pki.ca.serial_number:
        cert, issuer, key = pki.ca, pki.root, pki.root_key
    else:
        cert, issuer, key = pki.seal, pki.ca, pki.ca_key
    state = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer,
            algorithm=hashes.SHA256(),
            cert_status=state,
            this_update=this_update,
            next_update=this_update + timedelta(hours=1),
            revocation_time=revoked_at if status == "revoked" else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == "revoked" else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    )
    nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
    builder = builder.add_extension(nonce, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def status_body(pki: Pki, query: str, nonce: str, **changes: Any) -> dict[str, Any]:
    """A signed-to-be licence-status answer of ``pki`` about a valid licence."""
    body: dict[str, Any] = {
        "format": STATUS_FORMAT,
        "domain": {"name": pki.name, "organisation": f"{pki.name} 数据局",
                   "base_url": pki.base, "trust_list_url": pki.url},
        "query": query,
        "nonce": nonce,
        "produced_at": iso(NOW),
        "found": True,
        "licence": licence_member(pki),
        "seal": {"seal_code": "S1", "seal_name": "证照专用章", "seal_type": "02",
                 "seal_type_label": "证照专用章", "department": "测试局",
                 "department_code": "D1",
                 "certificate_serial": format(pki.seal.serial_number, "x")},
    }
    body.update(changes)
    return body


LICENCE_IDENTIFIER = "11350100003600011X-35010000000001-A1-001"


def licence_member(pki: Pki, **changes: Any) -> dict[str, Any]:
    member = {
        "identifier": LICENCE_IDENTIFIER, "version": 1, "type_code": "T" * 21,
        "type_name": "食品经营许可证", "issuer_code": "D1", "issuer_name": "测试局",
        "holder_name": "张*", "holder_id": "350***********1234",
        "valid_from": "2026-01-01", "valid_until": "2030-12-31",
        "status": "valid", "status_label": "有效 / valid", "sha256": "ab" * 32,
        "record_digest": "00" * 16,
        "seal_certificate_serial": format(pki.seal.serial_number, "x"),
    }
    member.update(changes)
    return member


@dataclass
class Network:
    """Stands for the network: each known host answers its trust list, OCSP and status; a test
    changes what a host answers by setting ``lists``, ``ocsp`` or ``status``."""

    domains: dict[str, Pki] = field(default_factory=dict)
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    ocsp: dict[str, Callable[[Pki, bytes], bytes]] = field(default_factory=dict)
    status: dict[str, Callable[[Pki, str, str], dict[str, Any] | httpx.Response]] = field(
        default_factory=dict
    )
    requests: list[httpx.Request] = field(default_factory=list)

    def add(self, pki: Pki, document: dict[str, Any] | None = None) -> Network:
        self.domains[pki.host] = pki
        self.lists[pki.host] = document if document is not None else pki.document()
        return self

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        pki = self.domains.get(request.url.host)
        if pki is None:
            return httpx.Response(404)
        path = request.url.path
        if path == "/pki/trust-list":
            return httpx.Response(200, json=self.lists[pki.host])
        if path == "/pki/ocsp" or path.startswith("/pki/ocsp/"):
            answer = self.ocsp.get(pki.host, lambda p, body: ocsp_response(p, body))
            return httpx.Response(200, content=answer(pki, request.content))
        if path.startswith("/pki/licence-status/"):
            raw = request.url.raw_path.decode().split("?", 1)[0]
            query = unquote(raw.rsplit("/", 1)[1])
            nonce = parse_qs(urlsplit(str(request.url)).query)["nonce"][0]
            make = self.status.get(pki.host, lambda p, q, n: p.sign(status_body(p, q, n), STATUS_TYPE))
            made = make(pki, query, nonce)
            if isinstance(made, httpx.Response):
                return made
            return httpx.Response(200, content=json.dumps(made).encode())
        return httpx.Response(404)
