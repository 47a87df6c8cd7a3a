"""The product's issuance and verification of one licence as a PDF and as an OFD, for bench.ofd.

Both go through the live service's own ``IssuanceService`` parts (engine, seals, TSA, fonts, QR
keys, the OFD issuance with its SM2 PKI); only the catalogue is seen through a view that says the
type issues ``pdf`` alone or ``ofd`` alone, so the two rows issue the same licence type, fields,
layout and holder and differ in the document made. Verification is ``services.verification``'s
``verify_pdf`` (which hands a ZIP to the OFD verifier): the work of ``POST /api/v1/verify``
without HTTP.
"""

from __future__ import annotations

from typing import Any, cast

from bench.domain import issue_request


class _FormatsView:
    """The catalogue, except that every type issues ``formats``."""

    def __init__(self, catalogue: Any, formats: str) -> None:
        self._catalogue = catalogue
        self._formats = formats

    def get(self, session: Any, code: str) -> Any:
        entry = self._catalogue.get(session, code)
        # a detached copy: the session's own row is never changed
        return type(entry).model_validate({**entry.model_dump(), "document_formats": self._formats})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalogue, name)


def _issuance(services: Any, formats: str) -> Any:
    from licences.catalogue import Catalogue
    from licences.issuance import IssuanceService

    live = services.issuance
    return IssuanceService(
        engine=live._engine,
        catalogue=cast(Catalogue, _FormatsView(live._catalogue, formats)),
        seals=live._seals,
        audit=live._audit,
        clock=live._clock,
        fonts=live._fonts,
        public_base_url=live._base_url,
        qr_codes=live._qr_codes,
        long_term=live._long_term,
        ofd=live._ofd,
    )


def _stored_ofd(services: Any, identifier: str) -> bytes:
    from sqlmodel import Session

    from licences.models import LicenceOfd

    with Session(services.issuance.engine) as session:
        row = session.get(LicenceOfd, identifier)
        if row is None:
            raise AssertionError(f"no OFD stored for {identifier}")
        return bytes(row.ofd)


class DocumentBench:
    def __init__(self, services: Any) -> None:
        self._services = services
        self._pdf = _issuance(services, "pdf")
        self._ofd = _issuance(services, "ofd")
        self._request = issue_request(services)
        first_pdf = self._pdf.issue(self._request)
        first_ofd = self._ofd.issue(self._request)
        if first_ofd.documents != ("ofd",):
            raise AssertionError(f"OFD issuance made {first_ofd.documents}")
        self.pdf_bytes = services.licence_desk.document(first_pdf.licence.identifier)
        self.ofd_bytes = _stored_ofd(services, first_ofd.licence.identifier)
        for data in (self.pdf_bytes, self.ofd_bytes):
            report = self._verify(data)
            if report.indication.value != "PASSED":
                raise AssertionError(f"the bench's own document did not verify: {report}")

    def _verify(self, data: bytes) -> Any:
        return self._services.verification.verify_pdf(data, channel="upload", actor="bench")

    def issue_pdf(self) -> object:
        return self._pdf.issue(self._request)

    def issue_ofd(self) -> object:
        return self._ofd.issue(self._request)

    def verify_pdf(self) -> object:
        return self._verify(self.pdf_bytes)

    def verify_ofd(self) -> object:
        return self._verify(self.ofd_bytes)

    def sizes(self) -> dict[str, int]:
        return {"pdf_bytes": len(self.pdf_bytes), "ofd_bytes": len(self.ofd_bytes)}
