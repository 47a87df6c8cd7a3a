"""Certificates, OCSP responses and CRLs parsed once per process.

Most of what a certificate costs in path building and CMS signing is the first use of its
names (normalised for comparison, then remembered on the parsed object) and its first
serialisation. Every seal and every uploaded licence brings the same few — the domain's roots
and CAs, a seal's certificate, the TSA and OCSP certificates in a document's DSS — so a
long-lived process reuses the parsed objects, as a long-lived pyHanko validation context does.
The bounds keep a stream of distinct hostile values from growing the caches. Parsed objects are
only read after this.
"""

from __future__ import annotations

from functools import lru_cache

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509


@lru_cache(maxsize=256)
def certificate(der: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)


@lru_cache(maxsize=256)
def ocsp_response(der: bytes) -> asn1_ocsp.OCSPResponse:
    return asn1_ocsp.OCSPResponse.load(der)


@lru_cache(maxsize=64)
def certificate_list(der: bytes) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(der)
