"""Certificates, OCSP responses and CRLs parsed once per process.

Most of what a certificate costs in path building and CMS signing is the first use of its
names (normalised for comparison, then remembered on the parsed object) and its first
serialisation. Every seal and every uploaded licence brings the same few — the domain's roots
and CAs, a seal's certificate, the TSA and OCSP certificates in a document's DSS — so a
long-lived process reuses the parsed objects, as a long-lived pyHanko validation context does.

asn1crypto parses lazily, and a lazy parse is not safe while another thread reads the same
object (measured: a chain registered from eight threads at once failed ~5 times in a round
with "No field numbered 1"). So a value is parsed in full before it is shared, and is only
read after that: what is left to compute (a name's normalised form, a key's hash) is one
assignment of a value every thread computes alike.

Uploads are hostile, so the caches are bounded in count and only hold values of a size this
service issues: a stream of large distinct values would otherwise fill a limited examining
worker (``verify.isolation``) until honest uploads met its memory limit. Larger values are
parsed each time, as before.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from asn1crypto.core import Asn1Value

CACHED_MAX_BYTES = 16 * 1024  # a certificate or OCSP response of ours is 0.5-3 KiB
CACHED_CRL_MAX_BYTES = 64 * 1024


def certificate(der: bytes) -> asn1_x509.Certificate:
    if len(der) > CACHED_MAX_BYTES:
        return asn1_x509.Certificate.load(der)
    return _certificate(der)


def ocsp_response(der: bytes) -> asn1_ocsp.OCSPResponse:
    if len(der) > CACHED_MAX_BYTES:
        return asn1_ocsp.OCSPResponse.load(der)
    return _ocsp_response(der)


def certificate_list(der: bytes) -> asn1_crl.CertificateList:
    if len(der) > CACHED_CRL_MAX_BYTES:
        return asn1_crl.CertificateList.load(der)
    return _certificate_list(der)


Parsed = TypeVar("Parsed", bound=Asn1Value)


def _shareable(value: Parsed) -> Parsed:
    value.native  # noqa: B018 - parses every part now, before any other thread can see it
    return value


@lru_cache(maxsize=256)
def _certificate(der: bytes) -> asn1_x509.Certificate:
    return _shareable(asn1_x509.Certificate.load(der))


@lru_cache(maxsize=256)
def _ocsp_response(der: bytes) -> asn1_ocsp.OCSPResponse:
    return _shareable(asn1_ocsp.OCSPResponse.load(der))


@lru_cache(maxsize=32)
def _certificate_list(der: bytes) -> asn1_crl.CertificateList:
    return _shareable(asn1_crl.CertificateList.load(der))
