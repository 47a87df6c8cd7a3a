"""What a recognised domain may speak for, and where it may send this server.

A recognised domain speaks only for the certificates that chain to its own root: the root its
pinned trust-list signer chains to (through the CAs of its list), recorded when the domain is
recognised and the same in every later list. A list is refused whole when

- a CA it lists does not chain to that root, or a seal or its TSA is not issued by one of its
  CAs (``does not chain to the domain's own root``);
- it lists a CA, seal, TSA, signer or QR key — compared by public key, so a cross-certificate
  of another domain's CA key is caught too, and QR keys also by key id — of this domain or of
  another recognised domain;
- an OCSP or CRL URL of its CAs, or its ``domain.base_url`` (where its licence-status answers
  are asked for), has another origin (scheme, host, port) than the URL its list is fetched from.

Nothing here touches the network or the database: ``trust.federation`` gathers this domain's
and the other domains' material and calls :func:`check_list` before it opens a transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from trust.federation_list import TrustList, refuse
from trust.trustlist import fingerprint

MAX_DEPTH = 8
KID_BYTES = 8  # a QR key id: the first 8 bytes of the SHA-256 of the SubjectPublicKeyInfo
LABELS = {
    "CA": "CA证书",
    "seal": "印章证书",
    "TSA": "时间戳服务证书",
    "signer": "信任列表签名者证书",
    "QR key": "二维码密钥",
}


@dataclass(frozen=True)
class Material:
    """The public keys a domain publishes: SHA-256 of each SubjectPublicKeyInfo, and the key
    ids of its QR keys."""

    keys: frozenset[str]
    kids: frozenset[str]


def _spki(public_key: Any) -> bytes:
    return bytes(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def entries(document: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(kind, SHA-256 of the public key, QR key id or None) of every key the list names;
    entries that do not parse are skipped (nobody can use them either)."""
    certificates: list[tuple[str, Any]] = [
        ("CA", ca.get("certificate")) for ca in _dicts(document.get("cas"))
    ]
    certificates += [("seal", seal.get("certificate")) for seal in _dicts(document.get("seals"))]
    certificates += [("TSA", tsa.get("certificate")) for tsa in _dicts([document.get("tsa")])]
    certificates += [("signer", s.get("certificate")) for s in _dicts([document.get("signer")])]
    for kind, pem in certificates:
        try:
            key: Any = x509.load_pem_x509_certificate(pem.encode()).public_key()
        except (TypeError, ValueError, AttributeError, UnsupportedAlgorithm):
            continue
        yield kind, hashlib.sha256(_spki(key)).hexdigest(), None
    for entry in _dicts(document.get("qr_keys")):
        try:
            public = serialization.load_pem_public_key(entry["public_key_pem"].encode("ascii"))
        except (TypeError, KeyError, ValueError, AttributeError, UnsupportedAlgorithm):
            continue
        digest = hashlib.sha256(_spki(public)).hexdigest()
        yield "QR key", digest, digest[: 2 * KID_BYTES]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def material(document: Mapping[str, Any]) -> Material:
    found = list(entries(document))
    return Material(
        keys=frozenset(key for _, key, _ in found),
        kids=frozenset(kid for _, _, kid in found if kid is not None),
    )


# -- the own root --------------------------------------------------------------------------


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except Exception:  # InvalidSignature, or a key that cannot sign
        return False
    return True


def chain_root(listed: TrustList, certificate: x509.Certificate) -> x509.Certificate | None:
    """The self-signed CA of the list that ``certificate`` chains to through the list's CAs."""
    current = certificate
    for _ in range(MAX_DEPTH):
        if _self_signed(current):
            return current if any(ca.certificate == current for ca in listed.cas) else None
        issuer = listed.issuer_of(current)
        if issuer is None:
            return None
        current = issuer.certificate
    return None


def own_root(listed: TrustList, pinned_root: str | None) -> str:
    """The SHA-256 of the root the signer chains to, which every CA, seal and the TSA of the
    list must chain to as well; refuses the list otherwise, or when the root is not the one
    recorded when the domain was recognised."""
    root = chain_root(listed, listed.signer)
    if root is None:
        raise refuse(
            "签名者证书不链接到列表中的根CA / the signer certificate does not chain to a root of "
            "the list"
        )
    root_sha256 = fingerprint(root)
    if pinned_root is not None and root_sha256 != pinned_root:
        raise refuse(
            f"信任列表的根CA已变更 / the list's root {root_sha256} is not the root {pinned_root} "
            "recorded when the domain was recognised; remove the domain and add it again"
        )
    named: list[tuple[str, x509.Certificate]] = [("CA", ca.certificate) for ca in listed.cas]
    named += [("seal", seal.certificate) for seal in listed.seals]
    named += [("TSA", listed.tsa)] if listed.tsa is not None else []
    for kind, certificate in named:
        found = chain_root(listed, certificate)
        if found is None or fingerprint(found) != root_sha256:
            subject = certificate.subject.rfc4514_string()[:120]
            raise refuse(
                f"信任列表中的{LABELS[kind]} {subject} 不属于该信任域的根 / the list's {kind} "
                f"{subject} does not chain to the domain's own root; a domain speaks only for "
                "its own certificates"
            )
    return root_sha256


# -- origins -------------------------------------------------------------------------------


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def check_origins(listed: TrustList, url: str) -> None:
    """Every URL of the list this server will ask (OCSP, CRL, status) is on ``url``'s origin."""
    expected = origin(url)
    named: list[tuple[str, str | None]] = [("domain.base_url", listed.base_url)]
    for ca in listed.cas:
        named += [
            (f"cas[{ca.name}].ocsp_url", ca.ocsp_url),
            (f"cas[{ca.name}].crl_url", ca.crl_url),
        ]
    for member, value in named:
        if member == "domain.base_url" or value:
            if not isinstance(value, str) or origin(value) != expected:
                raise refuse(
                    f"信任列表的 {member[:60]} 不在信任列表网址的源上 / the list's {member[:60]} is "
                    "not on the origin (scheme, host, port) of its trust-list URL"
                )


# -- one domain's material only ------------------------------------------------------------


def check_disjoint(
    document: Mapping[str, Any], own: Material, others: Mapping[str, Material]
) -> None:
    """Refuses a list that names a key of this domain or of another recognised domain."""
    for kind, key, kid in entries(document):
        if key in own.keys or (kid is not None and kid in own.kids):
            raise refuse(
                f"信任列表列出了本信任域的{LABELS[kind]} / the list names a {kind} of this domain; "
                "a domain speaks only for its own keys"
            )
        for name, theirs in sorted(others.items()):
            if key in theirs.keys or (kid is not None and kid in theirs.kids):
                raise refuse(
                    f"信任列表列出了已承认信任域 {name} 的{LABELS[kind]} / the list names a {kind} "
                    f"of the recognised domain {name}; a domain speaks only for its own keys"
                )


def check_list(
    listed: TrustList,
    url: str,
    pinned_root: str | None,
    own: Material,
    others: Mapping[str, Material],
) -> str:
    """Every rule of the module docstring; returns the SHA-256 of the domain's root."""
    check_origins(listed, url)
    check_disjoint(listed.document, own, others)
    return own_root(listed, pinned_root)
