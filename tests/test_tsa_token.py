"""The TSA's tokens, assembled from DER parts (trust/tsa_der.py), are byte for byte what
asn1crypto builds from the same values, for every shape of request a client may send; and
they still verify: the signature over the signed attributes, the message digest of the TSTInfo,
and the imprint, nonce and certificate a client asked for."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from core.clock import FixedClock
from tests.security.support import tsa_unit
from trust import tsa as tsa_module
from trust.tsa import TSA_POLICY, TimeStampUnit

NOW = datetime(2026, 12, 6, 23, 5, 7, tzinfo=UTC)
SERIAL = 0x1234_5678_9ABC_DEF0_1122_3344


def _attr(kind: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": kind, "values": [value]})


def reference(
    certificate: asn1_x509.Certificate,
    imprint: tsp.MessageImprint,
    nonce: int | None,
    want_certs: bool,
    signature: bytes,
) -> bytes:
    """The token as the TSA built it with asn1crypto before it was assembled from parts."""
    certificate = asn1_x509.Certificate.load(certificate.dump())
    info: dict[str, object] = {
        "version": "v1",
        "policy": TSA_POLICY,
        "message_imprint": imprint,
        "serial_number": SERIAL,
        "gen_time": NOW,
        "accuracy": tsp.Accuracy({"seconds": 1}),
        "tsa": asn1_x509.GeneralName(name="directory_name", value=certificate.subject),
    }
    if nonce is not None:
        info["nonce"] = nonce
    tst_info = tsp.TSTInfo(info).dump()
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha256(certificate.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [
                            asn1_x509.GeneralName(name="directory_name", value=certificate.issuer)
                        ],
                        "serial_number": certificate.serial_number,
                    },
                }
            ]
        }
    )
    signed_attrs = cms.CMSAttributes(
        [
            _attr("content_type", "tst_info"),
            _attr("signing_time", cms.Time({"utc_time": core.UTCTime(NOW)})),
            _attr("message_digest", hashlib.sha256(tst_info).digest()),
            _attr("signing_certificate_v2", ess),
        ]
    )
    digest_algorithm = algos.DigestAlgorithm({"algorithm": "sha256"})
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                    )
                }
            ),
            "digest_algorithm": digest_algorithm,
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signature,
        }
    )
    signed_data: dict[str, object] = {
        "version": "v3",
        "digest_algorithms": [digest_algorithm],
        "encap_content_info": {
            "content_type": "tst_info",
            "content": cms.ParsableOctetString(tst_info),
        },
        "signer_infos": [signer_info],
    }
    if want_certs:
        signed_data["certificates"] = [certificate]
    token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
    return bytes(token.dump())


def _unit() -> tuple[TimeStampUnit, Any]:
    shared, certificate = tsa_unit("令牌字节 Token bytes TSA")
    # A unit of its own (fresh template) on a fixed clock, same key and certificate.
    unit = TimeStampUnit(shared.keystore, FixedClock(NOW), shared.key_ref, shared.certificate)
    return unit, certificate


def _request(algorithm: str, nonce: int | None, want_certs: bool) -> tsp.TimeStampReq:
    size = {"sha256": 32, "sha384": 48, "sha512": 64}[algorithm]
    request: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": algorithm},
            "hashed_message": bytes(range(size)),
        },
        "cert_req": want_certs,
    }
    if nonce is not None:
        request["nonce"] = nonce
    return tsp.TimeStampReq(request)


@pytest.mark.parametrize(
    ("algorithm", "nonce", "want_certs"),
    [
        ("sha256", None, True),
        ("sha256", 7, False),
        ("sha384", 2**63 - 1, True),
        ("sha512", 2**159 + 12345, True),  # a 160-bit nonce, as pyHanko sends
        ("sha256", 128, True),  # the high bit set: DER needs a leading zero byte
        ("sha256", -1, False),  # a hostile client's negative nonce is echoed, not refused
        ("sha256", 0, True),
    ],
)
def test_the_assembled_token_is_what_asn1crypto_builds(
    monkeypatch: pytest.MonkeyPatch, algorithm: str, nonce: int | None, want_certs: bool
) -> None:
    monkeypatch.setattr(tsa_module, "new_serial", lambda now: SERIAL)
    unit, _ = _unit()
    request = _request(algorithm, nonce, want_certs)
    response = unit.respond(request)
    assert response["status"]["status"].native == "granted"
    token = response["time_stamp_token"]
    signature = token["content"]["signer_infos"][0]["signature"].native
    imprint = tsp.MessageImprint.load(request["message_imprint"].dump())
    assert token.dump() == reference(unit.certificate, imprint, nonce, want_certs, signature)
    # and the response around it is a DER TimeStampResp that parses strictly
    reparsed = tsa_module.TimeStampResp.load(response.dump(), strict=True)
    assert reparsed["time_stamp_token"].dump() == token.dump()


def test_the_assembled_token_verifies_and_answers_the_request() -> None:
    unit, certificate = _unit()
    request = _request("sha256", 2**70 + 3, True)
    token = unit.respond(request)["time_stamp_token"]
    signed = token["content"]
    info = signed["encap_content_info"]["content"].parsed
    assert info["message_imprint"].dump() == request["message_imprint"].dump()
    assert info["nonce"].native == 2**70 + 3
    assert info["gen_time"].native == NOW
    assert info["policy"].dotted == TSA_POLICY
    assert signed["certificates"][0].chosen.dump() == unit.certificate.dump()
    signer = signed["signer_infos"][0]
    attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    digest = hashlib.sha256(signed["encap_content_info"]["content"].contents).digest()
    assert attrs["message_digest"].native == digest
    assert attrs["signing_time"].native == NOW
    # the signature is over the attributes as a SET (tag 0x31), under the TSA's key
    signed_attrs = signer["signed_attrs"].untag().dump()
    assert signed_attrs[:1] == b"\x31"
    public = certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signer["signature"].native, signed_attrs, ec.ECDSA(hashes.SHA256()))


def test_a_changed_tst_info_no_longer_matches_its_signed_digest() -> None:
    """What a forger would try: the same signed attributes over another TSTInfo (another
    time). The message digest attribute gives it away."""
    unit, _ = _unit()
    token = unit.respond(_request("sha256", 9, True))["time_stamp_token"]
    signed = token["content"]
    info = signed["encap_content_info"]["content"].parsed
    forged = tsp.TSTInfo.load(info.dump())
    forged["gen_time"] = datetime(2020, 1, 1, tzinfo=UTC)
    attrs = {a["type"].native: a["values"][0] for a in signed["signer_infos"][0]["signed_attrs"]}
    assert attrs["message_digest"].native != hashlib.sha256(forged.dump()).digest()
