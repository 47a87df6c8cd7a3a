"""The soft key store: encrypted at rest, private files, signatures through the store only."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.x509.oid import NameOID

from core.errors import Conflict, Unavailable
from keys.signing import private_key_for
from keys.soft import SoftKeyStore
from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef


@pytest.fixture
def store(tmp_path: Path) -> SoftKeyStore:
    return SoftKeyStore(tmp_path / "keys", b"correct horse")


def test_sign_prehashed_digest_verifies(store: SoftKeyStore) -> None:
    ref = store.create("seal-a")
    digest = hashlib.sha256(b"licence").digest()
    signature = store.sign_digest(ref, digest, HashAlgorithm.SHA256)
    public = store.public_key(ref)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_rsa_keys_sign_pkcs1(store: SoftKeyStore) -> None:
    ref = store.create("seal-rsa", KeyAlgorithm.RSA_3072)
    digest = hashlib.sha256(b"x").digest()
    signature = store.sign_digest(ref, digest, HashAlgorithm.SHA256)
    store.public_key(ref).verify(
        signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )  # type: ignore[call-arg,union-attr]
    assert store.algorithm(ref) is KeyAlgorithm.RSA_3072


def test_certificate_builder_signs_through_the_store(store: SoftKeyStore) -> None:
    uses: list[tuple[KeyRef, str]] = []

    class Listener:
        def key_used(self, ref: KeyRef, purpose: str) -> None:
            uses.append((ref, purpose))

    ref = store.create("ca")
    key = private_key_for(store, ref, "test-cert", Listener())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(2**70)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert.verify_directly_issued_by(cert)
    assert uses == [(ref, "test-cert")]
    with pytest.raises(TypeError):
        key.private_bytes()  # type: ignore[call-arg]


def test_files_are_encrypted_and_owner_only(store: SoftKeyStore, tmp_path: Path) -> None:
    store.create("k1")
    files = list((tmp_path / "keys").iterdir())
    assert files
    for path in files:
        assert path.stat().st_mode & 0o077 == 0
    (pem,) = (tmp_path / "keys").glob("*.p8")
    assert pem.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_wrong_passphrase_cannot_sign(store: SoftKeyStore, tmp_path: Path) -> None:
    ref = store.create("k2")
    other = SoftKeyStore(tmp_path / "keys", b"wrong")
    with pytest.raises(Unavailable, match="passphrase"):
        other.sign_digest(ref, bytes(32), HashAlgorithm.SHA256)


def test_refuses_a_directory_others_can_read(tmp_path: Path) -> None:
    directory = tmp_path / "open"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with pytest.raises(Unavailable, match="chmod"):
        SoftKeyStore(directory, b"pw")


def test_labels_are_unique(store: SoftKeyStore) -> None:
    store.create("dup")
    with pytest.raises(Conflict):
        store.create("dup")
    assert [info.ref.label for info in store.list()] == ["dup"]
