"""Any single-character change of a valid identifier is detected — whatever the new character,
not only one from the code's own alphabet: a dot, a space, a lower-case letter or a full-width
digit typed by a clerk must be refused as surely as a wrong digit. (A change of case alone is
the same code, normalised, for the codes whose standards are case-insensitive.)"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from licences.id_documents import validate_holder_id
from licences.identifiers import (
    LicenceIdentifier,
    make_resident_id,
    make_uscc,
    validate_resident_id,
    validate_uscc,
)
from tests.test_identifiers import identifiers, resident_bodies, uscc_bodies

# What a keyboard, a scanner or a copy from a web page may put in the place of a character.
TYPED = string.ascii_letters + string.digits + string.punctuation + " \t０１２Ｘ"


def change_one(text: str, draw: st.DataObject, *, same_if_case_only: bool) -> str:
    i = draw.draw(st.integers(0, len(text) - 1))
    other = draw.draw(
        st.sampled_from(TYPED).filter(
            lambda c: c != text[i] and not (same_if_case_only and c.upper() == text[i].upper())
        )
    )
    return text[:i] + other + text[i + 1 :]


@given(identifiers, st.data())
def test_any_single_change_of_a_licence_identifier_is_detected(
    identifier: LicenceIdentifier, draw: st.DataObject
) -> None:
    changed = change_one(str(identifier), draw, same_if_case_only=False)
    with pytest.raises(InvalidInput) as caught:
        LicenceIdentifier.parse(changed)
    assert caught.value.field == "identifier"


@given(uscc_bodies, st.data())
def test_any_single_change_of_a_credit_code_is_detected(body: str, draw: st.DataObject) -> None:
    changed = change_one(make_uscc(body), draw, same_if_case_only=True)
    with pytest.raises(InvalidInput) as caught:
        validate_uscc(changed, field="holder.id")
    assert caught.value.field == "holder.id"


@given(resident_bodies, st.data())
def test_any_single_change_of_a_resident_id_is_detected(body: str, draw: st.DataObject) -> None:
    number = make_resident_id(body)
    changed = change_one(number, draw, same_if_case_only=True)
    with pytest.raises(InvalidInput) as caught:
        validate_resident_id(changed, field="holder.id")
    assert caught.value.field == "holder.id"


@pytest.mark.parametrize(
    ("id_type", "number"), [("111", "11010519491231002X"), ("001", "91350100M000100Y43")]
)
def test_the_published_examples_pass_and_every_single_change_fails(
    id_type: str, number: str
) -> None:
    """Exhaustively, for the two examples of the standards: every position, every character."""
    assert validate_holder_id(id_type, number.lower()) == number
    for i, original in enumerate(number):
        for other in TYPED:
            if other.upper() == original:
                continue
            with pytest.raises(InvalidInput):
                validate_holder_id(id_type, number[:i] + other + number[i + 1 :])
