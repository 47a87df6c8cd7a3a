"""Signed events reach a real receiver on loopback: at least once, in order per licence, bounded.

Attacks first: a receiver that refuses, answers 410, answers with 100 MB, or never answers;
a host name that resolved to a public address when subscribed and to loopback at delivery (DNS
rebinding); a forged or re-addressed token; a department that subscribes to ``issued`` or
``pulled`` to hear of licences it has no relation to. Then: every event delivered, none lost,
order per licence, duplicates carrying the same event id, the JWS verified with the served trust
list by our verifier and by jwcrypto, dead letters and replay of the same bytes, the audit.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import col, select

from core.audit import AuditEntry
from core.clock import SystemClock
from core.db import reading, transaction
from licences.pulls import LicencePull
from licences.repository import licence_by_identifier
from seals.clients import create_client
from seals.models import Department
from supervision.alert_records import Severity, raise_alert
from supervision.delivery import DeliveryPolicy, DeliveryWorker
from supervision.delivery_records import Delivery
from supervision.endpoints import EndpointRule
from supervision.event_token import TYP, read_event
from supervision.outbox import OutboxEvent, emit
from tests.domain import Domain, demo_domain
from tests.event_receiver import Post, Receiver
from tests.tools import require_module
from trust.jose import JwsError, b64url, public_key_of, sign_compact

ISSUER = "https://licence.example.gov.cn"
FAST = DeliveryPolicy(timeout_seconds=2.0, backoff_base_seconds=0.01, backoff_cap_seconds=0.05,
                      lease_seconds=10.0)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "delivery", events_allow_http_loopback=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def worker(domain: Domain, policy: DeliveryPolicy = FAST,
           rule: EndpointRule | None = None) -> DeliveryWorker:
    s = domain.services
    return DeliveryWorker(engine=s.engine, audit=s.audit, clock=SystemClock(),
                          keys=s.credential_keys, issuer=ISSUER,
                          rule=rule or EndpointRule(allow_http_loopback=True), policy=policy)


def until(done: Callable[[], bool], w: DeliveryWorker, seconds: float = 30.0) -> None:
    """Steps ``w`` until ``done()`` holds (retries come due in milliseconds under FAST)."""
    end = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < end, "the deliveries did not complete"
        if not w.step().busy:
            time.sleep(0.02)


def subscribe(domain: Domain, url: str, topics: list[str], index: int = 0,
              headers: dict[str, str] | None = None) -> str:
    response = domain.client.post("/api/v1/subscriptions", json={"url": url, "topics": topics},
                                  headers=headers or domain.auth(index))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def act(domain: Domain, identifier: str, action: str, **body: Any) -> None:
    response = domain.client.post(f"/api/v1/licences/{identifier}/{action}", json=body,
                                  headers=domain.auth())
    assert response.status_code == 200, response.text


def events_of(domain: Domain, *identifiers: str) -> list[OutboxEvent]:
    with reading(domain.services.engine) as session:
        query = select(OutboxEvent).where(col(OutboxEvent.licence).in_(identifiers))
        return list(session.exec(query.order_by(col(OutboxEvent.id))).all())


def deliveries(domain: Domain, subscription_id: str) -> list[Delivery]:
    with reading(domain.services.engine) as session:
        query = select(Delivery).where(Delivery.subscription_id == subscription_id)
        return list(session.exec(query.order_by(col(Delivery.outbox_id))).all())


def end(domain: Domain, subscription_id: str, index: int = 0) -> None:
    domain.client.delete(f"/api/v1/subscriptions/{subscription_id}", headers=domain.auth(index))


def trust_list_key(domain: Domain) -> Callable[[str], ec.EllipticCurvePublicKey | None]:
    served = domain.client.get("/pki/trust-list").json()["credential_keys"]
    keys = {entry["kid"]: public_key_of(entry["jwk"]) for entry in served}
    return keys.get


def _payload(token: str) -> bytes:
    return _b64(token.split(".")[1])


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_every_event_arrives_in_order_per_licence_despite_refusals(
    domain: Domain, receiver: Receiver
) -> None:
    receiver.behaviour.refuse_first = 4
    sid = subscribe(domain, receiver.url, ["issued"])
    first, second = domain.issue()["identifier"], domain.issue()["identifier"]
    act(domain, first, "suspend", reason="核查")
    act(domain, second, "suspend", reason="核查")
    act(domain, first, "resume")
    act(domain, first, "revoke", reason="违法经营")
    expected = events_of(domain, first, second)
    assert len(expected) == 6
    assert deliveries(domain, sid) == []  # issuing did no delivery work: the worker fans out
    w = worker(domain)
    try:
        until(lambda: {p.event_id for p in receiver.accepted()} >= {e.event_id for e in expected}, w)
    finally:
        w.close()
    end(domain, sid)
    posts = receiver.behaviour.posts
    assert sum(1 for p in posts if p.answered == 503) == 4  # refused, then retried
    rank = {e.event_id: n for n, e in enumerate(expected)}
    for identifier in (first, second):
        # every post of a licence's events, refused ones included, in the licence's order
        seen = [rank[p.event_id] for p in posts if _claims(p)["data"]["licence"]["identifier"] == identifier]
        assert seen == sorted(seen), (identifier, seen)
    for post in posts:  # a duplicate carries the same id, in its header and its signed body
        assert post.event_id == post.idempotency_key == _claims(post)["event_id"]
        assert post.content_type == "application/jose" and post.subscription == sid
    assert all(d.state == "delivered" for d in deliveries(domain, sid))
    assert {d.event_id for d in deliveries(domain, sid)} == {e.event_id for e in expected}


def _claims(post: Post) -> dict[str, Any]:
    return json.loads(_payload(post.body))  # type: ignore[no-any-return]


def test_the_event_verifies_with_the_served_trust_list_in_ours_and_in_jwcrypto(
    domain: Domain, receiver: Receiver
) -> None:
    jwk_module, jws_module = require_module("jwcrypto.jwk"), require_module("jwcrypto.jws")
    sid = subscribe(domain, receiver.url, ["issued"])
    identifier = domain.issue()["identifier"]
    w = worker(domain)
    try:
        until(lambda: len(receiver.accepted()) >= 1, w)
    finally:
        w.close()
    end(domain, sid)
    token = receiver.accepted()[0].body
    keys = trust_list_key(domain)
    body = read_event(token, keys, issuer=ISSUER, subscription_id=sid)
    [event] = events_of(domain, identifier)
    assert body["event_id"] == event.event_id and body["kind"] == "licence.issued"
    assert body["aud"] == sid and body["iss"] == ISSUER
    assert body["data"]["licence"]["identifier"] == identifier
    assert body["occurred_at"].endswith("Z")
    header = json.loads(_b64(token.split(".")[0]))
    assert header["typ"] == TYP and header["alg"] == "ES256"
    served = {e["kid"]: e["jwk"] for e in domain.client.get("/pki/trust-list").json()["credential_keys"]}
    checked = jws_module.JWS()
    checked.deserialize(token, key=jwk_module.JWK(**served[header["kid"]]), alg="ES256")
    assert json.loads(checked.payload)["event_id"] == event.event_id

    # forged: a changed payload, a foreign key under our kid, another subscription's token
    head, _, signature = token.split(".")
    changed = dict(body, data={"licence": {"identifier": "1.2.156.3005.2.X"}})
    forged = f"{head}.{b64url(json.dumps(changed).encode())}.{signature}"
    stranger = ec.generate_private_key(ec.SECP256R1())
    foreign = sign_compact({"typ": TYP}, json.dumps(body).encode(), header["kid"],
                           lambda digest: stranger.sign(digest, ec.ECDSA(_prehashed())))
    for bad in (forged, foreign):
        with pytest.raises(JwsError, match="does not verify"):
            read_event(bad, keys, issuer=ISSUER, subscription_id=sid)
        with pytest.raises(jws_module.InvalidJWSSignature):
            jws_module.JWS().deserialize(bad, key=jwk_module.JWK(**served[header["kid"]]), alg="ES256")
    with pytest.raises(ValueError, match="another issuer or subscription"):
        read_event(token, keys, issuer=ISSUER, subscription_id="sub_someone_else")
    with pytest.raises(JwsError, match="type"):  # a status list is never taken for an event
        status_list = domain.client.get("/pki/status-list").text
        read_event(status_list, keys, issuer=ISSUER, subscription_id=sid)


def _prehashed() -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    return Prehashed(hashes.SHA256())


def test_each_delivery_is_signed_once_and_the_key_use_audited(
    domain: Domain, receiver: Receiver
) -> None:
    receiver.behaviour.refuse_first = 3
    sid = subscribe(domain, receiver.url, ["issued"])
    identifier = domain.issue()["identifier"]
    act(domain, identifier, "suspend", reason="核查")
    w = worker(domain)
    try:
        until(lambda: len(receiver.accepted()) >= 2, w)
    finally:
        w.close()
    end(domain, sid)
    by_id: dict[str, set[str]] = {}
    for post in receiver.behaviour.posts:
        by_id.setdefault(post.event_id, set()).add(post.body)
    assert all(len(bodies) == 1 for bodies in by_id.values())  # retries resend the same bytes
    with reading(domain.services.engine) as session:
        uses = session.exec(select(AuditEntry).where(AuditEntry.action == "key.sign")).all()
    delivery_uses = [u for u in uses if (u.detail or {}).get("purpose") == "event-delivery"]
    assert len(delivery_uses) >= 2
    assert all(u.actor == "system:events" for u in delivery_uses)


def test_a_department_hears_only_of_licences_it_issued_pulled_or_typed(
    domain: Domain, receiver: Receiver
) -> None:
    other_issued = subscribe(domain, receiver.url + "/issued", ["issued"], index=1)
    pulled = subscribe(domain, receiver.url + "/pulled", ["pulled"], index=1)
    food = domain.department(0)["sample_request"]["licence_type"]
    # a type's events are its authority's and issuers', not a window on another's issuance
    watching = domain.client.post(
        "/api/v1/subscriptions",
        json={"url": receiver.url + "/typed", "topics": [f"type:{food}"]},
        headers=domain.auth(1),
    )
    assert watching.status_code == 403, watching.text
    assert watching.json()["topic"] == f"type:{food}"
    typed = subscribe(domain, receiver.url + "/typed", [f"type:{food}"], index=0)
    issued_by_0 = domain.issue(0)["identifier"]
    w = worker(domain)
    try:
        w.drain()
        assert deliveries(domain, other_issued) == [] and deliveries(domain, pulled) == []
        # department 1 pulls the licence (under a holder's grant): its later events reach it
        with transaction(domain.services.engine) as session:
            licence = licence_by_identifier(session, issued_by_0)
            assert licence is not None
            session.add(LicencePull(at=SystemClock().now(), identifier=issued_by_0,
                                    holder_id=licence.holder_id, department_code=domain.department(1)["code"],
                                    client_id="c", service_item="x", business_number="B-1", what="record"))
        act(domain, issued_by_0, "suspend", reason="核查")
        until(lambda: len([d for d in deliveries(domain, pulled) if d.state == "delivered"]) == 1, w)
        w.drain()
    finally:
        w.close()
    assert deliveries(domain, other_issued) == []  # never another department's licences
    assert [d.kind for d in deliveries(domain, pulled)] == ["licence.suspended"]
    assert [d.kind for d in deliveries(domain, typed)] == ["licence.issued", "licence.suspended"]
    for sid in (other_issued, pulled):
        end(domain, sid, 1)
    end(domain, typed, 0)


def test_alerts_reach_the_supervision_offices_over_the_department_only(
    domain: Domain, receiver: Receiver
) -> None:
    services = domain.services
    with transaction(services.engine) as session:
        session.add(Department(code="91440300MA5F000001", name="深圳某局", division_code="440305",
                               level="county"))
        _, key = create_client(session, services.audit, services.clock,
                               department_code=domain.department(1)["code"], name="office",
                               actor="test", scopes=("supervise",))
    office = {"Authorization": f"Bearer {key}"}
    sid = subscribe(domain, receiver.url, ["alerts"], headers=office)
    with transaction(services.engine) as session:
        for code in (domain.department(0)["code"], "91440300MA5F000001"):
            raise_alert(session, services.audit, rule="test.rule", severity=Severity.WARNING,
                        subject=f"subject-{code}", summary="测试 / test", at=services.clock.now(),
                        department_code=code)
    w = worker(domain)
    try:
        until(lambda: len(receiver.accepted()) >= 1, w)
        w.drain()
    finally:
        w.close()
    [only] = deliveries(domain, sid)
    assert only.kind == "alert.raised"
    assert _claims(receiver.accepted()[0])["data"]["alert"]["department_code"] == domain.department(0)["code"]
    domain.client.delete(f"/api/v1/subscriptions/{sid}", headers=office)


def test_a_dead_letter_is_listed_and_replayed_with_the_same_bytes(
    domain: Domain, receiver: Receiver
) -> None:
    receiver.behaviour.refuse_first = 3
    sid = subscribe(domain, receiver.url, ["issued"])
    domain.issue()
    w = worker(domain, DeliveryPolicy(timeout_seconds=2.0, max_attempts=3, backoff_base_seconds=0.01,
                                      backoff_cap_seconds=0.02, lease_seconds=10.0))
    try:
        until(lambda: any(d.state == "dead" for d in deliveries(domain, sid)), w)
        dead = domain.client.get(f"/api/v1/subscriptions/{sid}/deliveries?state=dead",
                                 headers=domain.auth()).json()["items"]
        assert [(d["attempts"], d["last_status"], d["last_error"]) for d in dead] == [(3, 503, "HTTP 503")]
        event_id = dead[0]["event_id"]
        assert receiver.accepted() == []
        replayed = domain.client.post(f"/api/v1/subscriptions/{sid}/deliveries/{event_id}/replay",
                                      headers=domain.auth())
        assert replayed.status_code == 202 and replayed.json()["state"] == "pending"
        again = domain.client.post(f"/api/v1/subscriptions/{sid}/deliveries/{event_id}/replay",
                                   headers=domain.auth())
        assert again.status_code == 409 and again.json()["state"] == "pending"
        until(lambda: len(receiver.accepted()) == 1, w)
    finally:
        w.close()
    posts = receiver.behaviour.posts
    assert len({p.body for p in posts}) == 1 and {p.event_id for p in posts} == {event_id}
    with reading(domain.services.engine) as session:
        actions = [e.action for e in session.exec(
            select(AuditEntry).where(AuditEntry.object_id == sid).order_by(col(AuditEntry.seq))).all()]
    assert actions == ["subscription.create", "event.dead_letter", "subscription.replay"]
    end(domain, sid)


def test_410_gone_disables_the_subscription(domain: Domain, receiver: Receiver) -> None:
    receiver.behaviour.mode = "gone"
    sid = subscribe(domain, receiver.url, ["issued"])
    domain.issue()
    w = worker(domain)
    try:
        until(lambda: len(receiver.behaviour.posts) == 1, w)
        w.drain()
        listed = {s["id"]: s for s in domain.client.get("/api/v1/subscriptions",
                                                         headers=domain.auth()).json()["items"]}
        assert listed[sid]["status"] == "disabled" and "410" in listed[sid]["disabled_reason"]
        domain.issue()
        w.drain()
    finally:
        w.close()
    assert len(receiver.behaviour.posts) == 1  # nothing more is sent to it
    assert [d.state for d in deliveries(domain, sid)] == ["dead"]
    end(domain, sid)


@pytest.mark.parametrize(("mode", "error"), [("huge", "answer larger than 65536 bytes"),
                                             ("silent", "timeout"),
                                             ("drip", "timeout")])  # each read in time, never done
def test_a_huge_silent_or_dripping_answer_is_bounded_failed_and_retried(
    domain: Domain, receiver: Receiver, mode: str, error: str
) -> None:
    receiver.behaviour.mode = mode
    sid = subscribe(domain, receiver.url, ["issued"])
    domain.issue()
    w = worker(domain, DeliveryPolicy(timeout_seconds=0.5, backoff_base_seconds=60.0,
                                      lease_seconds=10.0))
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(w.step()))
    runner.start()
    runner.join(15)  # the post is bounded well within this (0.5 s a read, 1 s in all)
    bounded = not runner.is_alive()
    receiver.behaviour.release.set()
    runner.join()
    w.close()
    end(domain, sid)
    assert bounded, "the post outlived its bounds"
    assert done[0].delivered == 0
    [row] = deliveries(domain, sid)
    assert (row.state, row.attempts, row.last_error) == ("cancelled", 1, error)


def test_a_name_rebound_to_loopback_after_subscribing_is_never_connected_to(
    domain: Domain, receiver: Receiver
) -> None:
    port = receiver.server.server_address[1]
    answers = {"hooks.example.gov.cn": ["93.184.216.34"]}
    rule = EndpointRule(resolve=lambda host, _port: answers[host])
    services = domain.services
    from supervision.subscriptions import SubscriptionDesk

    desk = SubscriptionDesk(engine=services.engine, audit=services.audit, clock=services.clock, rule=rule)
    with transaction(services.engine) as session:
        client, _ = create_client(session, services.audit, services.clock,
                                  department_code=domain.department(0)["code"], name="hooks",
                                  actor="test")
    view = desk.create(department_code=domain.department(0)["code"], client_id=client.id, actor="test",
                       scopes=frozenset({"events:subscribe"}), topics=["issued"],
                       url=f"https://hooks.example.gov.cn:{port}/events")
    domain.issue()
    answers["hooks.example.gov.cn"] = ["127.0.0.1"]  # the name now answers loopback
    w = worker(domain, DeliveryPolicy(timeout_seconds=1.0, backoff_base_seconds=60.0), rule=rule)
    try:
        w.step()
    finally:
        w.close()
    end(domain, view.id)
    [row] = deliveries(domain, view.id)
    assert row.attempts == 1 and row.last_status is None
    assert "address refused" in (row.last_error or "") and "127.0.0.1" in (row.last_error or "")
    assert receiver.behaviour.posts == []  # nothing reached the loopback receiver


def test_a_reminder_naming_the_holder_goes_to_the_message_service_only(
    domain: Domain, receiver: Receiver
) -> None:
    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(session, services.audit, services.clock,
                               department_code=domain.department(1)["code"], name="messages",
                               actor="test", scopes=("events:reminders",))
    food = domain.department(0)["sample_request"]["licence_type"]
    messages = subscribe(domain, receiver.url + "/messages", ["reminders"],
                         headers={"Authorization": f"Bearer {key}"})
    issuer = subscribe(domain, receiver.url + "/issuer", ["issued", "pulled", f"type:{food}"])
    identifier = domain.issue()["identifier"]
    with transaction(services.engine) as session:
        for kind in ("licence.expiring", "licence.overdue"):
            emit(session, kind=kind, at=services.clock.now(), dedupe=f"test:{kind}:{identifier}",
                 data={"licence": {"identifier": identifier},
                       "holder": {"id_type": "111", "id_number": "350103199001010011"}})
    w = worker(domain)
    try:
        until(lambda: len(receiver.accepted()) >= 3, w)
        w.drain()
    finally:
        w.close()
    assert [d.kind for d in deliveries(domain, messages)] == ["licence.expiring", "licence.overdue"]
    assert [d.kind for d in deliveries(domain, issuer)] == ["licence.issued"]  # never the notices
    end(domain, issuer)
    domain.client.delete(f"/api/v1/subscriptions/{messages}", headers={"Authorization": f"Bearer {key}"})


def test_fan_out_waits_at_a_gap_in_the_outbox_ids_before_stepping_over_it(
    domain: Domain, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL an id is taken at insert and may commit after a later one: fan-out stops
    at the gap (the slow transaction's event would otherwise be skipped for good) until it has
    waited GAP_WAIT, when a rolled-back transaction is assumed."""
    from supervision import delivery_records
    from supervision.delivery_records import Gaps, fan_out

    sid = subscribe(domain, receiver.url, ["issued"])
    code = domain.department(0)["code"]
    now = SystemClock().now()
    with transaction(domain.services.engine) as session:
        before = emit(session, kind="licence.suspended", at=now, data={}, licence="L-gap-1",
                      department_code=code)
        assert before is not None and before.id is not None
        after = OutboxEvent(id=before.id + 2, event_id="evt_gap_after_000000000000", kind="licence.resumed",
                            occurred_at=now, licence="L-gap-2", department_code=code, data={})
        session.add(after)
    gaps = Gaps({})
    with transaction(domain.services.engine) as session:
        fan_out(session, now, gaps)
    assert [d.event_id for d in deliveries(domain, sid)] == [before.event_id]  # waits at the gap
    monkeypatch.setattr(delivery_records, "GAP_WAIT", 0.0)
    with transaction(domain.services.engine) as session:
        fan_out(session, now, gaps)
    assert [d.event_id for d in deliveries(domain, sid)] == [before.event_id, after.event_id]
    end(domain, sid)


