"""PushWorker end to end: each queue backend, the real pyfcm / aioapns senders against the
local fake FCM and APNs, time driven by a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from push.decision import plan_pushes
from push.job import PushJob
from push.metrics import PushMetrics
from push.queue import PushQueue
from push.retry import RetryPolicy
from push.sender import PushSender
from push.sender_apns import ApnsSender
from push.sender_fcm import FcmSender
from push.worker import PushWorker
from tests.push import fake_apns as apns
from tests.push import fake_fcm as fcm
from tests.push.fake_apns import APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, ApnsReply, FakeApns
from tests.push.fake_fcm import FakeFcm, FcmReply
from tests.push.support import (
    START_MS,
    ManualClock,
    MemoryAccounts,
    RaisingSender,
    device,
    make_job,
    message_draft,
)
from tests.push.test_queue_contract import expire_claims


@pytest.fixture
async def senders(
    fake_fcm: FakeFcm, fcm_credentials: Path, fake_apns: FakeApns, apns_key_file: Path
) -> AsyncIterator[dict[str, PushSender]]:
    """The real FCM and APNs senders, pointed at the fakes."""
    fcm_sender = FcmSender(fcm_credentials, endpoint=fake_fcm.base_url, timeout_s=5.0)
    apns_sender = ApnsSender(
        apns_key_file,
        APNS_KEY_ID,
        APNS_TEAM_ID,
        APNS_TOPIC,
        endpoint=fake_apns.endpoint,
        ca_file=fake_apns.ca_file,
        timeout_s=5.0,
    )
    try:
        yield {"fcm": fcm_sender, "apns": apns_sender}
    finally:
        await fcm_sender.aclose()
        await apns_sender.aclose()


FCM_REPLIES: dict[str, FcmReply] = {
    "unavailable": fcm.UNAVAILABLE,
    "throttled": fcm.QUOTA_EXCEEDED,
    "unregistered": fcm.UNREGISTERED,
    "bad_token": fcm.INVALID_TOKEN,
    "bad_request": fcm.INVALID_PAYLOAD,
}
APNS_REPLIES: dict[str, ApnsReply] = {
    "unavailable": apns.SERVICE_UNAVAILABLE,
    "throttled": apns.TOO_MANY_REQUESTS,
    "unregistered": apns.UNREGISTERED,
    "bad_token": apns.BAD_DEVICE_TOKEN,
    "bad_request": ApnsReply(400, "BadCollapseId"),
}


class Rig:
    """A worker with its queue, fakes, accounts and metrics."""

    def __init__(
        self,
        queue: PushQueue,
        senders: Mapping[str, PushSender],
        clock: ManualClock,
        fake_fcm: FakeFcm,
        fake_apns: FakeApns,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.queue, self.clock = queue, clock
        self.fake_fcm, self.fake_apns = fake_fcm, fake_apns
        self.accounts = MemoryAccounts()
        self.metrics = PushMetrics()
        self.worker = self.make_worker("w1", senders, policy)

    def make_worker(
        self, name: str, senders: Mapping[str, PushSender], policy: RetryPolicy | None = None
    ) -> PushWorker:
        return PushWorker(
            self.queue,
            senders,
            self.accounts,
            policy or RetryPolicy(),
            self.metrics,
            self.clock,
            name,
            rand=lambda: 0.5,
        )

    def requests(self, provider: str) -> int:
        return len(self.fake_fcm.requests if provider == "fcm" else self.fake_apns.requests)

    def reply(self, provider: str, kind: str) -> None:
        if provider == "fcm":
            self.fake_fcm.reply(FCM_REPLIES[kind])
        else:
            self.fake_apns.reply(APNS_REPLIES[kind])

    async def settled(self) -> bool:
        """Whether nothing is left to claim, even after every claim expired."""
        await expire_claims(self.clock)
        self.clock.advance(3600)
        return await self.queue.claim("probe", 10, 0) == []


@pytest.fixture
def rig(
    push_queue: PushQueue,
    senders: dict[str, PushSender],
    manual_clock: ManualClock,
    fake_fcm: FakeFcm,
    fake_apns: FakeApns,
) -> Rig:
    return Rig(push_queue, senders, manual_clock, fake_fcm, fake_apns)


PROVIDERS = ["fcm", "apns"]


async def test_planned_push_reaches_fcm_with_its_payload(rig: Rig) -> None:
    jobs = plan_pushes(
        message_draft(), 42, 99, [device(1001)], set(), False, "Alice", 4, preview=True
    )
    assert await rig.queue.enqueue(jobs) == 1

    assert await rig.worker.process_once() == 1

    [request] = rig.fake_fcm.requests
    message = request.body["message"]
    assert message["notification"] == {"title": "Alice", "body": "see you at 8?"}
    assert message["data"] == {"conversation_id": "d:17:42", "msg_id": "7261", "id": "99"}
    assert message["android"]["notification"]["notification_count"] == 4
    assert message["android"]["collapse_key"] == "d:17:42"
    assert rig.metrics.get("sent", "fcm") == 1
    assert await rig.settled()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unavailable_then_ok_is_retried_and_sent_once(rig: Rig, provider: str) -> None:
    rig.reply(provider, "unavailable")
    await rig.queue.enqueue([make_job(provider=provider)])

    assert await rig.worker.process_once() == 1
    assert rig.requests(provider) == 1
    assert rig.metrics.get("retried", provider) == 1
    assert await rig.worker.process_once() == 0  # not due yet (backoff 0.5 s)

    rig.clock.advance(0.5)
    assert await rig.worker.process_once() == 1
    assert rig.requests(provider) == 2
    assert rig.metrics.get("sent", provider) == 1
    assert rig.metrics.get("failed", provider) == 1
    assert await rig.settled()
    assert rig.requests(provider) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_throttled_retry_honours_retry_after(rig: Rig, provider: str) -> None:
    rig.reply(provider, "throttled")  # Retry-After: 7
    await rig.queue.enqueue([make_job(provider=provider)])
    await rig.worker.process_once()

    rig.clock.advance(6.9)
    assert await rig.worker.process_once() == 0
    assert rig.requests(provider) == 1
    rig.clock.advance(0.1)
    assert await rig.worker.process_once() == 1
    assert rig.requests(provider) == 2
    assert rig.metrics.get("sent", provider) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_permanent_failure_is_dead_lettered(rig: Rig, provider: str) -> None:
    rig.reply(provider, "bad_request")
    job = make_job(provider=provider)
    await rig.queue.enqueue([job])

    await rig.worker.process_once()

    [dead] = await rig.queue.dead_letters(10)
    assert dead.job == job
    assert dead.reason.startswith("permanent failure:")
    assert "400" in dead.reason
    assert rig.metrics.get("dead_lettered", provider) == 1
    assert await rig.settled()
    assert rig.requests(provider) == 1


async def test_retries_exhausted_are_dead_lettered(
    rig: Rig, senders: dict[str, PushSender]
) -> None:
    worker = rig.make_worker("w2", senders, RetryPolicy(max_attempts=3))
    for _ in range(3):
        rig.reply("fcm", "unavailable")
    await rig.queue.enqueue([make_job()])

    for _ in range(3):
        assert await worker.process_once() == 1
        rig.clock.advance(10)

    [dead] = await rig.queue.dead_letters(10)
    assert dead.job is not None and dead.job.attempt == 3
    assert dead.reason.startswith("gave up after 3 attempts")
    assert (rig.metrics.get("retried", "fcm"), rig.metrics.get("failed", "fcm")) == (2, 3)
    assert await rig.settled()
    assert rig.requests("fcm") == 3


async def test_job_older_than_max_age_is_dead_lettered_unsent(rig: Rig) -> None:
    await rig.queue.enqueue([make_job(first_enqueued_ms=START_MS - 3_601_000)])

    await rig.worker.process_once()

    [dead] = await rig.queue.dead_letters(10)
    assert dead.reason.startswith("too old to send")
    assert rig.requests("fcm") == 0


@pytest.mark.parametrize(
    ("provider", "kind"),
    [
        ("fcm", "unregistered"),
        ("fcm", "bad_token"),
        ("apns", "unregistered"),
        ("apns", "bad_token"),
    ],
)
async def test_rejected_token_is_compare_and_cleared(rig: Rig, provider: str, kind: str) -> None:
    job = make_job(provider=provider)
    rig.accounts.tokens[1001] = job.token
    rig.reply(provider, kind)
    await rig.queue.enqueue([job])

    await rig.worker.process_once()

    assert rig.accounts.calls == [(1001, job.token)]
    assert rig.accounts.tokens[1001] is None
    assert rig.metrics.get("dropped_tokens", provider) == 1
    assert await rig.queue.dead_letters(10) == []
    assert await rig.settled()


async def test_token_registered_again_after_the_failure_stays(rig: Rig) -> None:
    job = make_job()
    rig.accounts.tokens[1001] = "new-token-after-reinstall"
    rig.reply("fcm", "unregistered")
    await rig.queue.enqueue([job])

    await rig.worker.process_once()

    assert rig.accounts.calls == [(1001, job.token)]
    assert rig.accounts.tokens[1001] == "new-token-after-reinstall"
    assert rig.metrics.get("dropped_tokens", "fcm") == 0
    assert await rig.settled()


@pytest.mark.parametrize("provider", ["apns", "webpush"])
async def test_provider_without_sender_is_dead_lettered(
    rig: Rig, senders: dict[str, PushSender], provider: str
) -> None:
    worker = rig.make_worker("fcm-only", {"fcm": senders["fcm"]})
    await rig.queue.enqueue([make_job(provider=provider)])

    await worker.process_once()

    [dead] = await rig.queue.dead_letters(10)
    assert dead.reason == f"no sender configured for provider {provider!r}"
    assert rig.requests("apns") == 0


async def test_sender_that_raises_is_retried(rig: Rig) -> None:
    raising = RaisingSender("fcm", failures=1)
    worker = rig.make_worker("w2", {"fcm": raising})
    await rig.queue.enqueue([make_job()])

    await worker.process_once()
    assert rig.metrics.get("retried", "fcm") == 1
    rig.clock.advance(1)
    await worker.process_once()
    assert len(raising.sent) == 1
    assert await rig.settled()


async def test_one_failing_job_does_not_stop_the_others(rig: Rig) -> None:
    jobs = [make_job("1001:99", device_id=1001), make_job("1002:99", device_id=1002)]
    rig.accounts.tokens.update({1001: jobs[0].token, 1002: jobs[1].token})
    rig.accounts.fail_for.add(1001)
    rig.reply("fcm", "unregistered")
    rig.reply("fcm", "unregistered")
    rig.reply("fcm", "unregistered")
    await rig.queue.enqueue(jobs)

    assert await rig.worker.process_once() == 2
    assert rig.accounts.tokens == {1001: jobs[0].token, 1002: None}

    rig.accounts.fail_for.clear()
    await expire_claims(rig.clock)
    assert await rig.worker.process_once() == 1  # the failed one, handed out again
    assert rig.accounts.tokens == {1001: None, 1002: None}
    assert await rig.settled()


async def test_worker_cancelled_mid_send_job_goes_to_another_worker(
    rig: Rig, senders: dict[str, PushSender]
) -> None:
    job = make_job(provider="apns")
    rig.fake_apns.reply(replace(apns.OK, delay_s=5.0))
    await rig.queue.enqueue([job])
    doomed = asyncio.create_task(rig.worker.process_once())
    await rig.fake_apns.wait_for_requests(1)
    doomed.cancel()  # killed mid-send: claimed, never settled
    with pytest.raises(asyncio.CancelledError):
        await doomed

    other = rig.make_worker("w2", senders)
    assert await other.process_once() == 0
    await expire_claims(rig.clock)
    assert await other.process_once() == 1

    assert rig.requests("apns") == 2
    assert rig.metrics.get("sent", "apns") == 1
    assert await rig.settled()


async def test_acked_job_is_never_sent_again(rig: Rig) -> None:
    job: PushJob = make_job()
    await rig.queue.enqueue([job])
    await rig.worker.process_once()

    assert await rig.settled()
    assert await rig.queue.enqueue([job]) == 0
    assert await rig.worker.process_once() == 0
    assert rig.requests("fcm") == 1


async def test_run_delivers_until_stopped(rig: Rig, senders: dict[str, PushSender]) -> None:
    worker = rig.make_worker("runner", senders)
    runner = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await rig.queue.enqueue([make_job("1:1"), make_job("2:1", provider="apns")])
    async with asyncio.timeout(5):
        # Polling the counters: the worker has no completion signal to wait on.
        while rig.metrics.get("sent", "fcm") + rig.metrics.get("sent", "apns") < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    worker.stop()
    await asyncio.wait_for(runner, 5)
    assert rig.requests("fcm") == rig.requests("apns") == 1
