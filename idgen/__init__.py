"""Snowflake ids and the worker-id leases that keep two live nodes from sharing one."""

from idgen.clock import SYSTEM_CLOCK, Clock, SystemClock
from idgen.lease import LeaseError, LeaseLostError, LeaseUnavailableError, WorkerLease
from idgen.lease_file import FileWorkerLease
from idgen.snowflake import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_WORKER_ID,
    ClockError,
    ClockMovedBackwardsError,
    SnowflakeGenerator,
    SnowflakeParts,
    decode,
    encode,
    min_id_for_ms,
    timestamp_ms,
    to_datetime,
)

__all__ = [
    "EPOCH_MS",
    "MAX_SEQUENCE",
    "MAX_WORKER_ID",
    "SYSTEM_CLOCK",
    "Clock",
    "ClockError",
    "ClockMovedBackwardsError",
    "FileWorkerLease",
    "LeaseError",
    "LeaseLostError",
    "LeaseUnavailableError",
    "SnowflakeGenerator",
    "SnowflakeParts",
    "SystemClock",
    "WorkerLease",
    "decode",
    "encode",
    "min_id_for_ms",
    "timestamp_ms",
    "to_datetime",
]
