"""``elicence trust pin``: the trust-list signer an offline verifier trusts, saved once.

A counter's laptop verifies QR codes offline against a downloaded trust list. Whose list it is
cannot be read from the file itself (an attacker's list names its own signer), so the verifier
pins the SHA-256 fingerprint of the domain's trust-list signer certificate, obtained out of
band. ``verify --offline --fingerprint SHA256`` gives it per call; ``elicence trust pin SHA256``
saves it in the data directory (``trust-list-pin.json``) for later calls. Without either,
nothing is PASSED offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from api.cli.context import OPERATOR, DataDir, open_services, settings_for
from core.errors import ElicenceError, InvalidInput

trust_app = typer.Typer(
    help="离线核验的信任锚 / the offline verifier's trust anchor", no_args_is_help=True
)
PIN_FILE = "trust-list-pin.json"


def saved_pin(data_dir: Path | None) -> str | None:
    """The pin saved by ``elicence trust pin``, or None. Read only: offline verification writes
    nothing."""
    from trust.trustlist import pin_from_text

    path = settings_for(data_dir).data_dir / PIN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return pin_from_text(json.loads(text)["fingerprint"])
    except (ValueError, KeyError, TypeError, ElicenceError):
        raise InvalidInput(
            f"固定的指纹文件已损坏，请重新运行 elicence trust pin / {path} is damaged; "
            "run `elicence trust pin` again",
            field="fingerprint",
        ) from None


@trust_app.command("pin")
def pin(
    fingerprint: Annotated[
        str,
        typer.Argument(
            help="信任列表签名者证书SHA-256（线下获得）/ the signer's SHA-256, obtained out of band"
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """固定信任列表签名者，供离线核验使用 / pin the trust-list signer for offline verification."""
    from trust.trustlist import pin_from_text

    try:
        pinned = pin_from_text(fingerprint)
    except ElicenceError as exc:
        typer.echo(f"elicence: {exc.message} [fingerprint]", err=True)
        raise typer.Exit(1) from None
    path = _save(data_dir, pinned)
    typer.echo(f"已固定 / pinned {pinned} ({path})")


def _save(data_dir: Path | None, pinned: str) -> Path:
    """Writes the pin file. In a data directory that holds a trust domain the pin is an audited
    operator action, written in the audit entry's transaction; a verifier's laptop has no audit
    chain."""
    settings = settings_for(data_dir)
    path = settings.data_dir / PIN_FILE
    if settings.database_url is None and not (settings.data_dir / "elicence.db").exists():
        _write(path, pinned)
        return path
    open_services(data_dir).audit_desk.record_pin(
        pinned, actor=OPERATOR, file=PIN_FILE, write=lambda: _write(path, pinned)
    )
    return path


def _write(path: Path, pinned: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    from core.clock import SystemClock

    at = SystemClock().now().isoformat(timespec="seconds")
    record = {"fingerprint": pinned, "pinned_at": at}
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(part, path)


@trust_app.command("sm2")
def sm2(
    out: Annotated[
        Path | None,
        typer.Option(
            help="把证书写入该目录（PEM）/ write the certificates (PEM) to this directory"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """国密 SM2 根CA与印章CA（交给接入平台）/ the SM2 root and seal CA, to give to platforms."""
    entries = open_services(data_dir).trust_services.pki.sm2_authorities()
    if not entries:
        typer.echo(
            "没有 SM2 根CA，请用软件密钥库运行 elicence init / no SM2 CAs: run `elicence "
            "init` with the soft key store",
            err=True,
        )
        raise typer.Exit(1)
    for entry in entries:
        typer.echo(f"{entry['name']}: {entry['subject']}")
        typer.echo(f"  SHA-256 {entry['sha256']}  not after {entry['not_after']}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{entry['name']}.pem"
            path.write_text(entry["certificate"])
            typer.echo(f"  {path}")