def test_the_worked_example_in_the_docs_verifies_a_delivered_event(
    domain: Domain, receiver: Receiver
) -> None:
    """docs/events.md's receiver code, run as written against a real delivery."""
    import io
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    trust_list = domain.client.get("/pki/trust-list").text
    sid = subscribe(domain, receiver.url, ["issued"])
    domain.issue()
    w = worker(domain)
    try:
        until(lambda: len(receiver.accepted()) >= 1, w)
    finally:
        w.close()
    end(domain, sid)
    namespace: dict[str, Any] = {"open": lambda name: io.StringIO(trust_list)}
    exec(example, namespace)
    seen: set[str] = set()
    body = receiver.accepted()[0].body.encode()
    event = namespace["receive"](body, sid, seen)
    assert event["kind"] == "licence.issued" and seen == {event["event_id"]}
    with pytest.raises(ValueError, match="not meant for this subscription"):
        namespace["receive"](body, "sub_another", set())


def test_a_worker_whose_lease_ran_out_does_not_overwrite_the_new_owners_outcome(
    domain: Domain, receiver: Receiver
) -> None:
    """Worker A's post hangs past its lease; worker B claims the delivery and sends it (the same
    event id and bytes); A's late answer is not recorded over B's."""
    hold = threading.Event()
    receiver.behaviour.hold = hold
    sid = subscribe(domain, receiver.url, ["issued"])
    domain.issue()
    short = DeliveryPolicy(timeout_seconds=10.0, lease_seconds=0.3, backoff_base_seconds=0.01)
    a, b = worker(domain, short), worker(domain, short)
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(a.step()))
    try:
        runner.start()
        assert receiver.behaviour.seen.wait(10)
        time.sleep(0.4)  # past A's lease (setting up the race, not a timing assertion)
        second = threading.Thread(target=b.step)
        second.start()
        end_at = time.monotonic() + 10
        while len(receiver.behaviour.posts) < 2:
            assert time.monotonic() < end_at
            time.sleep(0.01)
        hold.set()
        second.join(10)
        runner.join(10)
    finally:
        hold.set()
        a.close()
        b.close()
    end(domain, sid)
    [first, again] = receiver.behaviour.posts
    assert first.event_id == again.event_id and first.body == again.body
    [row] = deliveries(domain, sid)
    assert (row.state, row.attempts) == ("delivered", 1)  # B's outcome, once
    assert outcome[0].delivered == 0  # A's answer came too late to count


