"""The national form end to end, judged by tools that are not ours: a licence type set to issue
``both`` through the catalogue API issues a PDF and an OFD from one request; they share the
identifier and the QR payload; OpenSSL accepts every link of the OFD's GB/T 38540 seal up to the
SM2 root published in the trust list; ofd.js in Chromium shows the seal picture and the QR code
and verifies the seal itself; ``POST /api/v1/verify`` says PASSED for both, FAILED with the
expected sub-indication for each tampered copy made here, and FAILED/REVOKED for both once the
licence is revoked (issue 22's "Done when").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.domain import Domain, demo_domain
from tests.ofd_e2e_support import (
    Issued,
    custom_data,
    issue_both,
    pdf_qr_texts,
    sm2_root_pem,
    tsa_pems,
    verify,
    verify_ofd,
    verify_page,
)
from tests.ofd_handmade import red_seal_png
from tests.ofd_independent import (
    SIGNATURE_XML,
    SeSeal,
    SesSignature,
    unzip_package,
    zip_package,
)
from tests.ofd_openssl_checks import check_ofd, extract, flip, tamper_rejections
from tests.ofd_reader_page import read_ofd, reader_browser, stamp_box_mm

__all__ = ["reader_browser"]  # the fixture, used by name
pytestmark = pytest.mark.slow  # a demo domain, dozens of openssl processes, thirty verifications

ARTIFACTS = Path(__file__).parent / "artifacts"
SIGNED_VALUE = "Doc_0/Signs/Sign_0/SignedValue.dat"
SEAL_FILE = "Doc_0/Signs/Sign_0/Seal.esl"
CONTENT = "Doc_0/Pages/Page_0/Content.xml"


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "ofd-e2e")


@pytest.fixture(scope="module")
def issued(domain: Domain) -> Issued:
    return issue_both(domain)


def test_one_request_issues_both_documents_with_one_identifier_and_qr(
    issued: Issued, tmp_path: Path
) -> None:
    files = unzip_package(issued.ofd)
    assert custom_data(files["OFD.xml"], "licence.identifier") == issued.identifier
    verify_url = issued.answer["links"]["verify"]
    assert custom_data(files["OFD.xml"], "licence.verify_url") == verify_url
    assert pdf_qr_texts(issued.pdf, tmp_path) == [verify_url]
    assert issued.answer["links"]["ofd"].endswith(f"/{issued.identifier}/document.ofd")


def test_openssl_accepts_the_issued_seal_up_to_the_published_sm2_root(
    domain: Domain, issued: Issued, tmp_path: Path
) -> None:
    root = sm2_root_pem(domain, tmp_path / "sm2-root.pem")
    seal = extract(issued.ofd, tmp_path / "seal")
    found = check_ofd(seal, root)
    assert found.digests and all(found.digests.values()), found.digests
    assert found.unreferenced == []
    assert found.data_hash and found.seal_signature and found.maker_signature
    assert found.signer_in_cert_list and found.seal_esl_matches
    assert found.signer_under_maker[0], found.signer_under_maker[1]
    assert found.maker_under_root[0], found.maker_under_root[1]
    # GB/T 38540's fixed values, read independently
    to_sign = seal.parsed["to_sign"]
    assert to_sign["version"].native == 4
    assert to_sign["property_info"].native == "/" + SIGNATURE_XML
    assert seal.parsed["signature_alg_id"].dotted == "1.2.156.10197.1.501"
    assert to_sign["eseal"]["eseal_info"]["header"]["id"].native == "ES"
    assert seal.parsed["time_stamp"].native is not None  # our TSA's token: the proven time
    assert all(tamper_rejections(seal, root).values())


def test_openssl_ts_accepts_the_seals_timestamp_over_its_signature(
    domain: Domain, issued: Issued, tmp_path: Path
) -> None:
    """The proven time: the SES_Signature's timeStamp is an RFC 3161 token from our TSA whose
    message imprint is the SHA-256 of the signature value; ``openssl ts -verify`` checks the
    imprint, the token's signature and the TSA certificate up to the published ECDSA root, and
    refuses the token for a signature one byte different."""
    from tests.ofd_independent import openssl

    root, tsa = tsa_pems(domain, tmp_path)
    signature = SesSignature.load(unzip_package(issued.ofd)[SIGNED_VALUE])
    token = tmp_path / "token.der"
    token.write_bytes(signature["time_stamp"].native)
    signed = tmp_path / "signature.bin"
    signed.write_bytes(signature["signature"].native)
    changed = tmp_path / "signature-changed.bin"
    changed.write_bytes(flip(signed.read_bytes()))

    def ts_verify(data: Path) -> bool:
        done = openssl(
            "ts", "-verify", "-data", data, "-in", token, "-token_in",
            "-CAfile", root, "-untrusted", tsa,
        )  # fmt: skip
        return done.returncode == 0 and "Verification: OK" in done.stdout

    assert ts_verify(signed)
    assert not ts_verify(changed)


@pytest.mark.browser
@pytest.mark.slow
def test_the_independent_reader_shows_the_issued_seal_and_qr(
    reader_browser: Any, issued: Issued
) -> None:
    reading = read_ofd(reader_browser, issued.ofd, ARTIFACTS / "ofd-reader-issued.png")
    files = unzip_package(issued.ofd)
    assert reading.pages == 1
    assert reading.seals == [{"type": "png", "verified": True}]
    assert reading.digests == [True]
    box = stamp_box_mm(files)
    left, top, right, bottom = reading.box_px(box)
    assert reading.red_pixels(box) > 0.03 * (right - left) * (bottom - top)
    assert issued.answer["links"]["verify"] in reading.qr_texts()
    assert issued.identifier in reading.text


def _text_changed(files: dict[str, bytes]) -> None:
    """A printed value changed: the first TextCode's first character becomes another."""
    text = files[CONTENT].decode()
    match = re.search(r"<ofd:TextCode\b[^>]*>([^<])", text)
    assert match
    other = "甲" if match.group(1) != "甲" else "乙"
    files[CONTENT] = (text[: match.start(1)] + other + text[match.end(1) :]).encode()


