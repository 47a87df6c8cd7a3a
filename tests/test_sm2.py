"""SM3 and SM2 (keys.sm2) against independent implementations: OpenSSL's command line and gmssl.

Attack first: a signature over another message, a flipped bit, another key's signature, another
distinguishing ID, a non-canonical DER encoding and a key on another curve are all refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidInput
from keys.sm2 import (
    SM2_DEFAULT_ID,
    Sm2PrivateKey,
    Sm2PublicKey,
    sign_message,
    sm3,
)
from keys.soft import SoftKeyStore
from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef
from tests.tools import gmssl_checker, require, require_module

# GB/T 32905-2016 Appendix A, example 1 and example 2.
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


@pytest.fixture
def store(tmp_path: Path) -> SoftKeyStore:
    return SoftKeyStore(tmp_path / "keys", b"correct horse")


def _openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require("openssl"), *args], input=data, capture_output=True, check=False)


def _pem_public(public: Sm2PublicKey, path: Path) -> Path:
    der = path.with_suffix(".der")
    der.write_bytes(public.spki_der())
    done = _openssl("pkey", "-pubin", "-inform", "DER", "-in", str(der), "-out", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_sm3_matches_the_standard_examples() -> None:
    assert sm3(b"abc").hex() == SM3_ABC
    assert sm3(b"abcd" * 16).hex() == SM3_ABCD16


def test_a_signature_verifies_only_for_its_message_key_and_id() -> None:
    key, other = Sm2PrivateKey.generate(), Sm2PrivateKey.generate()
    public = key.public_key()
    signature = key.sign_digest(public.digest(b"licence"))
    assert public.verify(signature, b"licence")
    assert not public.verify(signature, b"licencE")  # another message
    assert not other.public_key().verify(signature, b"licence")  # another key
    assert not public.verify(signature, b"licence", distid=b"another-id")  # another Z
    flipped = bytearray(signature)
    flipped[-1] ^= 0x01
    assert not public.verify(bytes(flipped), b"licence")
    assert not public.verify(b"", b"licence")
    assert not public.verify(b"\x30\x00", b"licence")


def test_a_non_canonical_der_signature_is_refused() -> None:
    key = Sm2PrivateKey.generate()
    public = key.public_key()
    signature = key.sign_digest(public.digest(b"m"))
    # The same r and s with a long-form SEQUENCE length: a malleable encoding, refused.
    body = signature[2:]
    assert signature[1] == len(body) < 0x80
    long_form = b"\x30\x81" + bytes([len(body)]) + body
    assert not public.verify(long_form, b"m")
    assert not public.verify(signature + b"\x00", b"m")  # trailing bytes


def test_a_p256_key_is_not_an_sm2_key(store: SoftKeyStore) -> None:
    ref = store.create("p256")
    with pytest.raises(ValueError, match="SM2"):
        Sm2PublicKey.from_spki_der(store.public_key_der(ref))


def test_openssl_verifies_ours_and_we_verify_openssls(tmp_path: Path) -> None:
    key = Sm2PrivateKey.generate()
    public = key.public_key()
    pub_pem = _pem_public(public, tmp_path / "pub.pem")
    message = "电子证照 elicence".encode() * 50
    (tmp_path / "m").write_bytes(message)
    (tmp_path / "s").write_bytes(key.sign_digest(public.digest(message)))
    distid = "distid:" + SM2_DEFAULT_ID.decode()
    verify = ["dgst", "-sm3", "-verify", str(pub_pem), "-sigopt", distid]
    done = _openssl(*verify, "-signature", str(tmp_path / "s"), str(tmp_path / "m"))
    assert done.returncode == 0 and b"Verified OK" in done.stdout, done.stderr
    # A flipped bit in the message: OpenSSL refuses too.
    (tmp_path / "m2").write_bytes(message[:-1] + b"X")
    done = _openssl(*verify, "-signature", str(tmp_path / "s"), str(tmp_path / "m2"))
    assert done.returncode != 0

    # OpenSSL makes a key and signs; we verify.
    priv = tmp_path / "k.pem"
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", str(priv)).returncode == 0
    der = tmp_path / "k.spki"
    done = _openssl("pkey", "-in", str(priv), "-pubout", "-outform", "DER", "-out", str(der))
    assert done.returncode == 0, done.stderr
    theirs = Sm2PublicKey.from_spki_der(der.read_bytes())
    sign = ["dgst", "-sm3", "-sign", str(priv), "-sigopt", distid, "-out", str(tmp_path / "t")]
    assert _openssl(*sign, str(tmp_path / "m")).returncode == 0
    signature = (tmp_path / "t").read_bytes()
    assert theirs.verify(signature, message)
    assert not theirs.verify(signature, message[:-1] + b"X")
    assert not public.verify(signature, message)  # their signature, our key


def test_gmssl_agrees(store: SoftKeyStore) -> None:
    ref = store.create("seal-sm2", KeyAlgorithm.SM2)
    public = Sm2PublicKey.from_spki_der(store.public_key_der(ref))
    theirs: Any = gmssl_checker(*public.point)
    message = b"GB/T 38540 seal"
    signature = sign_message(store, ref, message)
    assert theirs.verify_with_sm3(signature.hex(), message)
    assert not theirs.verify_with_sm3(signature.hex(), message + b"!")
    assert sm3(message).hex() == require_module("gmssl.sm3").sm3_hash(list(message))


def test_gmssl_checks_a_key_whose_x_begins_with_04() -> None:
    """One SM2 key in 256 has an x coordinate whose hex begins with 04; gmssl's constructor
    would take that for a point prefix and cut the key short. The independent check must not
    fail on such a key (it made the SM2 tests fail one run in a hundred or so)."""
    for _ in range(20_000):
        key = Sm2PrivateKey.generate()
        x, y = key.public_key().point
        if f"{x:064x}".startswith("04"):
            break
    else:
        pytest.fail("no SM2 key with an x coordinate beginning 04 in 20,000")
    message = b"GB/T 38540 seal"
    signature = key.sign_digest(key.public_key().digest(message))
    checker: Any = gmssl_checker(x, y)
    assert checker.verify_with_sm3(signature.hex(), message)
    assert not checker.verify_with_sm3(signature.hex(), message + b"!")


def test_the_soft_store_keeps_sm2_keys_encrypted_and_rotates_them(
    store: SoftKeyStore, tmp_path: Path
) -> None:
    ref = store.create("seal-sm2", KeyAlgorithm.SM2)
    assert store.algorithm(ref) is KeyAlgorithm.SM2
    path = tmp_path / "keys" / "seal-sm2.v1.p8"
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert path.stat().st_mode & 0o077 == 0
    # Another process with the passphrase reads it back; one without cannot.
    again = SoftKeyStore(tmp_path / "keys", b"correct horse")
    assert again.public_key_der(ref) == store.public_key_der(ref)
    wrong = SoftKeyStore(tmp_path / "keys", b"wrong horse")
    with pytest.raises(Exception, match="wrong passphrase"):
        wrong.public_key_der(ref)
    # Rotation: a new SM2 key; the old one still verifies what it signed.
    old_signature = sign_message(store, ref, b"before")
    new = store.rotate("seal-sm2")
    assert new == KeyRef("soft", "seal-sm2", 2)
    assert store.algorithm(new) is KeyAlgorithm.SM2
    assert store.public_key_der(new) != store.public_key_der(ref)
    old_public = Sm2PublicKey.from_spki_der(store.public_key_der(ref))
    assert old_public.verify(old_signature, b"before")
    assert not Sm2PublicKey.from_spki_der(store.public_key_der(new)).verify(
        old_signature, b"before"
    )
    assert [info.algorithm for info in store.list()] == [KeyAlgorithm.SM2] * 2


def test_sm2_and_sm3_are_not_mixed_with_other_algorithms(store: SoftKeyStore) -> None:
    sm2_ref = store.create("sm2", KeyAlgorithm.SM2)
    p256_ref = store.create("p256")
    with pytest.raises(InvalidInput, match="SM3"):
        store.sign_digest(sm2_ref, b"\x00" * 32, HashAlgorithm.SHA256)
    with pytest.raises(InvalidInput, match="SM2"):
        store.sign_digest(p256_ref, b"\x00" * 32, HashAlgorithm.SM3)
    with pytest.raises(InvalidInput, match="public_key_der"):
        store.public_key(sm2_ref)
    with pytest.raises(ValueError, match="32-byte"):
        store.sign_digest(sm2_ref, b"\x00" * 20, HashAlgorithm.SM3)


def test_each_signature_through_the_helper_is_reported_as_a_key_use(store: SoftKeyStore) -> None:
    ref = store.create("seal-sm2", KeyAlgorithm.SM2)
    uses: list[tuple[KeyRef, str]] = []

    class Listener:
        def key_used(self, ref: KeyRef, purpose: str) -> None:
            uses.append((ref, purpose))

    sign_message(store, ref, b"a", listener=Listener(), purpose="ofd.seal")
    sign_message(store, ref, b"b", listener=Listener(), purpose="ofd.seal")
    assert uses == [(ref, "ofd.seal"), (ref, "ofd.seal")]


def test_a_hostile_public_key_is_refused_not_used() -> None:
    """An SPKI from an uploaded file: a point off the curve (invalid-curve attacks), the point
    at infinity, a truncated point, or a compressed one (not used by GB/T 20518 certificates)."""
    from asn1crypto import keys as asn1_keys

    info = asn1_keys.PublicKeyInfo.load(Sm2PrivateKey.generate().public_key().spki_der())
    x, y = info["public_key"].to_coords()

    def spki(point: bytes) -> bytes:
        der: bytes = asn1_keys.PublicKeyInfo(
            {"algorithm": info["algorithm"], "public_key": point}
        ).dump()
        return der

    for point in (
        b"\x04" + x.to_bytes(32, "big") + (y + 1).to_bytes(32, "big"),
        b"\x00",
        b"\x04" + b"\x01" * 10,
        bytes([2 + (y & 1)]) + x.to_bytes(32, "big"),
    ):
        with pytest.raises(ValueError, match="not an SM2 public key"):
            Sm2PublicKey.from_spki_der(spki(point))
    with pytest.raises(ValueError):
        Sm2PublicKey.from_spki_der(
            spki(b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")) + b"\x00"
        )
    with pytest.raises(ValueError, match="not a certificate"):
        Sm2PublicKey.from_certificate_der(b"\x30\x00")


def test_signing_and_verifying_from_many_threads_at_once(store: SoftKeyStore) -> None:
    """The service signs from its thread pool: one OpenSSL key, used by several threads (ctypes
    releases the GIL during each call), gives signatures that all verify."""
    from concurrent.futures import ThreadPoolExecutor

    ref = store.create("threads", KeyAlgorithm.SM2)
    public = Sm2PublicKey.from_spki_der(store.public_key_der(ref))

    def work(i: int) -> bool:
        message = f"licence {i}".encode()
        signature = sign_message(store, ref, message)
        return public.verify(signature, message) and not public.verify(signature, message + b"!")

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(200)))
