"""``elicence verify --qr TEXT --offline --trust-list F --fingerprint X --status-list S``: a printed
licence is PASSED offline only when its entry is 0 in a current status list signed by a
credential key of the pinned trust list, naming that list's URL and domain.

Attacks first (a list from elsewhere, altered, of another format, inflating, stale, not yet
valid, too old for the licence), then the answers of a genuine list. Each case runs through the
function (``verify.offline``, the clock pinned) and through the CLI (a laptop with an empty data
directory), and both must agree. Dates are China dates relative to the pinned clock, so the file
passes at any hour.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from typer.testing import CliRunner

from api.cli.main import app
from core.clock import CHINA, FixedClock, china_today
from core.db import transaction
from licences.bitstring import MAX_ENTRIES, MIN_ENTRIES, EntryStatus
from licences.payload import Claims, decode
from licences.stamped import StampRequest
from tests.domain import Domain, build_domain, demo_domain, make_settings
from tests.status_lists import HEADER, bits, credential, signed_by, signed_by_domain
from trust.jose import b64url, b64url_decode, jwk_of, sign_compact
from trust.trustlist import MEDIA_TYPE, sign_document
from verify.offline import load_qr_keys, verify_offline
from verify.offline_status import load_status_list
from verify.report import Report, SubIndication

BASE = "https://licence.example.gov.cn"
OTHER = "https://other.example.gov.cn"


@dataclass(frozen=True)
class Outcome:
    report: Report  # the function's
    line: str  # the CLI's first line
    code: int  # the CLI's exit code
    answer: dict[str, Any]  # the CLI's --json


@dataclass
class Counter:
    """A counter's laptop: the domain's downloads, the pin, a printed licence, the pinned clock."""

    domain: Domain
    clock: FixedClock
    trust_list: Path
    pin: str
    text: str  # the printed licence's QR text
    claims: Claims
    tmp: Path

    @property
    def index(self) -> int:
        assert self.claims.status_index is not None
        return self.claims.status_index

    def window(self) -> tuple[datetime, datetime]:
        """A current list: valid from an hour ago until two days ahead."""
        return self.clock.now() - timedelta(hours=1), self.clock.now() + timedelta(days=2)

    def genuine(self, entries: Any = (), header: Any = None, **changes: Any) -> str:
        """A list as the domain publishes it, signed by its credential key."""
        body = credential(BASE, bits(entries), *self.window(), **changes)
        return signed_by_domain(self.domain.services, body, header)

    def code(self, **changes: Any) -> str:
        """The printed licence's claims, changed, signed by the domain's real QR key."""
        claims = replace(self.claims, **changes)
        return self.domain.services.qr_keys.sign(claims, purpose="test", listener=None)

    def resigned_trust_list(self, change: Any) -> Path:
        """The trust list with ``change`` applied, signed again by the domain's real signer."""
        body = json.loads(self.trust_list.read_text())
        body.pop("signature")
        change(body)
        with transaction(self.domain.services.engine) as session:
            document = sign_document(
                self.domain.services.trust,
                session,
                body,
                typ=MEDIA_TYPE,
                purpose="test",
                listener=None,
            )
        path = self.tmp / "changed-trust-list.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    def check(
        self,
        status: str | bytes | None,
        text: str | None = None,
        trust_list: Path | None = None,
        pin: str | None = "pinned",
    ) -> Outcome:
        """The function's report and the CLI's answer for the same inputs; they must agree."""
        text = self.text if text is None else text
        trust_list = self.trust_list if trust_list is None else trust_list
        pin = self.pin if pin == "pinned" else pin
        keys = load_qr_keys(trust_list, pin)
        loaded = None if status is None else load_status_list(status, keys.status)
        report = verify_offline(text, keys, self.clock.now(), status=loaded)
        args = ["verify", "--qr", text, "--offline", "--trust-list", str(trust_list)]
        args += ["--data-dir", str(self.tmp / "laptop")]
        args += [] if pin is None else ["--fingerprint", pin]
        if status is not None:
            path = self.tmp / "status-list.jwt"
            path.write_bytes(status if isinstance(status, bytes) else status.encode())
            args += ["--status-list", str(path)]
        plain = CliRunner().invoke(app, args)
        result = CliRunner().invoke(app, [*args, "--json"])
        answer = json.loads(result.stdout)
        sub = f" / {report.sub_indication.value}" if report.sub_indication else ""
        line = plain.stdout.splitlines()[0]
        assert line == f"{report.indication.value}{sub}: {report.message}"
        assert plain.exit_code == result.exit_code
        assert answer["indication"] == report.indication.value
        assert answer["sub_indication"] == (report.sub_indication and report.sub_indication.value)
        assert not (self.tmp / "laptop").exists(), "offline verification writes nothing"
        return Outcome(report, line, result.exit_code, answer)


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "status", clock=clock)


