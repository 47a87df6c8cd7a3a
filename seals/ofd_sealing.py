"""Sealing an OFD package with a GB/T 38540 electronic seal (SM2 with SM3).

The package's content files are frozen by listing each one's SM3 in ``Signature.xml``; the
department's SM2 seal key signs ``TBS_Sign``, whose ``dataHash`` is the SM3 of that file's exact
bytes and which carries the ``SESeal`` (the seal's picture and the department's certificate,
signed by the seal maker, the domain's SM2 seal CA). Our TSA timestamps the signature value, so
the time the seal was made is proven, not claimed. Any later change to a content file, to
``Signature.xml`` or to the seal breaks one link of that chain (``verify.ofd*`` checks each).

Layout and names are /tmp/notes/OFD-CONTRACT.md's. The ``SESeal`` of a seal is made once per
process and seal certificate (``SealMaker``): it changes only when the seal, its picture or its
SM2 certificate do, and each making is one use of the seal maker's key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509

from core.errors import Unavailable
from keys.sm2 import SM2_WITH_SM3_OID, SM3_OID, Sm2SigningStore, sign_message, sm3
from keys.store import KeyRef, KeyUseListener
from seals import ses
from seals.ofd_zip import zip_package
from trust.tsa import TimeStampUnit

NS = "http://www.ofdspec.org/2016"
SIGNS = "Doc_0/Signs"
SIGNATURES = f"{SIGNS}/Signatures.xml"
SIGNATURE = f"{SIGNS}/Sign_0/Signature.xml"
SEAL_FILE = f"{SIGNS}/Sign_0/Seal.esl"
SIGNED_VALUE = f"{SIGNS}/Sign_0/SignedValue.dat"
PROVIDER_VERSION = "1.0"
PICTURE_MM = 42  # the seal's drawn diameter (seals.image, licences.render.SEAL_SIZE)

# Signs ``message`` with the SM2 key ``ref`` (ID 1234567812345678) and tells the listener:
# ``keys.sm2.sign_message`` bound to the key store.
Sm2Sign = Callable[[KeyRef, bytes, KeyUseListener | None, str], bytes]


def store_signer(keystore: Sm2SigningStore) -> Sm2Sign:
    """``Sm2Sign`` through ``keystore`` (``keys.sm2.sign_message``, ID 1234567812345678)."""

    def sign(ref: KeyRef, message: bytes, listener: KeyUseListener | None, purpose: str) -> bytes:
        return sign_message(keystore, ref, message, listener=listener, purpose=purpose)

    return sign


@dataclass(frozen=True)
class Sm2SealKeys:
    """A department's seal in its SM2 form, as the domain's SM2 PKI issued it."""

    seal_code: str
    seal_name: str
    picture_png: bytes
    key: KeyRef  # the department's SM2 seal key
    certificate_der: bytes  # its SM2 seal certificate
    maker_key: KeyRef  # the SM2 seal CA's key (制章人)
    maker_certificate_der: bytes

    @property
    def certificate_serial(self) -> str:
        """Lower-case hex, as every certificate row names its serial."""
        return format(asn1_x509.Certificate.load(self.certificate_der).serial_number, "x")


@dataclass(frozen=True)
class SealedOfd:
    data: bytes
    sha256: str
    certificate_serial: str


class SealMaker:
    """The ``SESeal`` of each seal, made once per process and certificate."""

    def __init__(self, sign: Sm2Sign) -> None:
        self._sign = sign
        self._made: dict[tuple[str, bytes], bytes] = {}
        self._lock = threading.Lock()

    def seseal(self, keys: Sm2SealKeys, listener: KeyUseListener | None) -> bytes:
        fingerprint = hashlib.sha256(
            keys.certificate_der + keys.maker_certificate_der + keys.picture_png
        ).digest()
        cache_key = (keys.seal_code, fingerprint)
        with self._lock:
            made = self._made.get(cache_key)
        if made is not None:
            return made
        validity = asn1_x509.Certificate.load(keys.certificate_der)["tbs_certificate"]["validity"]
        start: datetime = validity["not_before"].native
        end: datetime = validity["not_after"].native
        info = ses.seal_info(
            es_id=keys.seal_code,
            name=keys.seal_name,
            holder_certificate_der=keys.certificate_der,
            created=start,
            valid_start=start,
            valid_end=end,
            picture_png=keys.picture_png,
            width_mm=PICTURE_MM,
            height_mm=PICTURE_MM,
        )
        signature = self._sign(keys.maker_key, info.dump(), listener, "seal-maker")
        der = bytes(
            ses.seseal(
                info, maker_certificate_der=keys.maker_certificate_der, signature=signature
            ).dump()
        )
        with self._lock:
            self._made.setdefault(cache_key, der)
        return der


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def signatures_xml() -> bytes:
    """The package's list of seals: exactly one."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ofd:Signatures xmlns:ofd="{NS}"><ofd:MaxSignId>1</ofd:MaxSignId>'
        '<ofd:Signature ID="1" Type="Seal" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>'
    ).encode()


