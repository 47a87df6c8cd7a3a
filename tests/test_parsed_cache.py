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


def test_a_shared_certificate_is_read_safely_by_many_threads_at_once() -> None:
    """Sealing threads share the parsed chain; asn1crypto's lazy parsing is not safe under
    concurrent readers, so a cached value must already be parsed in full when it is shared."""
    import sys
    import threading

    from pyhanko_certvalidator.registry import SimpleCertificateStore

    errors: list[BaseException] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for _ in range(40):
            chain = [parsed.certificate(_certificate()) for _ in range(3)]
            barrier = threading.Barrier(8)

            def use(chain: list[object] = chain, barrier: threading.Barrier = barrier) -> None:
                try:
                    barrier.wait()
                    SimpleCertificateStore.from_certs(chain)  # type: ignore[no-untyped-call]
                    for cert in chain:
                        assert cert.subject.hashable and cert.issuer_serial  # type: ignore[attr-defined]
                        cert.dump()  # type: ignore[attr-defined]
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=use) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
