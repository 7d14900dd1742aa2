"""PushJob JSON form and the push counters."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import REGISTRY

from push.job import JobDecodeError, decode_job, encode_job, job_id_for
from push.metrics import PushMetrics
from tests.push.support import make_job


def test_job_round_trips_through_json() -> None:
    job = make_job(provider="apns")
    job = replace(job, message=replace(job.message, body=None, topic="im.inbox.app", title="Zoë"))
    text = encode_job(job)
    assert "Zoë" in text  # UTF-8, not escaped
    assert decode_job(text) == job
    assert decode_job(text.encode()) == job
    assert decode_job(text).next_attempt().attempt == 2
    assert job_id_for(5, 6) == "5:6"


def test_unknown_provider_is_kept_for_the_worker_to_dead_letter() -> None:
    job = make_job(provider="webpush")
    assert decode_job(encode_job(job)).provider == "webpush"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"v": 2}',
        encode_job(make_job()).replace('"badge":2', '"badge":"2"'),
        encode_job(make_job()).replace('"attempt":1', '"attempt":0'),
        encode_job(make_job()).replace('"device_id":1001', '"device_id":true'),
        encode_job(make_job()).replace('"id":"99"', '"id":99'),
        encode_job(make_job()).replace('"topic":null', '"topic":5'),
        b"\xff\xfe",
    ],
)
def test_malformed_jobs_are_refused(text: str | bytes) -> None:
    with pytest.raises(JobDecodeError):
        decode_job(text)


def test_metrics_count_here_and_in_the_process_registry() -> None:
    def exported(name: str, provider: str) -> float:
        return REGISTRY.get_sample_value(f"messenger_push_{name}_total",
                                         {"provider": provider}) or 0.0

    before = exported("sent", "fcm"), exported("dead_lettered", 'we"ird')
    metrics = PushMetrics()
    metrics.inc("sent", "fcm", 3)
    metrics.inc("sent", "apns")
    metrics.inc("dead_lettered", 'we"ird')

    assert (metrics.get("sent", "fcm"), metrics.get("sent", "apns")) == (3, 1)
    assert exported("sent", "fcm") - before[0] == 3
    assert exported("dead_lettered", 'we"ird') - before[1] == 1
    with pytest.raises(ValueError):
        metrics.inc("sent", "fcm", -1)
    assert metrics.get("retried", "fcm") == 0
    assert metrics.snapshot()["sent"] == {"fcm": 3, "apns": 1}
    with pytest.raises(ValueError):
        metrics.inc("sent", "fcm", -1)