def test_the_backoff_doubles_to_its_cap_with_jitter_and_a_failed_delivery_waits_for_it(
    domain: Domain, receiver: Receiver
) -> None:
    import random
    from datetime import timedelta

    policy = DeliveryPolicy(backoff_base_seconds=10.0, backoff_cap_seconds=300.0)
    rng = random.Random(7)
    for attempts, full in [(1, 10), (2, 20), (3, 40), (5, 160), (6, 300), (12, 300)]:
        for _ in range(50):
            delay = policy.backoff(attempts, rng)
            assert timedelta(seconds=full / 2) <= delay < timedelta(seconds=full), (attempts, delay)
    spread = {policy.backoff(3, rng) for _ in range(20)}
    assert len(spread) > 10  # jittered: receivers are not hit in lockstep

    receiver.behaviour.refuse_first = 1
    sid = subscribe(domain, receiver.url, ["issued"])
    domain.issue()
    w = worker(domain, DeliveryPolicy(timeout_seconds=2.0, backoff_base_seconds=60.0))
    try:
        first = w.step()
        again = w.step()  # the retry is not due for 30-60 s: nothing is posted
    finally:
        w.close()
    end(domain, sid)
    assert (first.failed, again.failed, again.delivered) == (1, 0, 0)
    assert len(receiver.behaviour.posts) == 1
    [row] = deliveries(domain, sid)
    assert row.last_status == 503 and row.attempts == 1
    assert row.next_attempt_at >= row.created_at + timedelta(seconds=30)


def test_a_revoked_clients_subscription_hears_nothing_more(
    domain: Domain, receiver: Receiver
) -> None:
    """A key that leaked set up a receiver of its own: revoking the key stops its deliveries."""
    services = domain.services
    with transaction(services.engine) as session:
        client, key = create_client(session, services.audit, services.clock,
                                    department_code=domain.department(0)["code"], name="leaked",
                                    actor="test")
    sid = subscribe(domain, receiver.url, ["issued"], headers={"Authorization": f"Bearer {key}"})
    domain.issue()
    w = worker(domain)
    try:
        until(lambda: len(receiver.accepted()) >= 1, w)
        services.clients.revoke(client.id, actor="test")
        domain.issue()
        w.drain()
    finally:
        w.close()
    assert [d.kind for d in deliveries(domain, sid)] == ["licence.issued"]
    assert len(receiver.accepted()) == 1