@pytest.fixture(scope="module")
def downloaded(domain: Domain, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The signed trust list, downloaded while online, and its signer's fingerprint (obtained
    out of band)."""
    path = tmp_path_factory.mktemp("downloads") / "trust-list.json"
    path.write_text(domain.client.get("/pki/trust-list").text, encoding="utf-8")
    pem = json.loads(path.read_text())["signer"]["certificate"]
    pin = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()
    return path, pin


@pytest.fixture(scope="module")
def printed(domain: Domain) -> tuple[str, Claims]:
    text = domain.issue()["links"]["verify"]
    claims = decode(text.rsplit("/", 1)[1]).claims
    assert claims.status_index is not None and 0 <= claims.status_index < MIN_ENTRIES
    return text, claims


@pytest.fixture
def counter(
    domain: Domain,
    clock: FixedClock,
    downloaded: tuple[Path, str],
    printed: tuple[str, Claims],
    tmp_path: Path,
) -> Counter:
    return Counter(domain, clock, *downloaded, *printed, tmp_path)


def refused(outcome: Outcome, reason: str, sub: str = "NO_CHAIN_FOUND") -> None:
    """INDETERMINATE (exit 2) with ``sub``, the reason in the message, the status check failed."""
    assert outcome.code == 2, outcome.line
    assert outcome.line.startswith(f"INDETERMINATE / {sub}: "), outcome.line
    assert reason in outcome.report.message, outcome.report.message
    last = outcome.report.checks[-1]
    assert last.name in ("status", "status_list") and last.result.value == "failed"
    assert "status_as_of" not in outcome.report.extra


# -- a list that is not this domain's -------------------------------------------------------------


def test_a_list_signed_by_a_key_listed_nowhere_is_not_believed(counter: Counter) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    outcome = counter.check(signed_by(attacker, credential(BASE, bits(), *counter.window())))
    refused(outcome, "not in the pinned trust list")
    assert jwk_of(attacker.public_key())["kid"] in outcome.report.message


def test_another_domains_list_is_not_believed(
    counter: Counter, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A genuine list of another trust domain (its own credential key and trust list), in which
    our licence's entry is 0: it says nothing about our licence."""
    settings = make_settings(tmp_path_factory.mktemp("other") / "data", domain_name="另一信任域")
    settings.public_base_url = OTHER
    other = build_domain(settings, clock=counter.clock)
    theirs = other.client.get("/pki/trust-list").json()
    assert theirs["credential_keys"] and theirs["status_list"]["url"] == f"{OTHER}/pki/status-list"
    token = signed_by_domain(other.services, credential(OTHER, bits(), *counter.window()))
    refused(counter.check(token), "not in the pinned trust list")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": f"{OTHER}/pki/status-list"}, "is not the trust list's"),
        ({"issuer": {"id": OTHER}}, "issuer"),
        ({"issuer": OTHER}, "issuer"),
    ],
)
def test_a_list_naming_another_list_or_issuer_is_not_believed(
    counter: Counter, changes: dict[str, Any], reason: str
) -> None:
    """Signed by our own credential key, but naming another list: not ours to use."""
    outcome = counter.check(counter.genuine(**changes))
    refused(outcome, reason)
    assert "状态列表" in outcome.report.message


def test_a_trust_list_without_credential_keys_believes_no_status_list(counter: Counter) -> None:
    bare = counter.resigned_trust_list(lambda body: body.update(credential_keys=[]))
    refused(counter.check(counter.genuine(), trust_list=bare), "publishes no status list")


def test_a_credential_key_listed_under_another_keys_id_is_dropped(counter: Counter) -> None:
    """A signed trust list whose entry names the attacker's key by the genuine key's kid (alone,
    or after the genuine entry), and a list the attacker signed under that kid."""
    attacker = ec.generate_private_key(ec.SECP256R1())
    listed = json.loads(counter.trust_list.read_text())["credential_keys"][0]
    real_kid = listed["kid"]
    jwk = {**jwk_of(attacker.public_key()), "kid": real_kid}
    lying_entry = {"kid": real_kid, "alg": "ES256", "jwk": jwk}
    token = signed_by(attacker, credential(BASE, bits(), *counter.window()))
    header = b64url(json.dumps({"alg": "ES256", "kid": real_kid, "typ": "vc+jwt"}).encode())
    forged = ".".join([header, *token.split(".")[1:]])
    for entries, reason in (
        ([lying_entry], "publishes no status list"),
        ([lying_entry, listed], "signature does not verify"),
        ([listed, lying_entry], "signature does not verify"),
    ):
        lying = counter.resigned_trust_list(lambda body: body.update(credential_keys=entries))
        refused(counter.check(forged, trust_list=lying), reason)


