"""The operator's view of key custody: which key versions the store holds and what uses each,
and rotating a department's seal keys.

It lives with the seals, not in ``keys``, because what a key is *for* is written in the seal
and certificate tables, which sit above the key store. Each method owns its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.db import reading, transaction
from core.errors import NotFound
from keys.store import KeyStore
from seals.models import Seal
from seals.registry import SealRegistry
from trust.models import CertificateRecord


@dataclass(frozen=True)
class KeyUse:
    """One key version in the store and what names it."""

    key: str  # the KeyRef, store:label:vN
    label: str
    version: int
    algorithm: str
    seal: str | None  # the seal whose current key this is
    certificate: str | None  # "<role> <name>" of a certificate bound to it


@dataclass(frozen=True)
class Rotation:
    """A seal's key and certificate before and after a rotation."""

    seal: str
    key: str
    certificate: str
    previous_key: str
    previous_certificate: str


class KeyCustody:
    """Key versions and what uses them; seal key rotation, one transaction for a department."""

    def __init__(self, *, engine: Engine, keystore: KeyStore, registry: SealRegistry) -> None:
        self._engine = engine
        self._keys = keystore
        self._registry = registry

    def uses(self) -> list[KeyUse]:
        """Every key version of the store, in the store's order, with the seal that holds it
        now and the certificate bound to it (the store is asked first)."""
        infos = self._keys.list()
        with reading(self._engine) as session:
            in_use = {s.key_ref: s.code for s in session.exec(select(Seal))}
            certified = {
                r.key_ref: f"{r.role} {r.name}" for r in session.exec(select(CertificateRecord))
            }
        return [
            KeyUse(
                key=str(info.ref),
                label=info.ref.label,
                version=info.ref.version,
                algorithm=info.algorithm.value,
                seal=in_use.get(str(info.ref)),
                certificate=certified.get(str(info.ref)),
            )
            for info in infos
        ]

    def rotate(
        self, department_code: str, *, actor: str, seal: str | None = None
    ) -> list[Rotation]:
        """A new key version and seal certificate for each active seal of the department (or
        only ``seal``), all in one transaction; 404 when there is none to rotate."""
        rotated: list[Rotation] = []
        with transaction(self._engine) as session:
            seals = self._registry.active_seals(session, department_code)
            if seal is not None:
                seals = [s for s in seals if s.code == seal]
            if not seals:
                raise NotFound(
                    f"部门 {department_code} 没有可轮换的印章 / no active seal to rotate",
                    field="seal",
                )
            for row in seals:
                previous_key, previous_certificate = row.key_ref, row.certificate_serial
                updated = self._registry.rotate_seal_key(session, actor=actor, seal_code=row.code)
                rotated.append(
                    Rotation(
                        seal=updated.code,
                        key=updated.key_ref,
                        certificate=updated.certificate_serial,
                        previous_key=previous_key,
                        previous_certificate=previous_certificate,
                    )
                )
        return rotated
