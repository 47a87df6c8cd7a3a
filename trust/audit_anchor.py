"""The audit chain anchored outside the database.

A hash chain and signed checkpoints stop an edit, but whoever can write the database can delete
every checkpoint, rewrite the chain with recomputed hashes and move its head; nothing inside the
database remembers what was there. So each checkpoint also carries an RFC 3161 token of the
domain's own TSA over its numbered hash (:func:`core.audit.checkpoint_digest`), the latest
timestamped checkpoint is published in the signed trust list (``audit_checkpoint``), and an
operator or supervisor keeps a copy: a saved trust list, or a checkpoint exported with
``elicence audit checkpoint --out FILE``. ``elicence audit verify --anchor FILE`` then checks the
file (the trust list's JWS under one of this domain's trust-list signers, or the exported
checkpoint's audit-key signature; the TSA token either way) and that the chain still holds that
entry with that hash — the chain links from the first entry, so nothing up to it changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlmodel import Session, select

from core.audit import (
    ChainReport,
    anchor_problem,
    checkpoint_digest,
    checkpoint_json,
    latest_checkpoint,
    verify_chain,
)
from core.errors import InvalidInput, NotFound, Unavailable
from keys.audit import AuditCheckpointer, CheckpointReport
from trust.authority import TrustDomain
from trust.models import CertificateRecord
from trust.profiles import Role
from trust.trustlist import FORMAT as TRUST_LIST_FORMAT
from trust.trustlist import fingerprint, verify_trust_list
from trust.tsa import TimeStampAuthority

CHECKPOINT_FORMAT = "elicence-audit-checkpoint/1"
FIELD = "anchor"


def _certificates(session: Session, trust: TrustDomain, role: Role) -> list[x509.Certificate]:
    """Every certificate this domain has issued for ``role`` (a rotated one still counts for
    what it signed while current)."""
    rows = session.exec(select(CertificateRecord).where(CertificateRecord.role == role.value))
    return [trust.certificate(row) for row in rows]


class CheckpointTsa:
    """The domain's TSA timestamping and checking audit checkpoints
    (:class:`keys.audit.CheckpointTimestamps`)."""

    def __init__(self, *, trust: TrustDomain, tsa: TimeStampAuthority) -> None:
        self._trust = trust
        self._tsa = tsa

    def stamp(self, session: Session, digest: bytes) -> bytes:
        request = tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": digest,
                },
                "nonce": secrets.randbits(63),
                "cert_req": False,
            }
        )
        response = self._tsa.unit(session).respond(request)
        if response["status"]["status"].native != "granted":
            raise Unavailable(
                "时间戳服务拒绝为审计检查点盖时间戳 / the TSA refused to timestamp an audit checkpoint",
                cause=str(response["status"].native),
            )
        return bytes(response["time_stamp_token"].dump())

    def check(self, session: Session, digest: bytes, token: bytes) -> str | None:
        return token_problem(token, digest, _certificates(session, self._trust, Role.TSA))


def token_problem(token: bytes, digest: bytes, certificates: list[x509.Certificate]) -> str | None:
    """Why ``token`` is not an RFC 3161 token over the SHA-256 ``digest`` signed by one of
    ``certificates``, or None."""
    try:
        signed = cms.ContentInfo.load(token)
        if signed["content_type"].native != "signed_data":
            return "not a CMS SignedData"
        data = signed["content"]
        encap = data["encap_content_info"]
        if encap["content_type"].native != "tst_info" or len(data["signer_infos"]) != 1:
            return "not a timestamp token"
        tst_der = bytes(encap["content"].contents)
        imprint = tsp.TSTInfo.load(tst_der)["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native != "sha256":
            return "its imprint is not SHA-256"
        if imprint["hashed_message"].native != digest:
            return "its message imprint is not this checkpoint's hash"
        signer = data["signer_infos"][0]
        attributes = {a["type"].native: a["values"][0].native for a in signer["signed_attrs"]}
        if signer["digest_algorithm"]["algorithm"].native != "sha256":
            return "its digest algorithm is not SHA-256"
        if attributes.get("content_type") != "tst_info":
            return "its signed content type is not TSTInfo"
        if attributes.get("message_digest") != hashlib.sha256(tst_der).digest():
            return "its content does not match its signed digest"
        sid = signer["sid"].chosen
        issuer, serial = sid["issuer"].dump(), sid["serial_number"].native
        certificate = next(
            (
                c
                for c in certificates
                if c.serial_number == serial and c.issuer.public_bytes() == issuer
            ),
            None,
        )
        if certificate is None:
            return "it is not signed by a TSA certificate of this domain"
        signed_attrs = b"\x31" + signer["signed_attrs"].dump()[1:]  # as the SET that was signed
        algorithm = signer["signature_algorithm"].signature_algo
        if not _verifies(certificate, bytes(signer["signature"].native), signed_attrs, algorithm):
            return "its signature does not verify"
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return "it cannot be read as a timestamp token"
    return None


def _verifies(certificate: x509.Certificate, signature: bytes, data: bytes, algo: str) -> bool:
    public = certificate.public_key()
    try:
        if algo == "ecdsa" and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif algo == "rsassa_pkcs1v15" and isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except Exception:  # InvalidSignature and friends
        return False
    return True


# -- anchors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A checkpoint kept outside the database: number, audit entry, head hash."""

    number: int
    entry: int
    hash: str
    source: str  # "trust list 7", "exported checkpoint"