def test_an_unpinned_trust_list_passes_nothing_whatever_the_status_list(counter: Counter) -> None:
    outcome = counter.check(counter.genuine(), pin=None)
    assert outcome.code == 2 and outcome.line.startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "--fingerprint" in outcome.report.message
    assert outcome.report.checks[-1].name == "trust_list"


# -- an altered list, or not this format ------------------------------------------------------------


def flip(token: str, at: int) -> str:
    """The token with one bit of its payload flipped, the signature kept."""
    header, body, signature = token.split(".")
    raw = bytearray(b64url_decode(body))
    raw[at] ^= 0x01
    return f"{header}.{b64url(bytes(raw))}.{signature}"


def test_a_bit_flipped_payload_is_refused(counter: Counter) -> None:
    token = counter.genuine([(counter.index, EntryStatus.REVOKED)])
    for at in (0, len(b64url_decode(token.split(".")[1])) // 2, -3):
        refused(counter.check(flip(token, at)), "signature does not verify")


def test_a_revocation_cleared_from_a_signed_list_is_refused(counter: Counter) -> None:
    """The holder's attack: the genuine list that revokes them, its bits replaced by an all-valid
    list, the signature kept."""
    token = counter.genuine([(counter.index, EntryStatus.REVOKED)])
    header, body, signature = token.split(".")
    document = json.loads(b64url_decode(body))
    document["credentialSubject"]["encodedList"] = bits()
    cleared = f"{header}.{b64url(json.dumps(document).encode())}.{signature}"
    refused(counter.check(cleared), "altered or forged")


@pytest.mark.parametrize(
    ("header", "changes", "reason"),
    [
        ({"typ": "JWT", "cty": "vc"}, {}, "type must be vc+jwt"),
        ({"typ": "vc+jwt", "cty": "json"}, {}, "cty"),
        (None, {"type": ["VerifiableCredential"]}, "BitstringStatusListCredential"),
        (None, {"subject": {"type": "StatusList2021"}}, "credentialSubject.type"),
        (None, {"subject": {"statusPurpose": "revocation"}}, "statusPurpose"),
        (None, {"subject": {"statusSize": 1}}, "statusSize"),
        (None, {"@context": ["https://www.w3.org/2018/credentials/v1"]}, "@context"),
        (None, {"subject": {"encodedList": "H4sIAAAA"}}, "multibase"),
        (None, {"subject": {"encodedList": "u" + b64url(b"not gzip at all")}}, "GZIP"),
        (None, {"subject": {"encodedList": bits(length=1024)}}, "shorter"),
        (None, {"subject": {"encodedList": None}}, "not a string"),
        (None, {"validUntil": "tomorrow"}, "Invalid isoformat"),
        (None, {"validUntil": "2026-01-01T00:00:00"}, "no time zone"),
        (None, {"validFrom": "2099-01-01T00:00:00Z"}, "not after validFrom"),
    ],
)
def test_a_list_of_another_format_is_refused(
    counter: Counter, header: dict[str, str] | None, changes: dict[str, Any], reason: str
) -> None:
    """Signed by the genuine key, but not a status list of this format: refused, never read."""
    outcome = counter.check(counter.genuine(header=header, **changes))
    refused(outcome, reason)
    assert "not a status list of this format" in outcome.report.message


@pytest.mark.parametrize("payload", [b"[" * 100_000, b"\xff\xfe", b"null", b"[]", b"{}"])
def test_a_signed_payload_that_is_no_credential_is_refused(
    counter: Counter, payload: bytes
) -> None:
    """Signed by the genuine key (a document of another kind): refused, never a traceback."""
    token = counter.domain.services.credential_keys.sign(
        HEADER, payload, purpose="test", listener=None
    )
    refused(counter.check(token), "not a status list of this format")


def test_a_kid_as_long_as_the_file_is_named_in_one_short_line(counter: Counter) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    token = sign_compact(
        HEADER,
        b"{}",
        "k" * 100_000,
        lambda digest: attacker.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )
    outcome = counter.check(token)
    refused(outcome, "not in the pinned trust list")
    assert len(outcome.line) < 400


def test_a_gzip_bomb_is_refused_before_it_is_inflated(counter: Counter) -> None:
    """16 MiB and one byte of zeros GZIP to ~16 KB: one byte past the bound is refused."""
    packed = gzip.compress(bytes(MAX_ENTRIES * 2 // 8 + 1), compresslevel=9, mtime=0)
    assert len(packed) < 64 * 1024
    bomb = "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()
    outcome = counter.check(counter.genuine(subject={"encodedList": bomb}))
    refused(outcome, f"larger than {MAX_ENTRIES} entries")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a compact JWS"),
        (b"\xff\xfe binary", "not ASCII"),
        (b"a.b", "not a compact JWS"),
        (b"x" * (4 * 1024 * 1024 + 2), "too large"),
        (b"e30.e30.AAAA", "algorithm must be ES256"),
    ],
)
def test_a_file_that_is_no_jws_is_refused(counter: Counter, content: bytes, reason: str) -> None:
    refused(counter.check(content), reason)


def test_an_unreadable_status_list_file_is_exit_3(counter: Counter) -> None:
    missing = str(counter.tmp / "nowhere.jwt")
    args = ["verify", "--qr", counter.text, "--offline", "--trust-list", str(counter.trust_list)]
    result = CliRunner().invoke(
        app, [*args, "--fingerprint", counter.pin, "--status-list", missing]
    )
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cannot read the status list" in result.stderr
    alone = CliRunner().invoke(app, ["verify", "--qr", counter.text, "--status-list", missing])
    assert alone.exit_code == 3 and "--trust-list" in alone.stderr


# -- a genuine list that cannot tell ----------------------------------------------------------------


def test_a_stale_list_is_try_later(counter: Counter) -> None:
    past = counter.clock.now() - timedelta(days=3), counter.clock.now() - timedelta(minutes=1)
    token = signed_by_domain(counter.domain.services, credential(BASE, bits(), *past))
    outcome = counter.check(token)
    refused(outcome, "out of date", sub="TRY_LATER")
    assert "状态列表已过期" in outcome.report.message


def test_a_list_valid_only_from_the_future_is_try_later(counter: Counter) -> None:
    ahead = counter.clock.now() + timedelta(hours=6), counter.clock.now() + timedelta(days=2)
    token = signed_by_domain(counter.domain.services, credential(BASE, bits(), *ahead))
    refused(counter.check(token), "check this device's clock", sub="TRY_LATER")


def test_a_list_older_than_the_licence_is_try_later(counter: Counter) -> None:
    """The licence's index lies past the list's entries: the list was made before the list
    doubled for it, so it says nothing about it — not that it is valid."""
    beyond = counter.code(status_index=MIN_ENTRIES + 5)
    outcome = counter.check(counter.genuine(), text=beyond)
    refused(outcome, f"entry {MIN_ENTRIES + 5}, the list has {MIN_ENTRIES}", sub="TRY_LATER")
    doubled = credential(BASE, bits(length=2 * MIN_ENTRIES), *counter.window())
    outcome = counter.check(signed_by_domain(counter.domain.services, doubled), text=beyond)
    assert outcome.code == 0 and outcome.line.startswith("PASSED")


def test_a_code_printed_before_status_lists_stays_try_later(counter: Counter) -> None:
    outcome = counter.check(counter.genuine(), text=counter.code(status_index=None))
    refused(outcome, "printed before status lists", sub="TRY_LATER")


def test_without_a_status_list_a_printed_licence_is_try_later(counter: Counter) -> None:
    refused(counter.check(None), "--status-list", sub="TRY_LATER")


# -- the answers of a current, genuine list ---------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "sub"),
    [
        (EntryStatus.REVOKED, "REVOKED"),
        (EntryStatus.SUSPENDED, "SUSPENDED"),
        (EntryStatus.SUPERSEDED, "SUPERSEDED"),
    ],
)
def test_a_set_entry_fails(counter: Counter, entry: EntryStatus, sub: str) -> None:
    outcome = counter.check(counter.genuine([(counter.index, entry)]))
    assert outcome.code == 1 and outcome.line.startswith(f"FAILED / {sub}: ")
    last = outcome.report.checks[-1]
    assert last.name == "status" and last.result.value == "failed"
    assert f"entry {counter.index}: {entry.message}" in last.detail
    assert outcome.answer["extra"]["status_as_of"] == outcome.report.extra["status_as_of"]


