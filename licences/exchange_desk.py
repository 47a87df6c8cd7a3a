"""The exchange format as the edge uses it: export one licence, a page or every match of a search,
and read an import file into issuance requests (``licences.exchange``,
``docs/exchange-format.md``).

Each method opens one reading transaction and returns plain JSON-ready documents or requests;
issuing the imported records is issuance's own business (``licences.exchange.import_all`` over
``IssuanceService.issue``, each item in its own transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine

from core.clock import Clock
from core.db import reading
from licences import batch, exchange
from licences.catalogue import Catalogue
from licences.licence_desk import only_issuer
from licences.lifecycle import parse_identifier
from licences.repository import licence_by_identifier
from licences.search import MAX_LIMIT, LicenceQuery, search


class ExchangeDesk:
    def __init__(
        self,
        *,
        engine: Engine,
        catalogue: Catalogue,
        clock: Clock,
        verify_url: Callable[[str], str],
    ) -> None:
        self._engine = engine
        self._catalogue = catalogue
        self._clock = clock
        self._verify_url = verify_url

    def export_one(self, identifier: str, *, department_code: str | None) -> dict[str, Any]:
        """One licence in the exchange format: 422 for a malformed identifier, 404 for an
        unknown one, 403 for a department that did not issue it (None: the operator)."""
        with reading(self._engine) as session:
            licence = licence_by_identifier(session, parse_identifier(identifier))
            only_issuer(licence, department_code)
            exporter = exchange.Exporter(
                session, self._catalogue, self._verify_url, self._clock.now()
            )
            return exporter.record(licence)

    def export_page(self, query: LicenceQuery) -> dict[str, Any]:
        """One page of a search as an export document, with the cursor of the next page."""
        now = self._clock.now()
        with reading(self._engine) as session:
            page = search(session, query, now)
            exporter = exchange.Exporter(session, self._catalogue, self._verify_url, now)
            records = [exporter.record(licence) for licence, _ in page.items]
        return exchange.export_document(
            records, exported_at=self._clock.now(), next_cursor=page.next_cursor
        )

    def export_all(self, query: LicenceQuery) -> dict[str, Any]:
        """Every licence matching ``query`` (from its first page) in one document, read page by
        page (``MAX_LIMIT`` each, keyset order) in one transaction, so the document is one
        consistent picture."""
        now = self._clock.now()
        records: list[dict[str, Any]] = []
        cursor: str | None = None
        with reading(self._engine) as session:
            exporter = exchange.Exporter(session, self._catalogue, self._verify_url, now)
            while True:
                page = search(session, replace(query, cursor=cursor, limit=MAX_LIMIT), now)
                records += [exporter.record(licence) for licence, _ in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
        return exchange.export_document(records, exported_at=now)

    def import_items(
        self,
        records: list[dict[str, Any]],
        *,
        department_code: str | None,
        actor: str,
        request_id: str | None = None,
        key: str | None = None,
    ) -> list[batch.Item]:
        """Each imported record as an issuance request, checked against our catalogue, or as
        the error that stops it (``licences.exchange.import_items``)."""
        with reading(self._engine) as session:
            return exchange.import_items(
                records,
                partial(self._catalogue.get, session),
                department_code=department_code,
                actor=actor,
                request_id=request_id,
                key=key,
            )