def signature_xml(
    files: dict[str, bytes], *, when: datetime, page_id: int, stamp_box: str, company: str
) -> bytes:
    """``Signature.xml``: the SM3 of every content file, the stamp's place, the seal's file."""
    references = "".join(
        f'<ofd:Reference FileRef="/{_attr(path)}"><ofd:CheckValue>{_b64(sm3(data))}'
        "</ofd:CheckValue></ofd:Reference>"
        for path, data in files.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ofd:Signature xmlns:ofd="{NS}"><ofd:SignedInfo>'
        f'<ofd:Provider ProviderName="elicence" Version="{PROVIDER_VERSION}" '
        f'Company="{_attr(company)}"/>'
        f"<ofd:SignatureMethod>{SM2_WITH_SM3_OID}</ofd:SignatureMethod>"
        f"<ofd:SignatureDateTime>{when.strftime('%Y%m%d%H%M%SZ')}</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{SM3_OID}">{references}</ofd:References>'
        f'<ofd:StampAnnot ID="1" PageRef="{page_id}" Boundary="{stamp_box}"/>'
        f"<ofd:Seal><ofd:BaseLoc>/{SEAL_FILE}</ofd:BaseLoc></ofd:Seal></ofd:SignedInfo>"
        f"<ofd:SignedValue>/{SIGNED_VALUE}</ofd:SignedValue></ofd:Signature>"
    ).encode()


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def timestamp_token(unit: TimeStampUnit, digest: bytes, listener: KeyUseListener | None) -> bytes:
    """An RFC 3161 token from our own TSA over the SHA-256 ``digest``, in process — as the PDF
    seal gets its timestamp (``seals.ltv.InProcessTimeStamper``); the TSA key's use is told to
    ``listener``."""
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": digest,
            },
            "nonce": secrets.randbits(63),
            "cert_req": True,
        }
    )
    response = unit.respond(request, listener)
    if response["status"]["status"].native != "granted":
        raise Unavailable(
            "时间戳服务拒绝为签章盖时间戳 / the TSA refused to timestamp an OFD seal",
            cause=str(response["status"].native),
        )
    return bytes(response["time_stamp_token"].dump())


class OfdSealer:
    """Seals an OFD package's files with a department's SM2 seal."""

    def __init__(self, sign: Sm2Sign, maker: SealMaker | None = None) -> None:
        self._sign = sign
        self._maker = maker or SealMaker(sign)

    def seal(
        self,
        files: dict[str, bytes],
        *,
        keys: Sm2SealKeys,
        when: datetime,
        page_id: int,
        stamp_box: str,
        company: str,
        timestamps: TimeStampUnit | None,
        listener: KeyUseListener | None,
    ) -> SealedOfd:
        """The sealed package: ``files`` unchanged and in order, then ``Doc_0/Signs/``."""
        if any(path.startswith(f"{SIGNS}/") for path in files):
            raise ValueError("the package to seal already has signatures")
        when = when.replace(microsecond=0)
        seal_der = self._maker.seseal(keys, listener)
        signature_file = signature_xml(
            files, when=when, page_id=page_id, stamp_box=stamp_box, company=company
        )
        tbs = ses.tbs_sign(
            ses.SESeal.load(seal_der),
            time=when,
            data_hash=sm3(signature_file),
            property_info=f"/{SIGNATURE}",
        )
        signature = self._sign(keys.key, tbs.dump(), listener, "ofd-seal")
        token = None
        if timestamps is not None:
            token = timestamp_token(timestamps, hashlib.sha256(signature).digest(), listener)
        signed_value = ses.ses_signature(
            tbs, certificate_der=keys.certificate_der, signature=signature, timestamp=token
        ).dump()
        data = zip_package(
            {
                **files,
                SIGNATURES: signatures_xml(),
                SIGNATURE: signature_file,
                SEAL_FILE: seal_der,
                SIGNED_VALUE: bytes(signed_value),
            }
        )
        return SealedOfd(data, hashlib.sha256(data).hexdigest(), keys.certificate_serial)
