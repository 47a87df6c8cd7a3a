"""The seal of an OFD licence, examined as the worker examines it (no database): a package sealed
by issuance's own sealer with an in-memory SM2 PKI and TSA passes every check; each tampering a
forger would try stops at the check that guards against it, with its ETSI sub-indication.

The repository, revocation and status decisions (``verify.ofd``) are tested on issued licences in
tests/test_ofd_verify_issued.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from keys.sm2 import sm3
from seals import ses
from seals.ofd_zip import zip_package
from tests.ofd_build import (
    CONTENT,
    NOW,
    SEAL_FILE,
    SIGNATURE,
    SIGNED_VALUE,
    Sm2Pki,
    Tsa,
    seal_files,
    sm2_certificate,
    unzip,
    with_timestamp,
)
from verify.isolation import Limits
from verify.ofd_examine import OfdFacts, examine_ofd
from verify.ofd_package import read_package
from verify.report import CheckResult, Indication, SubIndication
from verify.structure import Inspection

LATER = NOW + timedelta(days=1)


@pytest.fixture(scope="module")
def pki() -> Sm2Pki:
    return Sm2Pki()


@pytest.fixture(scope="module")
def tsa() -> Tsa:
    return Tsa()


@pytest.fixture(scope="module")
def genuine(pki: Sm2Pki, tsa: Tsa) -> bytes:
    return seal_files(pki, tsa)


def examine(data: bytes, pki: Sm2Pki, tsa: Tsa) -> OfdFacts | Inspection:
    return examine_ofd(data, Limits(), anchors=tsa.anchors, sm2=pki.anchors, moment=LATER)


def failed_at(
    data: bytes, pki: Sm2Pki, tsa: Tsa, check: str, indication: Indication, sub: SubIndication
) -> str:
    """The failing check's detail, after asserting where and how the examination stopped."""
    found = examine(data, pki, tsa)
    assert isinstance(found, OfdFacts), found
    assert found.failure is not None, [c.name for c in found.checks]
    assert found.failure[:2] == (indication, sub), (found.failure, found.checks[-1])
    last = found.checks[-1]
    assert (last.name, last.result) == (check, CheckResult.FAILED), last
    return last.detail


def rezip(files: dict[str, bytes]) -> bytes:
    return zip_package(files)


