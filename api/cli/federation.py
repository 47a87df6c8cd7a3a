"""``elicence federation``: recognise other trust domains, refresh their lists, map types.

Each refusal (a list that is forged, signed by another key, older than the stored one, past its
``next_update``, naming a key of this or another recognised domain, or sending us off its
origin or to a private address) is one line on stderr and exit 1; the stored list stays as it
was. A peer that cannot be reached is exit 4, like other unavailable dependencies.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, open_services
from core.errors import ElicenceError, ErrorKind

federation_app = typer.Typer(
    help="信任域互认 / recognised trust domains (mutual recognition)", no_args_is_help=True
)
AsJson = Annotated[bool, typer.Option("--json", help="输出JSON / print JSON")]


def _fail(exc: ElicenceError) -> typer.Exit:
    typer.echo(f"elicence: {exc.message}", err=True)
    return typer.Exit(4 if exc.kind is ErrorKind.UNAVAILABLE else 1)


def _line(domain: dict[str, Any]) -> str:
    maps = ", ".join(f"{m['foreign_type']}→{m['local_type']}" for m in domain["mappings"])
    return (
        f"{domain['name']}  sequence {domain['sequence']}  next_update {domain['next_update']}"
        f"  fetched {domain['fetched_at']}\n  {domain['url']}\n  sha256 {domain['fingerprint']}"
        f"\n  root sha256 {domain['root_sha256'] or '-'}"
        + (f"\n  mappings {maps}" if maps else "")
    )


@federation_app.command("add")
def add(
    url: Annotated[
        str, typer.Argument(help="对方信任列表网址 / the other domain's trust list URL")
    ],
    fingerprint: Annotated[
        str,
        typer.Option(
            "--fingerprint", help="签名者证书SHA-256（线下获得）/ the signer's SHA-256, pinned"
        ),
    ],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """承认另一信任域 / recognise another domain's trust list, pinned by its signer's fingerprint."""
    federation = open_services(data_dir).federation
    try:
        outcome = federation.add(url, fingerprint, actor=OPERATOR)
    except ElicenceError as exc:
        raise _fail(exc) from None
    (domain,) = federation.describe(outcome.name)
    if as_json:
        typer.echo(json.dumps({"result": outcome.result, **domain}, ensure_ascii=False))
        return
    typer.echo(f"已承认 / {outcome.result}: {_line(domain)}")


@federation_app.command("list")
def list_domains(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """已承认的信任域 / recognised domains, their lists and mappings."""
    domains = open_services(data_dir).federation.describe()
    if as_json:
        typer.echo(json.dumps(domains, ensure_ascii=False, indent=2))
        return
    if not domains:
        typer.echo("尚未承认其他信任域 / no recognised domain")
    for domain in domains:
        typer.echo(_line(domain))


@federation_app.command("refresh")
def refresh(
    name: Annotated[
        str | None, typer.Argument(help="信任域名称（缺省为全部） / one domain")
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """按序号更新信任列表 / fetch the lists again; older or forged lists are refused."""
    federation = open_services(data_dir).federation
    try:
        outcomes = federation.refresh(name, actor=OPERATOR)
    except ElicenceError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps([o.__dict__ for o in outcomes], ensure_ascii=False))
    else:
        for outcome in outcomes:
            detail = f": {outcome.message}" if outcome.message else ""
            typer.echo(f"{outcome.name}  {outcome.result}  sequence {outcome.sequence}{detail}")
    results = {o.result for o in outcomes}
    if "refused" in results:
        raise typer.Exit(1)
    if "unreachable" in results:
        raise typer.Exit(4)


@federation_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="信任域名称 / domain name")],
    data_dir: DataDir = None,
) -> None:
    """不再承认该信任域 / stop recognising a domain (its type mappings go with it)."""
    try:
        open_services(data_dir).federation.remove(name, actor=OPERATOR)
    except ElicenceError as exc:
        raise _fail(exc) from None
    typer.echo(f"已移除 / removed: {name}")


@federation_app.command("map")
def map_type(
    domain: Annotated[str, typer.Argument(help="信任域名称 / domain name")],
    foreign_type: Annotated[str, typer.Argument(help="外域证照类型代码 / foreign type code")],
    local_type: Annotated[
        str | None, typer.Argument(help="本域证照类型代码 / local type code")
    ] = None,
    remove_mapping: Annotated[
        bool, typer.Option("--remove", help="删除该映射 / remove the mapping")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """外域证照类型对应本域类型 / map a foreign licence type to a local one (or --remove)."""
    if (local_type is None) != remove_mapping:
        typer.echo(
            "elicence: 须给出 LOCAL_TYPE 或 --remove / give LOCAL_TYPE or --remove", err=True
        )
        raise typer.Exit(2)
    try:
        open_services(data_dir).federation.map(domain, foreign_type, local_type, actor=OPERATOR)
    except ElicenceError as exc:
        raise _fail(exc) from None
    if local_type is None:
        typer.echo(f"已删除映射 / unmapped: {domain} {foreign_type}")
    else:
        typer.echo(f"已映射 / mapped: {domain} {foreign_type} → {local_type}")