def _seal_file_picture(files: dict[str, bytes]) -> None:
    """Seal.esl's picture replaced by another (the SESeal inside the signature left alone)."""
    seal = SeSeal.load(files[SEAL_FILE])
    seal["eseal_info"]["picture"]["data"] = red_seal_png(200)
    files[SEAL_FILE] = seal.dump(force=True)


def _signed_picture(files: dict[str, bytes]) -> None:
    """The picture replaced inside the SESeal that toSign carries, Seal.esl made to match."""
    signature = SesSignature.load(files[SIGNED_VALUE])
    signature["to_sign"]["eseal"]["eseal_info"]["picture"]["data"] = red_seal_png(200)
    files[SIGNED_VALUE] = signature.dump(force=True)
    files[SEAL_FILE] = SesSignature.load(files[SIGNED_VALUE])["to_sign"]["eseal"].dump()


def _extra_page(files: dict[str, bytes]) -> None:
    """A second page declared in Document.xml (a signed file) and added to the zip."""
    document = files["Doc_0/Document.xml"].decode()
    files["Doc_0/Document.xml"] = document.replace(
        "</ofd:Pages>", '<ofd:Page ID="999" BaseLoc="Pages/Page_1/Content.xml"/></ofd:Pages>'
    ).encode()
    files["Doc_0/Pages/Page_1/Content.xml"] = files[CONTENT]


def _extra_file(files: dict[str, bytes]) -> None:
    files["Doc_0/Res/extra.png"] = red_seal_png(64)


def _removed_file(files: dict[str, bytes]) -> None:
    del files["Doc_0/PublicRes.xml"]


def _stamp_moved(files: dict[str, bytes]) -> None:
    """Signature.xml's stamp annotation moved elsewhere on the page (dataHash covers it)."""
    text = files[SIGNATURE_XML].decode()
    files[SIGNATURE_XML] = re.sub(r'Boundary="[\d.]+ ', 'Boundary="1 ', text, count=1).encode()


def _second_seal(files: dict[str, bytes]) -> None:
    text = files["Doc_0/Signs/Signatures.xml"].decode()
    files["Doc_0/Signs/Signatures.xml"] = text.replace(
        "</ofd:Signatures>",
        '<ofd:Signature ID="2" Type="Seal" BaseLoc="Sign_1/Signature.xml"/></ofd:Signatures>',
    ).encode()
    for name in [n for n in files if n.startswith("Doc_0/Signs/Sign_0/")]:
        files[name.replace("Sign_0", "Sign_1")] = files[name]


def _no_seal(files: dict[str, bytes]) -> None:
    """The seal taken out: Signatures.xml lists no signature and the seal's files are gone."""
    text = files["Doc_0/Signs/Signatures.xml"].decode()
    files["Doc_0/Signs/Signatures.xml"] = re.sub(r"<ofd:Signature\b[^>]*/>", "", text).encode()
    for name in [n for n in files if n.startswith("Doc_0/Signs/Sign_0/")]:
        del files[name]


def _signs_stripped(files: dict[str, bytes]) -> None:
    """The whole Signs folder deleted, OFD.xml still naming Signatures.xml: not a licence's
    package (the verifier refuses the structure before looking for a seal)."""
    for name in [n for n in files if n.startswith("Doc_0/Signs/")]:
        del files[name]


