"""Another domain's trust list: is it authentic, well formed, current, and newer than ours?

A list is accepted only when, in this order: its signer certificate has the pinned SHA-256
fingerprint; its JWS verifies with that certificate; it has the members of
``docs/trust-list.md``; its signer is issued by one of the CAs it lists and carries the
trust-list-signing EKU; its ``next_update`` is still ahead; and, against the list already
stored, its ``sequence`` is higher (or equal with the very same content). Each refusal is one
line that says which rule failed. Nothing here touches the network or the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.errors import Conflict, InvalidInput
from trust.profiles import TRUST_LIST_SIGNING
from trust.trustlist import FORMAT, canonical, fingerprint, verify_trust_list

FIELD = "trust-list"


@dataclass(frozen=True)
class CaEntry:
    name: str
    certificate: x509.Certificate
    crl_url: str | None
    ocsp_url: str | None


@dataclass(frozen=True)
class SealEntry:
    seal: str
    serial: str
    department_name: str | None
    department_code: str | None
    certificate: x509.Certificate
    status: str  # valid | suspended | revoked | expired
    revoked_at: datetime | None


@dataclass(frozen=True)
class TrustList:
    document: dict[str, Any]
    name: str
    organisation: str
    base_url: str
    trust_list_url: str
    sequence: int
    issued_at: datetime
    next_update: datetime
    cas: tuple[CaEntry, ...]
    seals: tuple[SealEntry, ...]
    signer: x509.Certificate
    fingerprint: str
    tsa: x509.Certificate | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical document: two lists with one sequence must share it."""
        return hashlib.sha256(canonical(self.document)).hexdigest()

    def issuer_of(self, certificate: x509.Certificate) -> CaEntry | None:
        """The listed CA whose key signed ``certificate``."""
        for ca in self.cas:
            if ca.certificate.subject == certificate.issuer and _signed_by(
                certificate, ca.certificate
            ):
                return ca
        return None

    def seal(self, certificate: x509.Certificate) -> SealEntry | None:
        """The ``seals`` entry of exactly this certificate."""
        for entry in self.seals:
            if entry.certificate == certificate:
                return entry
        return None


def refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field=FIELD)


