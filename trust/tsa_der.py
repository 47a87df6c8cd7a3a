"""The DER of a timestamp token, assembled from parts encoded once per TSA certificate.

A token differs from the next only in its TSTInfo's serial, time, imprint and nonce, in the
signing time and message digest attributes, and in the signature. Everything else — the policy,
the accuracy, the TSA's name, the ESS signing-certificate-v2 attribute, the SignerInfo's
identifier and algorithms, the certificate — is encoded here once and spliced in as bytes.
Building the same structures with asn1crypto cost ~8 ms a token (a freshly built value is
encoded again at every level it is nested in); this costs a few tens of microseconds. The
output is byte for byte what asn1crypto makes from the same values (tests/test_tsa_token.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509

# PKIStatusInfo { status granted (0) }, the first field of a granted TimeStampResp.
GRANTED = b"\x30\x03\x02\x01\x00"


def tlv(tag: int, content: bytes) -> bytes:
    """One DER tag-length-value (single-byte tags only, which is all a token uses)."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def integer(value: int) -> bytes:
    """A DER INTEGER: two's complement in the fewest bytes (a client's nonce may be negative)."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def _attr(kind: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": kind, "values": [value]})


def _oid(kind: str) -> bytes:
    return bytes(cms.CMSAttributeType(kind).dump())


_CONTENT_TYPE_OID = bytes(cms.ContentType("tst_info").dump())
_SIGNED_DATA_OID = bytes(cms.ContentType("signed_data").dump())
_SIGNING_TIME_OID = _oid("signing_time")
_MESSAGE_DIGEST_OID = _oid("message_digest")


@dataclass(frozen=True)
class TokenParts:
    """The constant DER of one TSA certificate's tokens."""

    ec: bool
    policy: bytes  # OBJECT IDENTIFIER
    accuracy: bytes  # Accuracy
    tsa: bytes  # [0] EXPLICIT GeneralName (directoryName)
    content_type_attr: bytes
    ess_attr: bytes  # signing-certificate-v2
    signer_head: bytes  # SignerInfo version, sid, digestAlgorithm
    signature_algorithm: bytes
    digest_algorithms: bytes  # SignedData's SET OF DigestAlgorithm
    certificates: bytes  # [0] IMPLICIT SET OF CertificateChoices

    @classmethod
    def of(cls, certificate: asn1_x509.Certificate, policy: str, ec: bool) -> TokenParts:
        certificate = asn1_x509.Certificate.load(certificate.dump())
        digest = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
        sid = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                    {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                )
            }
        ).dump()
        name = asn1_x509.GeneralName(name="directory_name", value=certificate.subject).dump()
        return cls(
            ec=ec,
            policy=bytes(core.ObjectIdentifier(policy).dump()),
            accuracy=bytes(tsp.Accuracy({"seconds": 1}).dump()),
            tsa=tlv(0xA0, name),
            content_type_attr=bytes(_attr("content_type", "tst_info").dump()),
            ess_attr=bytes(_attr("signing_certificate_v2", ess_cert_id_v2(certificate)).dump()),
            signer_head=integer(1) + sid + digest,
            signature_algorithm=bytes(
                algos.SignedDigestAlgorithm(
                    {"algorithm": "sha256_ecdsa" if ec else "sha256_rsa"}
                ).dump()
            ),
            digest_algorithms=tlv(0x31, digest),
            certificates=tlv(0xA0, certificate.dump()),
        )

    def tst_info(self, imprint: bytes, serial: int, now: datetime, nonce: int | None) -> bytes:
        """TSTInfo (RFC 3161 § 2.4.2): version, policy, imprint, serial, genTime, accuracy,
        nonce, tsa — ``ordering`` is FALSE, its default, so DER omits it."""
        gen_time = tlv(0x18, now.strftime("%Y%m%d%H%M%SZ").encode())
        body = integer(1) + self.policy + imprint + integer(serial) + gen_time + self.accuracy
        if nonce is not None:
            body += integer(nonce)
        return tlv(0x30, body + self.tsa)

    def signed_attributes(self, now: datetime, digest: bytes) -> bytes:
        """The SET OF signed attributes as signed (tag SET), its members in DER order."""
        signing_time = tlv(
            0x30,
            _SIGNING_TIME_OID + tlv(0x31, tlv(0x17, now.strftime("%y%m%d%H%M%SZ").encode())),
        )
        message_digest = tlv(0x30, _MESSAGE_DIGEST_OID + tlv(0x31, tlv(0x04, digest)))
        members = sorted((self.content_type_attr, signing_time, message_digest, self.ess_attr))
        return tlv(0x31, b"".join(members))

    def content_info(
        self, tst_info: bytes, attrs: bytes, signature: bytes, want_certs: bool
    ) -> bytes:
        """ContentInfo { signedData, [0] SignedData } around the TSTInfo and its signer."""
        signer = tlv(
            0x30,
            self.signer_head
            + b"\xa0"  # signedAttrs [0] IMPLICIT: the signed SET with its tag replaced
            + attrs[1:]
            + self.signature_algorithm
            + tlv(0x04, signature),
        )
        encapsulated = tlv(0x30, _CONTENT_TYPE_OID + tlv(0xA0, tlv(0x04, tst_info)))
        signed_data = (
            integer(3)
            + self.digest_algorithms
            + encapsulated
            + (self.certificates if want_certs else b"")
            + tlv(0x31, signer)
        )
        return tlv(0x30, _SIGNED_DATA_OID + tlv(0xA0, tlv(0x30, signed_data)))


def ess_cert_id_v2(certificate: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    # hash_algorithm left at its DEFAULT (SHA-256), so DER omits it.
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