def _signature_bit(files: dict[str, bytes]) -> None:
    signature = SesSignature.load(files[SIGNED_VALUE])
    value = signature["signature"].native
    signature["signature"] = flip(value, at=len(value) - 2)
    files[SIGNED_VALUE] = signature.dump(force=True)


def _seal_maker_bit(files: dict[str, bytes]) -> None:
    signature = SesSignature.load(files[SIGNED_VALUE])
    value = signature["to_sign"]["eseal"]["signed_value"].native
    signature["to_sign"]["eseal"]["signed_value"] = flip(value, at=len(value) - 2)
    files[SIGNED_VALUE] = signature.dump(force=True)
    files[SEAL_FILE] = SesSignature.load(files[SIGNED_VALUE])["to_sign"]["eseal"].dump()


def _timestamp_removed(files: dict[str, bytes]) -> None:
    signature = SesSignature.load(files[SIGNED_VALUE])
    assert signature["time_stamp"].native is not None
    files[SIGNED_VALUE] = SesSignature(
        {k: signature[k] for k in ("to_sign", "cert", "signature_alg_id", "signature")}
    ).dump()


def _traversal(files: dict[str, bytes]) -> None:
    files["../../etc/cron.d/licence"] = b"* * * * * root true\n"


# name -> (tampering, indication, sub-indication): each a forger's move, made here by hand.
TAMPERINGS: dict[str, tuple[Callable[[dict[str, bytes]], None], str, str]] = {
    "printed text changed": (_text_changed, "FAILED", "HASH_FAILURE"),
    "Seal.esl picture replaced": (_seal_file_picture, "FAILED", "HASH_FAILURE"),
    "signed seal picture replaced": (_signed_picture, "FAILED", "SIG_CRYPTO_FAILURE"),
    "extra page declared": (_extra_page, "FAILED", "HASH_FAILURE"),
    "extra unsigned file": (_extra_file, "FAILED", "MODIFIED_AFTER_SEALING"),
    "signed file removed": (_removed_file, "FAILED", "HASH_FAILURE"),
    "stamp annotation moved": (_stamp_moved, "FAILED", "HASH_FAILURE"),
    "second seal": (_second_seal, "FAILED", "MODIFIED_AFTER_SEALING"),
    "no seal": (_no_seal, "FAILED", "NO_SIGNATURE"),
    "Signs folder stripped": (_signs_stripped, "FAILED", "FORMAT_FAILURE"),
    "seal signature bit": (_signature_bit, "FAILED", "SIG_CRYPTO_FAILURE"),
    "seal maker signature bit": (_seal_maker_bit, "FAILED", "SIG_CRYPTO_FAILURE"),
    "timestamp removed": (_timestamp_removed, "FAILED", "NO_POE"),
    "path traversal entry": (_traversal, "FAILED", "FORMAT_FAILURE"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_each_tampered_copy_is_failed_over_http(domain: Domain, issued: Issued, name: str) -> None:
    tamper, indication, sub = TAMPERINGS[name]
    files = unzip_package(issued.ofd)
    tamper(files)
    tampered = zip_package(files)
    answer = verify_ofd(domain, tampered)
    assert (answer["indication"], answer["sub_indication"]) == (indication, sub), answer
    assert verify_page(domain, tampered) == (indication, sub)


def test_a_repacked_copy_of_the_same_files_is_not_the_issued_document(
    domain: Domain, issued: Issued
) -> None:
    """Every signature still holds, but these are not the bytes the repository keeps."""
    files = unzip_package(issued.ofd)
    repacked = zip_package(dict(reversed(list(files.items()))))
    assert repacked != issued.ofd
    answer = verify_ofd(domain, repacked)
    assert (answer["indication"], answer["sub_indication"]) == ("FAILED", "NOT_IN_REPOSITORY")


def test_both_documents_pass_then_both_fail_once_revoked(domain: Domain) -> None:
    """Last: it revokes a licence of its own (the module's ``issued`` stays valid)."""
    both = issue_both(domain)
    for answer in (
        verify(domain, both.pdf, "licence.pdf", "application/pdf"),
        verify_ofd(domain, both.ofd),
    ):
        assert answer["indication"] == "PASSED", answer
        assert answer["licence"]["identifier"] == both.identifier
    assert verify_page(domain, both.ofd) == ("PASSED", "")
    revoked = domain.client.post(
        f"/api/v1/licences/{both.identifier}/revoke",
        json={"reason": "吊销测试 / revocation test"},
        headers=domain.auth(),
    )
    assert revoked.status_code == 200, revoked.text
    for answer in (
        verify(domain, both.pdf, "licence.pdf", "application/pdf"),
        verify_ofd(domain, both.ofd),
    ):
        assert (answer["indication"], answer["sub_indication"]) == ("FAILED", "REVOKED"), answer
    assert verify_page(domain, both.ofd) == ("FAILED", "REVOKED")
