"""The names of this domain's licence types, as federation's type mappings look them up.

``trust.federation`` maps a recognised domain's licence types onto ours but sits below the
catalogue, so the container hands it this lookup (``LocalTypes``): it is called inside
federation's own transaction.
"""

from __future__ import annotations

from sqlmodel import Session

from licences.models import LicenceType


def local_type_name(session: Session, code: str) -> str | None:
    """The name of a licence type of this domain's catalogue, or None."""
    entry = session.get(LicenceType, code)
    return entry.name if entry is not None else None