def test_a_valid_entry_passes_as_of_the_list(counter: Counter) -> None:
    """Its neighbours are set (each status, both sides): only its own two bits count."""
    near = range(max(0, counter.index - 5), min(MIN_ENTRIES, counter.index + 6))
    outcome = counter.check(
        counter.genuine([(i, EntryStatus(1 + i % 3)) for i in near if i != counter.index])
    )
    assert outcome.code == 0, outcome.line
    as_of = (counter.clock.now() - timedelta(hours=1)).astimezone(CHINA)
    shown = as_of.strftime("%Y-%m-%d %H:%M")
    assert outcome.line == (
        f"PASSED: 证照真实有效（状态截至北京时间 {shown}）/ the licence is genuine and valid as "
        f"of {shown} Beijing time"
    )
    names = [c.name for c in outcome.report.checks]
    assert names == [
        "trust_list",
        "format",
        "key",
        "signature",
        "validity",
        "status_list",
        "status",
    ]
    assert "as of" in outcome.report.checks[-1].detail and shown in outcome.report.checks[-1].detail
    extra = outcome.answer["extra"]
    assert extra["status_as_of"] == as_of.isoformat(timespec="seconds")
    assert extra["status_as_of"].endswith("+08:00")
    assert extra["status_list"]["url"] == f"{BASE}/pki/status-list"
    assert extra["status_list"]["entries"] == MIN_ENTRIES
    assert extra["claims"]["status_index"] == counter.index
    assert extra["offline"] is True


