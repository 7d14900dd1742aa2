"""LogSender at run time: it keeps the PushSender contract (the embedded default when no
provider is configured), and the worker delivers through it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from push.message import PushMessage, PushStatus
from push.metrics import PushMetrics
from push.queue_sqlite import SqliteQueue
from push.retry import RetryPolicy
from push.sender import PushSender
from push.sender_log import LogSender
from push.worker import PushWorker
from tests.push.support import ManualClock, MemoryAccounts, make_job


@pytest.mark.parametrize("provider", ["fcm", "apns"])
async def test_log_sender_reports_sent_and_logs_without_the_token(
    provider: str, push_message: PushMessage, caplog: pytest.LogCaptureFixture
) -> None:
    sender: PushSender = LogSender(provider)
    assert sender.provider == provider

    with caplog.at_level(logging.INFO, logger="push.sender_log"):
        result = await sender.send(push_message)

    assert result.status is PushStatus.SENT
    [record] = caplog.records
    line = record.getMessage()
    assert provider in line and "Alice" in line and "d:17:42" in line
    assert push_message.token not in line
    assert push_message.token[-6:] in line
    await sender.aclose()
    await sender.aclose()  # closing twice is harmless


async def test_worker_delivers_through_log_sender(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    queue = SqliteQueue(tmp_path / "q.sqlite3", manual_clock)
    metrics = PushMetrics()
    worker = PushWorker(
        queue,
        {"fcm": LogSender("fcm")},
        MemoryAccounts(),
        RetryPolicy(),
        metrics,
        manual_clock,
        "w1",
    )
    try:
        await queue.enqueue([make_job()])
        assert await worker.process_once() == 1
        assert metrics.get("sent", "fcm") == 1
        assert await worker.process_once() == 0
    finally:
        await queue.close()
