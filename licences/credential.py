"""One licence version as a W3C Verifiable Credential 2.0, signed as ``application/vc+jwt``.

A sealed PDF proves a licence to whoever can read PDF signatures; a wallet or a foreign system
that speaks Verifiable Credentials wants the same facts as JSON it can check with a JOSE library
and the domain's published key. This module makes that document from the repository's record
(never from the PDF) and signs it with the domain's credential key (``trust.jose``), whose
public JWK the signed trust list publishes in ``credential_keys``. The format, and each choice
made here, is described in ``docs/credentials.md``.

Why the document looks as it does:

* ``@context`` is the base context followed by the W3C ``undefined-terms/v2`` context. The
  Recommendation removed ``@vocab`` from the base context and requires that context, last, in a
  document whose terms are not all defined by published contexts (ours: the licence's fields).
  It is W3C's, so the domain publishes no context of its own that verifiers would have to fetch.
* ``id`` names the licence *version* (``urn:gbt36904:<identifier>``): every version is a
  licence of its own with its own status entry, so a credential never outlives the version it
  describes under the same name.
* ``issuer.id`` is the department's public page on this domain
  (``<base>/api/v1/departments/<code>``): a URL anyone can dereference to see who the issuer is,
  unique across federated domains because it starts with the domain's base URL.
* ``credentialStatus`` is the licence's entry in the domain's status list (2-bit entries,
  purpose ``message``; ``docs/status-list.md``): a revoked or suspended licence still exports,
  and its entry says what it is now, as it will after any later change. A licence issued before
  status lists has no entry: its credential carries none (verifiers must ask online), and so it
  is exported only while the licence is valid by its stored status.
* ``credentialSubject`` is the holder, named as the licence was issued, with their ID type and
  number in full: the credential is given only to the holder and to the issuing department
  (``licences.credential_desk``), never to a department pulling under a grant, so there is no
  viewer to mask it for; a signed document cannot be masked afterwards.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Any

from core.clock import CHINA
from core.db import as_utc
from keys.store import KeyUseListener
from licences.bitstring import STATUS_SIZE, EntryStatus
from licences.repository import LicenceRecord
from trust.jose import CredentialKeys
from trust.profiles import Endpoints

MEDIA_TYPE = "application/vc+jwt"
PURPOSE = "credential-export"  # the key use's purpose on the audit chain
BASE_CONTEXT = "https://www.w3.org/ns/credentials/v2"
UNDEFINED_TERMS = "https://www.w3.org/ns/credentials/undefined-terms/v2"
CREDENTIAL_TYPE = "ElectronicLicenceCredential"
ENTRY_TYPE = "BitstringStatusListEntry"
STATUS_PURPOSE = "message"
HEADER = {"typ": "vc+jwt", "cty": "vc"}  # alg and kid are set by the signer
URN_PREFIX = "urn:gbt36904:"


def credential_id(identifier: str) -> str:
    """The credential's ``id``: the licence version's GB/T 36904 identifier as a URN."""
    return URN_PREFIX + identifier


def issuer_id(base_url: str, department_code: str) -> str:
    """The department's public description on this domain (``GET /api/v1/departments/{code}``)."""
    return f"{base_url.rstrip('/')}/api/v1/departments/{department_code}"


def start_of_day(day: date) -> str:
    """The first second of ``day`` in China, as an XML Schema dateTime with its offset."""
    return datetime.combine(day, time(0, 0, 0), tzinfo=CHINA).isoformat()


def end_of_day(day: date) -> str:
    """The last second of ``day`` in China: a licence's ``valid_until`` is a whole day."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA).isoformat()


def utc_text(moment: datetime) -> str:
    """An instant in UTC to the second (SQLite hands back naive UTC datetimes)."""
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def status_entry(base_url: str, index: int) -> dict[str, Any]:
    """The licence's ``BitstringStatusListEntry`` (W3C Bitstring Status List v1.0): ``statusSize``
    2, so ``statusMessage`` names all four values, as ``licences.bitstring`` publishes them."""
    status_list = Endpoints(base_url.rstrip("/")).status_list
    return {
        "id": f"{status_list}#{index}",
        "type": ENTRY_TYPE,
        "statusPurpose": STATUS_PURPOSE,
        "statusListIndex": str(index),
        "statusSize": STATUS_SIZE,
        "statusMessage": [
            {"status": hex(int(status)), "message": status.message} for status in EntryStatus
        ],
        "statusListCredential": status_list,
    }


def subject(record: LicenceRecord) -> dict[str, Any]:
    """The holder (as the licence names them) and the licence version they hold."""
    licence, entry = record.licence, record.licence_type
    about: dict[str, Any] = {
        "identifier": licence.identifier,
        "version": licence.version,
        "typeCode": entry.code,
        "typeName": entry.name,
        "typeVersion": licence.type_version,
        "fields": dict(licence.fields),
        "validFrom": licence.valid_from.isoformat(),
        "issuedAt": utc_text(licence.issued_at),
        "documentSha256": licence.sha256,
    }
    if entry.name_en:
        about["typeNameEn"] = entry.name_en
    if licence.valid_until is not None:
        about["validUntil"] = licence.valid_until.isoformat()
    return {
        "name": record.holder.name,
        "idType": record.holder.id_type,
        "idNumber": record.holder.id_number,
        "licence": about,
    }


def document(record: LicenceRecord, base_url: str) -> dict[str, Any]:
    """The unsecured credential (VC Data Model 2.0) of the record's licence version."""
    licence = record.licence
    credential: dict[str, Any] = {
        "@context": [BASE_CONTEXT, UNDEFINED_TERMS],
        "id": credential_id(licence.identifier),
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "name": record.licence_type.name,
        "issuer": {"id": issuer_id(base_url, record.issuer.code), "name": record.issuer.name},
        "validFrom": start_of_day(licence.valid_from),
    }
    if licence.valid_until is not None:
        credential["validUntil"] = end_of_day(licence.valid_until)
    credential["credentialSubject"] = subject(record)
    if licence.status_index is not None:
        credential["credentialStatus"] = status_entry(base_url, licence.status_index)
    return credential


def payload(credential: dict[str, Any]) -> bytes:
    """The JWS payload: the credential's JSON in UTF-8 (Chinese kept as it is written)."""
    return json.dumps(credential, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(
    keys: CredentialKeys, credential: dict[str, Any], *, listener: KeyUseListener | None
) -> str:
    """The credential as a compact JWS (``application/vc+jwt``) by the newest credential key;
    the key use is reported to ``listener`` with purpose ``credential-export``."""
    return keys.sign(HEADER, payload(credential), purpose=PURPOSE, listener=listener)
