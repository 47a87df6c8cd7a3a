"""Identifiers: published examples pass, each rule refuses what it should with the field named,
and the check characters catch every single-character substitution."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import Conflict, InvalidInput
from licences.id_documents import validate_holder_id
from licences.identifiers import (
    ALNUM36,
    PREFIX,
    REGISTRATION_AUTHORITIES,
    USCC_ALPHABET,
    LicenceIdentifier,
    make_resident_id,
    make_uscc,
    mod37_36_check,
    mod37_36_valid,
    organisation_code_check,
    random_serial,
    validate_licence_type_code,
    validate_resident_id,
    validate_uscc,
)

RESIDENT_ID = "11010519491231002X"  # the GB 11643 example
USCC = "91350100M000100Y43"
AUTHORITY = "1135010000360001XN"
TYPE_CODE = AUTHORITY + "001"
# Vectors published with other ISO 7064 MOD 37,36 implementations (xbib standardnumber).
MOD37_36_VECTORS = ["A12425GABC1234002M", "B159D8FA01240000K", "188166C7342000003"]


# Independent reference implementations, written from the standards' text, to build codes that
# break exactly one rule.
def ref_gb32100_check(body17: str) -> str:
    weights = [3**i % 31 for i in range(17)]  # == 1, 3, 9, 27, 19, 26, ...
    c = (31 - sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(body17, weights)) % 31) % 31
    return USCC_ALPHABET[c]


def ref_gb11643_check(body17: str) -> str:
    return "10X98765432"[sum(int(d) * 2 ** (17 - i) for i, d in enumerate(body17)) % 11]


def errors_of(call: Callable[[], object]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    return caught.value


# --- ISO 7064 MOD 37,36 --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", MOD37_36_VECTORS)
def test_published_mod37_36_vectors(vector: str) -> None:
    assert mod37_36_check(vector[:-1]) == vector[-1]
    assert mod37_36_valid(vector)


def test_check_character_ends_the_recurrence_in_s_equals_1() -> None:
    def final_s(text: str) -> int:
        p, s = 36, 0
        for ch in text:
            s = (p + ALNUM36.index(ch)) % 36 or 36
            p = s * 2 % 37
        return s

    for data in ["", "0", "Z", "ZZZZ", TYPE_CODE + USCC + "ABC" + "001"]:
        assert final_s(data + mod37_36_check(data)) == 1


def test_mod37_36_refuses_characters_outside_the_alphabet() -> None:
    assert errors_of(lambda: mod37_36_check("ab")).field == "identifier"
    assert not mod37_36_valid("")
    assert not mod37_36_valid("A12425GABC1234002m")
    assert not mod37_36_valid("A12425GABC1234002.")


@given(st.text(alphabet=ALNUM36, max_size=80))
def test_exactly_one_check_character_is_valid(data: str) -> None:
    assert [c for c in ALNUM36 if mod37_36_valid(data + c)] == [mod37_36_check(data)]


@given(st.text(alphabet=ALNUM36, min_size=1, max_size=80), st.data())
def test_mod37_36_detects_every_single_substitution(data: str, draw: st.DataObject) -> None:
    full = data + mod37_36_check(data)
    i = draw.draw(st.integers(0, len(full) - 1))
    other = draw.draw(st.sampled_from(ALNUM36).filter(lambda c: c != full[i]))
    assert not mod37_36_valid(full[:i] + other + full[i + 1 :])


# --- GB 32100 / GB 11714 ---------------------------------------------------------------------------


def test_published_credit_code_passes_both_checks() -> None:
    assert organisation_code_check("M000100Y") == "4"  # 22*3 + 1*5 + 34*2 = 139; 11 - 7 = 4
    assert ref_gb32100_check(USCC[:17]) == "3"
    assert validate_uscc(USCC) == USCC
    assert validate_uscc(USCC.lower()) == USCC
    assert make_uscc(USCC[:17]) == USCC


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (USCC[:-1], "18 characters"),
        (USCC + "0", "18 characters"),
        (USCC[:-1] + "4", "GB 32100"),
        ("B" + USCC[1:17] + ref_gb32100_check("B" + USCC[1:17]), "registration authority"),
        ("913501A0M000100Y4" + ref_gb32100_check("913501A0M000100Y4"), "division"),
        # the organisation code's own check broken, the outer check recomputed to hide it
        ("91350100M000100Y5" + ref_gb32100_check("91350100M000100Y5"), "GB 11714"),
        ("91350100M000100Y4-", "'-'"),
    ],
)
def test_broken_credit_codes_name_the_rule(code: str, rule: str) -> None:
    error = errors_of(lambda: validate_uscc(code))
    assert error.field == "uscc"
    assert rule in error.message


@pytest.mark.parametrize("letter", "IOZSV")
def test_forbidden_letters_are_refused(letter: str) -> None:
    code = USCC[:9] + letter + USCC[10:]
    assert letter + "'" in errors_of(lambda: validate_uscc(code)).message


def test_make_uscc_refuses_a_body_that_breaks_another_rule() -> None:
    assert "GB 11714" in errors_of(lambda: make_uscc("91350100M000100Y5")).message
    assert errors_of(lambda: make_uscc("91350100M000100")).field == "uscc"


uscc_bodies = st.builds(
    lambda a, k, div, org: a + k + div + org + organisation_code_check(org),
    st.sampled_from(sorted(REGISTRATION_AUTHORITIES)),
    st.sampled_from(USCC_ALPHABET),
    st.text(alphabet=string.digits, min_size=6, max_size=6),
    st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8),
)


@given(uscc_bodies)
def test_make_uscc_agrees_with_the_reference(body: str) -> None:
    assert make_uscc(body) == body + ref_gb32100_check(body)


@given(uscc_bodies, st.data())
def test_any_single_change_to_a_credit_code_is_refused(body: str, draw: st.DataObject) -> None:
    code = make_uscc(body)
    assert validate_uscc(code) == code
    i = draw.draw(st.integers(0, 17))
    other = draw.draw(st.sampled_from(ALNUM36).filter(lambda c: c != code[i]))
    changed = code[:i] + other + code[i + 1 :]
    assert errors_of(lambda: validate_uscc(changed)).field == "uscc"


# --- GB 11643 --------------------------------------------------------------------------------------


def test_published_resident_id_passes_and_lower_case_x_is_normalised() -> None:
    assert validate_resident_id(RESIDENT_ID) == RESIDENT_ID
    assert validate_resident_id(RESIDENT_ID.lower()) == RESIDENT_ID
    assert make_resident_id(RESIDENT_ID[:17]) == RESIDENT_ID


def resident(born: str) -> str:
    body = "110105" + born + "002"
    return body + ref_gb11643_check(body)


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        (RESIDENT_ID[:-1], "18 characters"),
        (RESIDENT_ID[:-1] + "3", "GB 11643"),
        ("1101051949123100XX", "17 digits"),
        (resident("19900230"), "not a real date"),
        (resident("19901301"), "not a real date"),
        (resident("18991231"), "before 1900"),
        (resident("20210101"), "in the future"),
    ],
)
def test_broken_resident_ids_name_the_rule(number: str, rule: str) -> None:
    error = errors_of(lambda: validate_resident_id(number, today=date(2020, 12, 31)))
    assert error.field == "resident_id"
    assert rule in error.message


def test_a_birth_today_passes_and_tomorrow_does_not() -> None:
    assert validate_resident_id(resident("20201231"), today=date(2020, 12, 31))
    assert validate_resident_id(resident("19000101"), today=date(2020, 12, 31))
    errors_of(lambda: validate_resident_id(resident("20201231"), today=date(2020, 12, 30)))


births = st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31))


resident_bodies = st.builds(
    lambda region, born, sequence: f"{region}{born:%Y%m%d}{sequence:03d}",
    st.text(alphabet=string.digits, min_size=6, max_size=6),
    births,
    st.integers(0, 999),
)


@given(resident_bodies)
def test_make_resident_id_agrees_with_the_reference(body: str) -> None:
    assert make_resident_id(body) == body + ref_gb11643_check(body)


@given(resident_bodies, st.data())
def test_any_single_change_to_a_resident_id_is_refused(body: str, draw: st.DataObject) -> None:
    number = make_resident_id(body)
    i = draw.draw(st.integers(0, 17))
    other = draw.draw(st.sampled_from("0123456789X").filter(lambda c: c != number[i]))
    changed = number[:i] + other + number[i + 1 :]
    assert errors_of(lambda: validate_resident_id(changed)).field == "resident_id"


# --- holder IDs ------------------------------------------------------------------------------------


def test_holder_id_is_validated_by_its_type() -> None:
    assert validate_holder_id("111", RESIDENT_ID.lower()) == RESIDENT_ID
    assert validate_holder_id("001", USCC) == USCC
    assert errors_of(lambda: validate_holder_id("001", USCC[:-1] + "4")).field == "holder.id"
    assert errors_of(lambda: validate_holder_id("111", USCC)).field == "holder.id"
    assert errors_of(lambda: validate_holder_id("002", USCC)).field == "holder.id_type"
    assert errors_of(lambda: validate_uscc(91350100)).field == "uscc"  # type: ignore[arg-type]


# --- licence type codes and identifiers ------------------------------------------------------------


def test_licence_type_code() -> None:
    assert validate_licence_type_code(TYPE_CODE.lower()) == TYPE_CODE
    assert (
        "21 characters" in errors_of(lambda: validate_licence_type_code(AUTHORITY + "01")).message
    )
    assert "3-digit" in errors_of(lambda: validate_licence_type_code(AUTHORITY + "0A1")).message
    bad_authority = errors_of(lambda: validate_licence_type_code(AUTHORITY[:-1] + "M001"))
    assert bad_authority.field == "code"
    assert "GB 32100" in bad_authority.message


def test_identifier_string_form() -> None:
    identifier = LicenceIdentifier(TYPE_CODE, AUTHORITY, "ABC123")
    data = TYPE_CODE + AUTHORITY + "ABC123001"
    assert str(identifier) == f"{PREFIX}{TYPE_CODE}.{AUTHORITY}.ABC123.001.{mod37_36_check(data)}"
    assert mod37_36_valid(data + identifier.check)
    assert LicenceIdentifier.parse(str(identifier)) == identifier


def test_next_version_is_a_new_identifier() -> None:
    first = LicenceIdentifier(TYPE_CODE, AUTHORITY, "ABC123")
    second = first.next_version()
    assert (second.version, second.serial) == ("002", first.serial)
    assert str(second) != str(first)
    assert LicenceIdentifier.parse(str(second)) == second
    assert LicenceIdentifier(TYPE_CODE, AUTHORITY, "X", "998").next_version().version == "999"
    with pytest.raises(Conflict):
        LicenceIdentifier(TYPE_CODE, AUTHORITY, "X", "999").next_version()


GOOD = str(LicenceIdentifier(TYPE_CODE, AUTHORITY, "ABC123"))


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("1.2.156.3005.3." + GOOD[len(PREFIX) :], "starts with"),
        (GOOD + ".0", "5 parts"),
        (GOOD.rsplit(".", 1)[0], "5 parts"),
        (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), "MOD 37,36"),
        (GOOD.replace(".ABC123.", ".abc123."), "serial"),
        (GOOD.replace(".ABC123.", ".."), "serial"),
        (GOOD.replace(".ABC123.", "." + "A" * 33 + "."), "at most 94"),  # every other part is fixed
        (GOOD.replace(".001.", ".000."), "version"),
        (GOOD.replace(".001.", ".01."), "version"),
        (GOOD.replace(f".{AUTHORITY}.", f".{AUTHORITY.lower()}."), "upper-case"),
        (GOOD.replace(f".{AUTHORITY}.", f".{USCC[:-1]}4."), "GB 32100"),
        (GOOD.replace(TYPE_CODE, TYPE_CODE[:-1]), "21 characters"),
        (GOOD + "0" * 100, "at most 94"),
    ],
)
def test_broken_identifiers_name_the_rule(text: str, rule: str) -> None:
    error = errors_of(lambda: LicenceIdentifier.parse(text))
    assert error.field == "identifier"
    assert rule in error.message


def test_constructor_refuses_a_serial_of_33() -> None:
    assert (
        errors_of(lambda: LicenceIdentifier(TYPE_CODE, AUTHORITY, "A" * 33)).field == "identifier"
    )
    assert LicenceIdentifier(TYPE_CODE, AUTHORITY, "A" * 32).serial == "A" * 32


usccs = uscc_bodies.map(make_uscc)
identifiers = st.builds(
    LicenceIdentifier,
    st.builds(lambda u, n: f"{u}{n:03d}", usccs, st.integers(0, 999)),
    usccs,
    st.text(alphabet=ALNUM36, min_size=1, max_size=32),
    st.integers(1, 999).map(lambda n: f"{n:03d}"),
)


@given(identifiers)
def test_identifier_round_trip(identifier: LicenceIdentifier) -> None:
    text = str(identifier)
    assert len(text) <= 96  # the database column
    assert LicenceIdentifier.parse(text) == identifier
    assert str(LicenceIdentifier.parse(text)) == text


@given(identifiers, st.data())
def test_any_single_substitution_in_an_identifier_is_detected(
    identifier: LicenceIdentifier, draw: st.DataObject
) -> None:
    text = str(identifier)
    positions = [i for i in range(len(PREFIX), len(text)) if text[i] != "."]
    i = draw.draw(st.sampled_from(positions))
    other = draw.draw(st.sampled_from(ALNUM36).filter(lambda c: c != text[i]))
    changed = text[:i] + other + text[i + 1 :]
    assert not mod37_36_valid(changed[len(PREFIX) :].replace(".", ""))
    assert errors_of(lambda: LicenceIdentifier.parse(changed)).field == "identifier"


def test_random_serial() -> None:
    serials = {random_serial() for _ in range(50)}
    assert len(serials) == 50
    assert all(len(s) == 12 and set(s) <= set(ALNUM36) for s in serials)
    assert len(random_serial(32)) == 32
    for length in (0, 33):
        with pytest.raises(ValueError):
            random_serial(length)