def test_expiry_is_failed_with_or_without_a_list(counter: Counter) -> None:
    today = china_today(counter.clock.now())
    expired = counter.code(valid_until=today - timedelta(days=1))
    for status in (None, counter.genuine()):
        outcome = counter.check(status, text=expired)
        assert outcome.code == 1 and outcome.line.startswith("FAILED / EXPIRED"), outcome.line
    last_day = counter.check(counter.genuine(), text=counter.code(valid_until=today))
    assert last_day.code == 0 and last_day.line.startswith("PASSED"), last_day.line


def test_midnight_in_beijing_ends_the_last_day(counter: Counter) -> None:
    """Whatever the hour the suite runs at: the next midnight in Beijing (within a day, so the
    trust list is still current) turns PASSED into FAILED / EXPIRED."""
    today = china_today(counter.clock.now())
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=CHINA)
    last_day = counter.code(valid_until=today)
    keys = load_qr_keys(counter.trust_list, counter.pin)
    body = credential(BASE, bits(), counter.clock.now(), midnight + timedelta(hours=1))
    status = load_status_list(signed_by_domain(counter.domain.services, body), keys.status)
    before = verify_offline(last_day, keys, midnight - timedelta(minutes=1), status=status)
    after = verify_offline(last_day, keys, midnight + timedelta(minutes=1), status=status)
    assert before.indication.value == "PASSED", before.message
    assert (after.indication.value, after.sub_indication) == ("FAILED", SubIndication.EXPIRED)


def test_a_presentation_code_keeps_its_own_answer(counter: Counter) -> None:
    """Minted only for a licence valid at that moment: PASSED with or without a list, even a
    refused one."""
    with transaction(counter.domain.services.engine) as session:
        shown = counter.domain.services.presentations.mint(
            session, counter.claims.identifier, actor="test"
        )
    attacker = ec.generate_private_key(ec.SECP256R1())
    for status in (None, signed_by(attacker, credential(BASE, bits(), *counter.window()))):
        outcome = counter.check(status, text=shown.url)
        assert outcome.code == 0 and outcome.line.startswith("PASSED"), outcome.line
        assert "status_as_of" not in outcome.report.extra


def test_a_stamped_copys_code_answers_by_its_licences_entry(counter: Counter) -> None:
    """A purpose-stamped copy carries its licence's index: the copy fails offline once the
    licence is revoked, and is not taken for the licence itself."""
    holder = counter.domain.department()["sample_request"]["holder"]
    assert counter.domain.services.stamped is not None
    copy = counter.domain.services.stamped.create(
        StampRequest(
            identifier=counter.claims.identifier,
            id_type=holder["id_type"],
            id_number=holder["id"],
            actor="holder:offline-copy",
            purpose="公积金提取",
        )
    )
    clear = counter.check(counter.genuine(), text=copy.verify_code)
    assert clear.code == 0 and clear.line.startswith("PASSED"), clear.line
    assert clear.answer["extra"]["claims"]["type"] == "copy"
    assert clear.answer["extra"]["claims"]["status_index"] == counter.index
    revoked = counter.check(
        counter.genuine([(counter.index, EntryStatus.REVOKED)]), text=copy.verify_code
    )
    assert revoked.code == 1 and revoked.line.startswith("FAILED / REVOKED: "), revoked.line