def test_a_genuine_package_passes_every_check_in_order(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    found = examine(genuine, pki, tsa)
    assert isinstance(found, OfdFacts)
    assert found.failure is None
    assert [c.name for c in found.checks] == [
        "format",
        "seal_count",
        "references",
        "coverage",
        "seal_structure",
        "data_hash",
        "integrity",
        "seal_maker",
        "seal_holder",
        "timestamp",
        "chain",
        "maker_chain",
    ]
    assert all(c.result is CheckResult.PASSED for c in found.checks)
    assert found.proven == NOW  # the TSA's genTime, not the signer's word
    assert found.identifier == "11000000000000000X-TEST-0001"
    assert found.signer_serial == 0x5EA1


# -- the ten tamper variants -----------------------------------------------------------------------


def test_a_changed_field_in_the_page_is_a_hash_failure(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    page = "Doc_0/Pages/Page_0/Content.xml"
    files[page] = files[page].replace("张三".encode(), "李四".encode())
    detail = failed_at(
        rezip(files), pki, tsa, "references", Indication.FAILED, SubIndication.HASH_FAILURE
    )
    assert page in detail


def test_a_replaced_seal_picture_is_a_hash_failure(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    seal = ses.SESeal.load(files[SEAL_FILE])
    info = ses.SES_SealInfo.load(seal["eseal_info"].dump())
    info["picture"]["data"] = b"\x89PNG\r\n\x1a\n" + b"a forger's picture"
    forged = ses.seseal(
        info, maker_certificate_der=seal["cert"].native, signature=seal["signed_value"].native
    )
    files[SEAL_FILE] = forged.dump(force=True)
    detail = failed_at(
        rezip(files), pki, tsa, "seal_file", Indication.FAILED, SubIndication.HASH_FAILURE
    )
    assert "Seal.esl" in detail


def test_a_replaced_picture_inside_the_signed_seal_breaks_the_signatures(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    """The forger changes the picture in both copies: toSign no longer verifies."""
    files = unzip(genuine)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    seal = ses.SESeal.load(files[SEAL_FILE])
    info = ses.SES_SealInfo.load(seal["eseal_info"].dump())
    info["picture"]["data"] = b"\x89PNG\r\n\x1a\n" + b"a forger's picture"
    forged = ses.seseal(
        info, maker_certificate_der=seal["cert"].native, signature=seal["signed_value"].native
    )
    tbs = ses.tbs_sign(
        forged,
        time=signature["to_sign"]["time_info"].native,
        data_hash=signature["to_sign"]["data_hash"].native,
        property_info=signature["to_sign"]["property_info"].native,
    )
    files[SEAL_FILE] = forged.dump(force=True)
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": tbs,
                "cert": signature["cert"].native,
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": signature["signature"].native,
            }
        ),
        signature["time_stamp"].native,
    )
    failed_at(
        rezip(files), pki, tsa, "integrity", Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE
    )


def test_an_extra_unsigned_page_is_refused(pki: Sm2Pki, tsa: Tsa) -> None:
    """A page added to Document.xml and the package: Document.xml no longer matches."""
    files = unzip(seal_files(pki, tsa))
    document = "Doc_0/Document.xml"
    files[document] = files[document].replace(
        b"</ofd:Pages>", b'<ofd:Page ID="9" BaseLoc="Pages/Page_1/Content.xml"/></ofd:Pages>'
    )
    files["Doc_0/Pages/Page_1/Content.xml"] = CONTENT["Doc_0/Pages/Page_0/Content.xml"]
    detail = failed_at(
        rezip(files), pki, tsa, "references", Indication.FAILED, SubIndication.HASH_FAILURE
    )
    assert document in detail


def test_an_extra_file_outside_the_seal_is_content_added_after_sealing(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    files["Doc_0/Pages/Page_1/Content.xml"] = CONTENT["Doc_0/Pages/Page_0/Content.xml"]
    detail = failed_at(
        rezip(files), pki, tsa, "coverage", Indication.FAILED, SubIndication.MODIFIED_AFTER_SEALING
    )
    assert "Page_1" in detail


def test_an_extra_file_beside_the_seal_is_also_refused(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    files["Doc_0/Signs/Sign_0/notes.xml"] = b"<a/>"
    failed_at(
        rezip(files), pki, tsa, "coverage", Indication.FAILED, SubIndication.MODIFIED_AFTER_SEALING
    )


def test_a_removed_file_is_a_hash_failure(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    del files["Doc_0/Pages/Page_0/Content.xml"]
    detail = failed_at(
        rezip(files), pki, tsa, "references", Indication.FAILED, SubIndication.HASH_FAILURE
    )
    assert "missing" in detail


def test_a_changed_check_value_is_a_hash_failure(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    """The forger edits the page and puts its new SM3 into Signature.xml."""
    import base64

    files = unzip(genuine)
    page = "Doc_0/Pages/Page_0/Content.xml"
    old = base64.b64encode(sm3(files[page]))
    files[page] = files[page].replace("张三".encode(), "李四".encode())
    files[SIGNATURE] = files[SIGNATURE].replace(old, base64.b64encode(sm3(files[page])))
    detail = failed_at(
        rezip(files), pki, tsa, "data_hash", Indication.FAILED, SubIndication.HASH_FAILURE
    )
    assert "Signature.xml" in detail


def test_a_changed_signature_xml_is_a_hash_failure(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    files[SIGNATURE] = files[SIGNATURE].replace(
        b'ProviderName="elicence"', b'ProviderName="forger"'
    )
    failed_at(rezip(files), pki, tsa, "data_hash", Indication.FAILED, SubIndication.HASH_FAILURE)


def test_a_second_signature_is_refused(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    listed = "Doc_0/Signs/Signatures.xml"
    files[listed] = files[listed].replace(
        b"</ofd:Signatures>",
        b'<ofd:Signature ID="2" Type="Seal" BaseLoc="Sign_1/Signature.xml"/></ofd:Signatures>',
    )
    for name in (SIGNATURE, SEAL_FILE, SIGNED_VALUE):
        files[name.replace("Sign_0", "Sign_1")] = files[name]
    detail = failed_at(
        rezip(files),
        pki,
        tsa,
        "seal_count",
        Indication.FAILED,
        SubIndication.MODIFIED_AFTER_SEALING,
    )
    assert "2 signatures" in detail


def test_no_seal_at_all_is_no_signature(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    listed = "Doc_0/Signs/Signatures.xml"
    files[listed] = (
        b'<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"><ofd:MaxSignId>0'
        b"</ofd:MaxSignId></ofd:Signatures>"
    )
    failed_at(rezip(files), pki, tsa, "seal_count", Indication.FAILED, SubIndication.NO_SIGNATURE)


def test_a_foreign_sm2_certificate_does_not_chain(genuine: bytes, tsa: Tsa, pki: Sm2Pki) -> None:
    """A forger's own SM2 PKI seals the same content: every signature verifies, the timestamp
    is ours, but the certificates lead to another root."""
    forger = Sm2Pki(name="forger")
    files = unzip(seal_files(forger, tsa))
    detail = failed_at(
        rezip(files), pki, tsa, "chain", Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND
    )
    assert "no SM2 CA of this domain signed the signer's certificate" in detail
    assert "forger" not in detail  # the uploaded certificate's name is never shown


def test_a_signer_certificate_swapped_for_a_foreign_one_is_not_the_seals(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    """toSign re-signed with a foreign key, its certificate put in: not in the seal's certList."""
    files = unzip(genuine)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    forger = Sm2Pki(name="forger")
    to_sign = signature["to_sign"].dump()
    value = forger.seal_key.sign_digest(forger.seal_key.public_key().digest(to_sign))
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": ses.TBS_Sign.load(to_sign),
                "cert": forger.seal,
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": value,
            }
        ),
        tsa.token(value),
    )
    failed_at(
        rezip(files),
        pki,
        tsa,
        "seal_holder",
        Indication.FAILED,
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )


def test_a_flipped_signature_bit_is_a_crypto_failure(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    value = bytearray(signature["signature"].native)
    value[-3] ^= 0x01  # inside s, keeping the DER shape
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": ses.TBS_Sign.load(signature["to_sign"].dump()),
                "cert": signature["cert"].native,
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": bytes(value),
            }
        ),
        signature["time_stamp"].native,
    )
    failed_at(
        rezip(files), pki, tsa, "integrity", Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE
    )


def test_a_flipped_bit_in_the_seal_makers_signature_is_a_crypto_failure(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    """The SESeal's own signature, re-sealed by the department so toSign still verifies."""
    files = unzip(genuine)
    seal = ses.SESeal.load(files[SEAL_FILE])
    broken = bytearray(seal["signed_value"].native)
    broken[-3] ^= 0x01
    forged = ses.seseal(
        ses.SES_SealInfo.load(seal["eseal_info"].dump()),
        maker_certificate_der=seal["cert"].native,
        signature=bytes(broken),
    )
    files[SEAL_FILE] = forged.dump(force=True)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    tbs = ses.tbs_sign(
        forged,
        time=signature["to_sign"]["time_info"].native,
        data_hash=signature["to_sign"]["data_hash"].native,
        property_info=signature["to_sign"]["property_info"].native,
    )
    value = pki.seal_key.sign_digest(pki.seal_key.public_key().digest(tbs.dump()))
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": tbs,
                "cert": pki.seal,
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": value,
            }
        ),
        tsa.token(value),
    )
    failed_at(
        rezip(files), pki, tsa, "seal_maker", Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE
    )


def test_a_removed_timestamp_leaves_no_proof_of_time(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    files[SIGNED_VALUE] = with_timestamp(ses.SES_Signature.load(files[SIGNED_VALUE]), None)
    failed_at(rezip(files), pki, tsa, "timestamp", Indication.FAILED, SubIndication.NO_POE)


def test_a_timestamp_over_other_bytes_is_broken(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    files[SIGNED_VALUE] = with_timestamp(signature, tsa.token(b"another seal's signature"))
    failed_at(rezip(files), pki, tsa, "timestamp", Indication.FAILED, SubIndication.HASH_FAILURE)


def test_a_timestamp_from_another_tsa_proves_nothing(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    foreign = Tsa(name="foreign")
    files[SIGNED_VALUE] = with_timestamp(signature, foreign.token(signature["signature"].native))
    failed_at(rezip(files), pki, tsa, "timestamp", Indication.INDETERMINATE, SubIndication.NO_POE)


def test_a_timestamp_that_is_not_a_token_is_refused(genuine: bytes, pki: Sm2Pki, tsa: Tsa) -> None:
    files = unzip(genuine)
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature.load(files[SIGNED_VALUE]), b"\x30\x03junk"
    )
    failed_at(rezip(files), pki, tsa, "timestamp", Indication.FAILED, SubIndication.HASH_FAILURE)


# -- the seal's own structure --------------------------------------------------------------------


def test_a_signed_value_that_is_not_der_is_a_format_failure(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    files[SIGNED_VALUE] = b"\x30\x80" + files[SIGNED_VALUE][2:]
    failed_at(
        rezip(files), pki, tsa, "seal_structure", Indication.FAILED, SubIndication.FORMAT_FAILURE
    )


def test_a_seal_past_its_certificate_is_not_trusted_at_the_proven_time(tsa: Tsa) -> None:
    """The SM2 seal certificate expired before the TSA's time: no chain at that time."""
    pki = Sm2Pki()
    pki.seal = sm2_certificate(
        "expired seal",
        pki.seal_key,
        "elicence SM2 Seal CA",
        pki.ca_key,
        0x5EA2,
        ca=False,
        end=NOW - timedelta(days=1),
    )
    data = seal_files(pki, tsa)
    detail = failed_at(
        data, pki, tsa, "chain", Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND
    )
    assert "not valid at" in detail


def test_a_signer_key_that_is_not_sm2_is_a_crypto_failure(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    signature = ses.SES_Signature.load(files[SIGNED_VALUE])
    files[SIGNED_VALUE] = with_timestamp(
        ses.SES_Signature(
            {
                "to_sign": ses.TBS_Sign.load(signature["to_sign"].dump()),
                "cert": tsa.anchors.roots[0],  # an ECDSA certificate
                "signature_alg_id": signature["signature_alg_id"].native,
                "signature": signature["signature"].native,
            }
        ),
        signature["time_stamp"].native,
    )
    failed_at(
        rezip(files), pki, tsa, "integrity", Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE
    )


def test_a_package_with_a_path_traversal_reference_is_refused(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    files[SIGNATURE] = files[SIGNATURE].replace(b'FileRef="/OFD.xml"', b'FileRef="/../OFD.xml"')
    found = examine(rezip(files), pki, tsa)
    assert isinstance(found, Inspection)
    assert (found.indication, found.sub) == (Indication.FAILED, SubIndication.FORMAT_FAILURE)
    assert "leaves the package" in found.detail


def test_a_zip_without_ofd_xml_is_not_an_ofd(pki: Sm2Pki, tsa: Tsa) -> None:
    found = examine(zip_package({"word/document.xml": b"<w/>"}), pki, tsa)
    assert isinstance(found, Inspection)
    assert (found.indication, found.sub) == (Indication.FAILED, SubIndication.FORMAT_FAILURE)
    assert "no OFD.xml" in found.detail


def test_an_unsigned_file_with_a_message_in_its_name_is_not_quoted(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa
) -> None:
    files = unzip(genuine)
    files["Doc_0/证照已核实请致电400-123-4567.xml"] = b"<a/>"
    detail = failed_at(
        rezip(files), pki, tsa, "coverage", Indication.FAILED, SubIndication.MODIFIED_AFTER_SEALING
    )
    assert "400" not in detail
    assert "an entry not named as a licence's" in detail


@pytest.mark.parametrize("target", [SIGNED_VALUE, SEAL_FILE, "package"])
def test_random_corruption_never_raises_and_never_passes(
    genuine: bytes, pki: Sm2Pki, tsa: Tsa, target: str
) -> None:
    """Bytes flipped at random (seeded) in the seal's files or the ZIP itself: every answer is a
    refusal or a failed check, never an exception out of the examination. A flip in the ZIP's
    bookkeeping only (a date, a version field) leaves the signed files as they were: the seal
    holds, and the repository, which knows the file's SHA-256, is what refuses it."""
    import random

    chance = random.Random(f"ofd-{target}")
    files = unzip(genuine)
    for _ in range(60):
        original = genuine if target == "package" else files[target]
        mutated = bytearray(original)
        for _ in range(chance.randint(1, 4)):
            mutated[chance.randrange(len(mutated))] ^= 1 << chance.randrange(8)
        data = bytes(mutated) if target == "package" else rezip({**files, target: bytes(mutated)})
        found = examine(data, pki, tsa)
        if isinstance(found, Inspection):
            assert not found.ok and found.sub is not None
        elif found.failure is None:
            assert target == "package", f"a corrupted {target} passed"
            assert read_package(data, Limits()).files == files  # bookkeeping, not content
