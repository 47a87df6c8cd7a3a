"""Personal data masked to the minimum a viewer needs.

A counter clerk needs to match a face and a card, not to read a full ID number: a person's name
keeps its first (and, when longer than two, its last) character, an ID keeps its region and last four characters. Organisations'
names and credit codes are public register data and are shown whole.
"""

from __future__ import annotations


def mask_name(name: str, is_person: bool) -> str:
    if not is_person or len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id(value: str, is_person: bool) -> str:
    if not is_person or len(value) < 10:
        return value
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
