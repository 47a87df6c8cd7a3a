"""Where a licence sits in the status list: a random free entry, chosen when it is issued.

Indexes are drawn uniformly from the whole list, never in issue order, so a published list
(or two lists a day apart) says nothing about who was issued what or when: a set entry could be
any licence of the domain. The list is large (``licences.bitstring.MIN_ENTRIES``) and kept at
most a quarter full, so a random draw is free with probability of at least 3/4 and a few draws
always find one; when eight draws in a row are taken the list doubles.

The index is chosen in issuance's read step, before the QR payload that carries it is signed,
and the licence row's unique index on ``status_index`` is the final guard: two issuances racing
for one entry (one chance in millions) make the later store fail cleanly, with nothing written.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func
from sqlmodel import Session, col, select

from licences.bitstring import list_length
from licences.models import Licence

DRAWS = 8


def highest_index(session: Session) -> int | None:
    value = session.exec(select(func.max(col(Licence.status_index)))).one()
    return None if value is None else int(value)


def allocate(session: Session) -> int:
    """A status index no licence holds yet, uniformly random over the current list."""
    length = list_length(highest_index(session))
    while True:
        candidates = {secrets.randbelow(length) for _ in range(DRAWS)}
        taken = set(
            session.exec(
                select(Licence.status_index).where(col(Licence.status_index).in_(candidates))
            ).all()
        )
        free = sorted(candidates - taken)
        if free:
            return free[secrets.randbelow(len(free))]
        length *= 2  # every draw taken: the list is fuller than it should be, so it grows
