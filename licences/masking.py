"""Personal data masked to the minimum a viewer needs.

A counter clerk needs to match a face and a card, not to read a full ID number: a person's name
keeps its first (and, when longer than two, its last) character — for a name in Latin script,
the first letter of each word — and an ID keeps what tells the clerk which card to look at:

* numbers in the GB 11643 form (resident ID 111, 港澳台居民居住证 560, the 2023 permanent
  residence card 553): the first three and the last four characters, as on a resident ID;
* passports (414): the first letter (E or G, or the issuing country's code) and the last three;
* 港澳 permits (516): the H or M and the last three; 台湾 permits (511): the last three;
* the old permanent residence card (553, 15 characters): its nationality letters and last three.

Organisations' names and credit codes are public register data and are shown whole.
"""

from __future__ import annotations

from core.errors import InvalidInput
from licences.id_documents import (
    ID_TYPE_HK_MACAO_PERMIT,
    ID_TYPE_PASSPORT,
    ID_TYPE_PERMANENT_RESIDENCE,
    ID_TYPE_TAIWAN_PERMIT,
    identify,
    is_person_id_type,
)

_LATIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def mask_name(name: str, is_person: bool) -> str:
    if not is_person or len(name) <= 1:
        return name
    if any(c in _LATIN for c in name):
        return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split())
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id(value: str, is_person: bool) -> str:
    """The GB 11643-form mask (any person ID whose type is not known, e.g. in free text)."""
    if not is_person or len(value) < 10:
        return value
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def _keep(value: str, head: int, tail: int = 3) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[-tail:]


def mask_holder_id(id_type: str, value: str, is_person: bool) -> str:
    """A holder's ID number masked by the rule of its document type."""
    if not is_person:
        return value
    if id_type == ID_TYPE_PASSPORT:  # "E*****678", or "USA:A*****567" for another country's
        country, _, number = value.rpartition(":")
        return (f"{country}:" if country else "") + _keep(number, 1)
    if id_type == ID_TYPE_HK_MACAO_PERMIT:
        return _keep(value, 1)
    if id_type == ID_TYPE_TAIWAN_PERMIT:
        return _keep(value, 0)
    if id_type == ID_TYPE_PERMANENT_RESIDENCE and len(value) == 15:
        return _keep(value, 3)
    return mask_id(value, True) if len(value) >= 10 else _keep(value, 0)


def mask_typed_id(value: str) -> str:
    """An ID number someone typed without its type (a search term shown back), masked by the
    rule of the document it is; anything that is no document's number is masked whole."""
    try:
        id_type, number = identify(value)
    except InvalidInput:
        return "*" * len(value)
    return mask_holder_id(id_type, number, is_person_id_type(id_type))
