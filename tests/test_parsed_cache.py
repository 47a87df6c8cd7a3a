"""The per-process caches of parsed PKI values (trust/parsed.py): the same object for the same
bytes, and nothing a hostile upload could use to fill a limited worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trust import parsed


def _certificate(extra_bytes: int = 0) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "测试 / test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    if extra_bytes:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\0" * extra_bytes),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_the_same_bytes_give_the_same_parsed_certificate() -> None:
    der = _certificate()
    first = parsed.certificate(der)
    assert parsed.certificate(bytes(der)) is first  # equal bytes, not the same object
    assert first.dump() == der
    assert parsed.certificate(_certificate()) is not first


def test_a_large_certificate_is_parsed_each_time_and_never_kept() -> None:
    der = _certificate(extra_bytes=parsed.CACHED_MAX_BYTES)
    before = parsed._certificate.cache_info().currsize
    first, second = parsed.certificate(der), parsed.certificate(der)
    assert first is not second and first.dump() == der
    assert parsed._certificate.cache_info().currsize == before


def test_the_caches_are_bounded_in_count() -> None:
    for _ in range(parsed._certificate.cache_info().maxsize + 20):  # type: ignore[operator]
        parsed.certificate(_certificate())
    info = parsed._certificate.cache_info()
    assert info.currsize == info.maxsize