def parse_time(value: Any, member: str) -> datetime:
    if not isinstance(value, str):
        raise refuse(f"信任列表缺少 {member} / the trust list has no valid {member}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise refuse(f"信任列表 {member} 格式错误 / {member} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise refuse(f"信任列表 {member} 缺少时区 / {member} has no time zone")
    return moment


def authenticate(document: Any, pinned: str) -> None:
    """Pin first, then signature: a list from another signer is named as such, not as forged."""
    try:
        pem = document["signer"]["certificate"]
        signer = x509.load_pem_x509_certificate(pem.encode())
        if not isinstance(document["signature"]["protected"], str):
            raise TypeError("protected header")
    except (TypeError, KeyError, ValueError, AttributeError):
        raise refuse(
            "不是签名的信任列表 / not a signed trust list (no signer certificate or signature)"
        ) from None
    found = fingerprint(signer)
    if found != pinned.lower():
        raise refuse(
            f"签名者证书指纹不符 / the signer's SHA-256 fingerprint {found} is not the pinned "
            f"{pinned.lower()}"
        )
    try:
        genuine = verify_trust_list(document, pinned)
    except (TypeError, KeyError, ValueError, AttributeError):
        genuine = False
    if not genuine:
        raise refuse(
            "信任列表签名无效（已被改动或伪造） / the trust list's signature does not verify "
            "(altered or forged)"
        )


def parse(document: dict[str, Any]) -> TrustList:
    """The members a relying party uses, with certificates parsed; refuses a malformed list."""
    try:
        sequence, domain, name = _header(document)
        cas = _ca_entries(document["cas"])
        seals = _seal_entries(document["seals"])
        signer = x509.load_pem_x509_certificate(document["signer"]["certificate"].encode())
        tsa = document.get("tsa")
        parsed = TrustList(
            document=document,
            name=name,
            organisation=str(domain.get("organisation") or ""),
            base_url=str(domain.get("base_url") or ""),
            trust_list_url=str(domain.get("trust_list_url") or ""),
            sequence=sequence,
            issued_at=parse_time(document.get("issued_at"), "issued_at"),
            next_update=parse_time(document.get("next_update"), "next_update"),
            cas=cas,
            seals=seals,
            signer=signer,
            fingerprint=fingerprint(signer),
            tsa=x509.load_pem_x509_certificate(tsa["certificate"].encode()) if tsa else None,
        )
    except InvalidInput:
        raise
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise refuse(
            f"信任列表内容不完整 / the trust list is malformed: {type(exc).__name__} {exc}"[:300]
        ) from None
    if not cas:
        raise refuse("信任列表没有CA / the trust list names no CA")
    _check_signer(parsed)
    return parsed


def _header(document: dict[str, Any]) -> tuple[int, Any, str]:
    """The format, sequence and domain name a list must have before anything else is read."""
    if document.get("format") != FORMAT:
        raise refuse(f"不支持的信任列表格式 / format {document.get('format')!r} is not {FORMAT}")
    sequence = document["sequence"]
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise refuse("信任列表序号无效 / sequence is not a positive integer")
    domain = document["domain"]
    name = domain["name"]
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        raise refuse("信任域名称无效 / domain.name must be 1 to 128 characters")
    return sequence, domain, name


def _ca_entries(entries: Any) -> tuple[CaEntry, ...]:
    """The ``cas`` members, certificates parsed (a malformed one raises for ``parse``)."""
    return tuple(
        CaEntry(
            name=str(entry["name"]),
            certificate=x509.load_pem_x509_certificate(entry["certificate"].encode()),
            crl_url=entry.get("crl_url"),
            ocsp_url=entry.get("ocsp_url"),
        )
        for entry in entries
    )


def _seal_entries(entries: Any) -> tuple[SealEntry, ...]:
    """The ``seals`` members, certificates and revocation times parsed."""
    return tuple(
        SealEntry(
            seal=str(entry["seal"]),
            serial=str(entry["serial"]),
            department_name=(entry.get("department") or {}).get("name"),
            department_code=(entry.get("department") or {}).get("code"),
            certificate=x509.load_pem_x509_certificate(entry["certificate"].encode()),
            status=str(entry["status"]),
            revoked_at=parse_time(entry["revoked_at"], "revoked_at")
            if entry.get("revoked_at")
            else None,
        )
        for entry in entries
    )


def _check_signer(parsed: TrustList) -> None:
    """The signer must be the domain's own trust-list signer: issued by one of its listed CAs,
    with EKU id-tsl-kp-tslSigning (ETSI TS 119 612)."""
    if parsed.issuer_of(parsed.signer) is None:
        raise refuse(
            "签名者证书不由列表中的CA签发 / the signer certificate is not issued by a CA of the list"
        )
    try:
        usages = parsed.signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])
    if TRUST_LIST_SIGNING not in list(usages):
        raise refuse(
            "签名者证书不是信任列表签名证书 / the signer certificate lacks the trust-list signing EKU"
        )


def check_current(parsed: TrustList, now: datetime) -> None:
    if parsed.next_update <= now:
        raise refuse(
            f"信任列表已过期（下次更新 {parsed.next_update.isoformat()}） / the trust list is "
            f"stale: its next_update {parsed.next_update.isoformat()} has passed"
        )
    if not parsed.signer.not_valid_before_utc <= now <= parsed.signer.not_valid_after_utc:
        raise refuse("信任列表签名证书不在有效期内 / the signer certificate is not valid now")


def check_successor(parsed: TrustList, stored_sequence: int, stored_digest: str) -> bool:
    """True when ``parsed`` is newer than the stored list, False when it is the same list;
    refuses an older one, and one that reuses the stored sequence with other content."""
    if parsed.sequence < stored_sequence:
        raise Conflict(
            f"信任列表序号 {parsed.sequence} 早于已保存的 {stored_sequence}，拒绝回放 / sequence "
            f"{parsed.sequence} is older than the stored {stored_sequence}; refused as a replay",
            field=FIELD,
        )
    if parsed.sequence == stored_sequence:
        if parsed.digest != stored_digest:
            raise Conflict(
                f"信任列表序号 {parsed.sequence} 与已保存列表相同但内容不同 / sequence "
                f"{parsed.sequence} equals the stored one but the content differs; refused",
                field=FIELD,
            )
        return False
    return True


def accept(
    document: Any,
    pinned: str,
    now: datetime,
    stored: tuple[int, str] | None = None,
) -> tuple[TrustList, bool]:
    """Every rule of the module docstring, in order; returns the parsed list and whether it is
    new (False: the stored list fetched again)."""
    authenticate(document, pinned)
    parsed = parse(document)
    check_current(parsed, now)
    if stored is None:
        return parsed, True
    return parsed, check_successor(parsed, *stored)


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, or a key type that cannot have signed it
        return False
    return True
