"""Repository data for a report, masked to what a counter clerk needs."""

from __future__ import annotations

from datetime import date

from licences.masking import mask_holder_id, mask_name
from licences.models import HolderCategory
from licences.repository import LicenceRecord, effective_status
from seals.models import SealType
from verify.report import LicenceSummary, SealSummary


def licence_summary(record: LicenceRecord, today: date) -> LicenceSummary:
    licence = record.licence
    is_person = record.licence_type.holder_category == HolderCategory.NATURAL_PERSON.value
    status = effective_status(licence, today)
    return LicenceSummary(
        identifier=licence.identifier,
        type_code=record.licence_type.code,
        type_name=record.licence_type.name,
        issuer_code=record.issuer.code,
        issuer_name=record.issuer.name,
        holder_name=mask_name(record.holder.name, is_person),
        holder_id=mask_holder_id(record.holder.id_type, record.holder.id_number, is_person),
        valid_from=licence.valid_from.isoformat(),
        valid_until=licence.valid_until.isoformat() if licence.valid_until else None,
        status=status.value,
        status_label=status.label,
        version=licence.version,
        purpose=(
            f"加注件：{record.purpose} / purpose-stamped copy, for this use only"
            if record.purpose
            else None
        ),
    )


def seal_summary(
    record: LicenceRecord, signing_time: str | None, timestamp: str | None = None
) -> SealSummary:
    return SealSummary(
        seal_code=record.seal.code,
        seal_name=record.seal.name,
        department=record.issuer.name,
        certificate_serial=record.licence.seal_certificate_serial or record.seal.certificate_serial,
        signing_time=signing_time,
        timestamp=timestamp,
        seal_type=record.seal.seal_type,
        seal_type_label=SealType(record.seal.seal_type).label,
        department_code=record.issuer.code,
    )
