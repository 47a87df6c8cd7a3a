"""An OFD licence's GB/T 38540 seal checked by OpenSSL 3, not by our verifier.

SignedValue.dat is parsed with ASN.1 classes written in the test from the standard
(tests/ofd_independent.py, not seals/ses.py); the exact DER of toSign and of the SESeal's
esealInfo are cut out of the file's bytes; then ``openssl`` judges:

- ``openssl dgst -sm3`` of every referenced content file equals its CheckValue, and no content
  file is left out of the references; SM3 of Signature.xml equals toSign's dataHash;
- ``openssl dgst -sm3 -verify -sigopt distid:1234567812345678`` accepts the seal signature over
  DER(toSign) with the signer certificate's key, and the SESeal's signature over DER(esealInfo)
  with the seal maker's key;
- ``openssl verify`` accepts the signer certificate under the seal maker (the SM2 seal CA) and
  the seal maker under the SM2 root, link by link (OpenSSL 3.0 applies the distinguishing ID to
  the leaf only; see ``certificate_verifies``);
- and each of them rejects a one-byte change.

The checks are proven on an OFD made by hand with OpenSSL; the product's issued OFD is checked
in tests/test_ofd_e2e.py with the same functions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ofd_handmade import HandmadePki, handmade_ofd, make_pki
from tests.ofd_independent import unzip_package, zip_package
from tests.ofd_openssl_checks import Findings, check_ofd, extract, flip, tamper_rejections

pytestmark = pytest.mark.slow  # dozens of openssl processes


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> HandmadePki:
    return make_pki(tmp_path_factory.mktemp("ofd-openssl-pki"))


@pytest.fixture(scope="module")
def handmade(pki: HandmadePki) -> bytes:
    return handmade_ofd(pki)


def assert_all_accepted(found: Findings) -> None:
    assert found.digests and all(found.digests.values()), found.digests
    assert found.unreferenced == []
    assert found.data_hash
    assert found.seal_signature
    assert found.maker_signature
    assert found.signer_in_cert_list
    assert found.seal_esl_matches
    assert found.signer_under_maker[0], found.signer_under_maker[1]
    assert found.maker_under_root[0], found.maker_under_root[1]


def test_openssl_accepts_every_link_of_a_handmade_seal(
    pki: HandmadePki, handmade: bytes, tmp_path: Path
) -> None:
    assert_all_accepted(check_ofd(extract(handmade, tmp_path), pki.root))


def test_openssl_rejects_a_one_byte_change_in_each_signed_input(
    pki: HandmadePki, handmade: bytes, tmp_path: Path
) -> None:
    rejected = tamper_rejections(extract(handmade, tmp_path), pki.root)
    assert rejected == {
        "toSign": True,
        "signature": True,
        "esealInfo": True,
        "content file": True,
        "signer certificate": True,
        "maker certificate": True,
    }


def test_a_changed_page_an_extra_file_and_a_foreign_root_are_each_seen(
    pki: HandmadePki, handmade: bytes, tmp_path: Path
) -> None:
    """A page edited after sealing fails its digest; an unsigned page added to the zip is a
    content file outside the references; a seal maker that is not under this root fails."""
    files = unzip_package(handmade)
    page = "Doc_0/Pages/Page_0/Content.xml"
    files[page] = flip(files[page])
    files["Doc_0/Pages/Page_1/Content.xml"] = b"<ofd:Page/>"
    found = check_ofd(extract(zip_package(files), tmp_path / "edited"), pki.root)
    assert found.digests[page] is False
    assert [v for k, v in found.digests.items() if k != page] == [True] * (len(found.digests) - 1)
    assert found.unreferenced == ["Doc_0/Pages/Page_1/Content.xml"]
    assert found.seal_signature  # the seal itself is untouched: only the digest shows it

    other = make_pki(tmp_path / "other")
    found = check_ofd(extract(handmade, tmp_path / "foreign"), other.root)
    assert not found.maker_under_root[0]
    assert found.signer_under_maker[0]


def test_the_distinguishing_id_matters(pki: HandmadePki, handmade: bytes, tmp_path: Path) -> None:
    """Without the GB/T default ID, OpenSSL 3 computes another Z and the signature fails: the
    check above is made with the ID a GB/T 38540 reader uses, not by accident."""
    from tests.ofd_independent import openssl

    seal = extract(handmade, tmp_path)
    done = openssl(
        "dgst", "-sm3", "-verify", seal.signer_public, "-signature", seal.signature, seal.to_sign
    )
    assert done.returncode != 0