def refuse(message: str) -> InvalidInput:
    return InvalidInput(f"锚定文件不可信 / the anchor file is not usable: {message}", field=FIELD)


def read_anchor(
    session: Session,
    document: Any,
    *,
    trust: TrustDomain,
    checkpoints: AuditCheckpointer,
) -> Anchor:
    """The checkpoint of a saved trust list (its JWS checked under one of this domain's
    trust-list signers) or of an exported checkpoint (its audit-key signature checked); the TSA
    token either way. Refuses anything else."""
    kind = document.get("format") if isinstance(document, dict) else None
    if kind == TRUST_LIST_FORMAT:
        _authentic_list(session, document, trust)
        member = document.get("audit_checkpoint")
        if not isinstance(member, dict):
            raise refuse("该信任列表没有审计检查点 / this trust list carries no audit checkpoint")
        source = f"trust list {document.get('sequence')}"
    elif kind == CHECKPOINT_FORMAT:
        member = document
        source = "exported checkpoint"
    else:
        raise refuse(
            f"既不是信任列表也不是导出的检查点 / neither a trust list nor an exported checkpoint "
            f"(format {kind!r})"
        )
    anchor, token = _fields(member, source)
    if kind == CHECKPOINT_FORMAT:
        signature = _base64(member.get("signature"), "signature")
        if not checkpoints.signed(anchor.number, anchor.entry, anchor.hash, signature):
            raise refuse("检查点签名无效 / the checkpoint's audit-key signature does not verify")
    digest = checkpoint_digest(anchor.number, anchor.entry, anchor.hash)
    problem = token_problem(token, digest, _certificates(session, trust, Role.TSA))
    if problem is not None:
        raise refuse(f"检查点时间戳无效 / the checkpoint's timestamp does not verify: {problem}")
    return anchor


def _authentic_list(session: Session, document: dict[str, Any], trust: TrustDomain) -> None:
    ours = {fingerprint(c) for c in _certificates(session, trust, Role.TRUST_LIST)}
    try:
        claimed = fingerprint(
            x509.load_pem_x509_certificate(document["signer"]["certificate"].encode())
        )
        genuine = claimed in ours and verify_trust_list(document, claimed)
    except (TypeError, KeyError, ValueError, AttributeError):
        genuine = False
    if not genuine:
        raise refuse(
            "信任列表签名无效或不是本信任域签发 / the trust list's signature does not verify under "
            "this domain's trust-list signer"
        )


def _fields(member: dict[str, Any], source: str) -> tuple[Anchor, bytes]:
    number, entry, head = member.get("sequence"), member.get("entry"), member.get("hash")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (number, entry)):
        raise refuse("检查点序号无效 / sequence and entry must be positive integers")
    if not isinstance(head, str) or len(head) != 64:
        raise refuse("检查点哈希无效 / hash must be 64 hex digits")
    token = _base64(member.get("timestamp"), "timestamp")
    return Anchor(number, entry, head, source), token  # type: ignore[arg-type]


def _base64(value: Any, member: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise refuse(f"{member} 不是 base64 / {member} is not base64") from None


def export_checkpoint(session: Session, domain_name: str) -> dict[str, Any]:
    """The latest timestamped checkpoint as a file to keep (``elicence audit checkpoint``)."""
    checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        raise NotFound(
            "还没有带时间戳的审计检查点 / there is no timestamped audit checkpoint yet",
            field="checkpoint",
        )
    return {
        "format": CHECKPOINT_FORMAT,
        "domain": domain_name,
        **checkpoint_json(checkpoint),
        "signature": base64.b64encode(checkpoint.signature).decode("ascii"),
    }


# -- the whole check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditVerdict:
    chain: ChainReport
    checkpoints: CheckpointReport
    anchor: Anchor | None = None
    anchor_problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.chain.intact and self.checkpoints.intact and self.anchor_problem is None


def verify_audit(
    session: Session, checkpoints: AuditCheckpointer, anchor: Anchor | None = None
) -> AuditVerdict:
    """The chain from its first entry, every checkpoint, and the anchor when one is given."""
    chain = verify_chain(session)
    report = checkpoints.check(session)
    problem = None
    if anchor is not None and chain.intact:
        problem = anchor_problem(session, anchor.number, anchor.entry, anchor.hash)
    return AuditVerdict(chain, report, anchor, problem)
