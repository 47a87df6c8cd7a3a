"""GB/T 38540-2020 (安全电子签章密码技术规范) structures, version 4, as DER.

An OFD licence carries two of them: the ``SESeal`` (印章), made once per seal by the seal maker
(制章人, the domain's SM2 seal CA), which binds the seal's picture and its holder's SM2
certificate under the maker's signature; and the ``SES_Signature`` (签章), made per document by
the department's SM2 seal key, whose ``dataHash`` is the SM3 of the exact bytes of the OFD's
``Signature.xml`` — the file that lists the SM3 of every content file. The shapes below are
those of /tmp/notes/OFD-CONTRACT.md, which the verifier (``verify.ofd*``) parses with the same
classes: change them only together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from asn1crypto import core

SM2_SM3_OID = "1.2.156.10197.1.501"  # SM2 signature with SM3 (GB/T 33560)
SES_VERSION = 4
SEAL_TYPE_ORGANISATION = 1  # 单位印章
CERT_LIST_TYPE_CERTS = 1  # certList holds the certificates themselves
VID = "elicence"


class SES_Header(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertList(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.OctetString


class SES_ESPropertyInfo(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", CertList),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class SES_ESPictrueInfo(core.Sequence):  # type: ignore[misc]
    """``SES_ESPictrueInfo`` (the standard's spelling): the seal's picture, size in mm."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class SES_SealInfo(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("header", SES_Header),
        ("es_id", core.IA5String),
        ("property", SES_ESPropertyInfo),
        ("picture", SES_ESPictrueInfo),
    ]


class SESeal(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("eseal_info", SES_SealInfo),
        ("cert", core.OctetString),  # the seal maker's certificate, DER
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
    ]


class TBS_Sign(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer),
        ("eseal", SESeal),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
    ]


class SES_Signature(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("to_sign", TBS_Sign),
        ("cert", core.OctetString),  # the signer's (department's) SM2 seal certificate, DER
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


def seal_info(
    *,
    es_id: str,
    name: str,
    holder_certificate_der: bytes,
    created: datetime,
    valid_start: datetime,
    valid_end: datetime,
    picture_png: bytes,
    width_mm: int,
    height_mm: int,
) -> SES_SealInfo:
    """The seal maker's statement: which seal, whose certificate, which picture, how long."""
    return SES_SealInfo(
        {
            "header": {"id": "ES", "version": SES_VERSION, "vid": VID},
            "es_id": es_id,
            "property": {
                "type": SEAL_TYPE_ORGANISATION,
                "name": name,
                "cert_list_type": CERT_LIST_TYPE_CERTS,
                "cert_list": [holder_certificate_der],
                "create_date": _whole_seconds(created),
                "valid_start": _whole_seconds(valid_start),
                "valid_end": _whole_seconds(valid_end),
            },
            "picture": {
                "type": "PNG",
                "data": picture_png,
                "width": width_mm,
                "height": height_mm,
            },
        }
    )


def seseal(info: SES_SealInfo, *, maker_certificate_der: bytes, signature: bytes) -> SESeal:
    """The seal: ``info`` and the maker's SM2 signature over ``info.dump()``."""
    return SESeal(
        {
            "eseal_info": info,
            "cert": maker_certificate_der,
            "sign_alg_id": SM2_SM3_OID,
            "signed_value": signature,
        }
    )


def tbs_sign(seal: SESeal, *, time: datetime, data_hash: bytes, property_info: str) -> TBS_Sign:
    """What the signer signs: the seal, the time, and the SM3 of the signed file."""
    return TBS_Sign(
        {
            "version": SES_VERSION,
            # A parsed copy: nesting it then copies its bytes, never re-encodes them.
            "eseal": SESeal.load(seal.dump()),
            "time_info": _whole_seconds(time),
            "data_hash": data_hash,
            "property_info": property_info,
        }
    )


def ses_signature(
    tbs: TBS_Sign, *, certificate_der: bytes, signature: bytes, timestamp: bytes | None
) -> SES_Signature:
    value: dict[str, object] = {
        "to_sign": TBS_Sign.load(tbs.dump()),
        "cert": certificate_der,
        "signature_alg_id": SM2_SM3_OID,
        "signature": signature,
    }
    if timestamp is not None:
        value["time_stamp"] = timestamp
    return SES_Signature(value)


def _whole_seconds(moment: datetime) -> datetime:
    """GeneralizedTime without fractions, in UTC (asn1crypto writes the ``Z`` form)."""
    return moment.replace(microsecond=0)
