"""CQL schema of the production stores, and the idempotent ``create_schema`` (migrate).

Partitions are bounded by 10-day time buckets (Discord's lesson): an inbox or a conversation
is ``((id, bucket), clustering key)``, so no partition grows without bound. Buckets derive from
the Snowflake timestamp of the clustering key (``bucket_of``). ``inbox_heads.first_bucket`` and
``conversations.first_bucket`` bound bucket scans from below; both are *min-registers*: every
write uses ``USING TIMESTAMP FIRST_BUCKET_TS_BASE - bucket``, so the smallest bucket ever
written wins last-write-wins reconciliation whatever the order the writes land in.

Replication is a setting: ``{"class": "SimpleStrategy", "replication_factor": 1}`` (the
default, one test node) or ``{"class": "NetworkTopologyStrategy", "dc1": 3, ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from idgen.snowflake import EPOCH_MS, timestamp_ms

BUCKET_MS: Final = 10 * 24 * 3600 * 1000
"""Width of a partition's time bucket: 10 days."""
EPOCH_BUCKET: Final = EPOCH_MS // BUCKET_MS
"""The bucket of the Snowflake epoch: no position or message id lies in an earlier one."""
FIRST_BUCKET_TS_BASE: Final = 1 << 40
"""Write timestamp base of the first-bucket min-registers (see the module docstring)."""
DEFAULT_REPLICATION: Final[Mapping[str, Any]] = {
    "class": "SimpleStrategy",
    "replication_factor": 1,
}
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,47}")
_OPTION = re.compile(r"[a-zA-Z0-9_.\-]{1,64}")

TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS inbox_entries (
        user_id bigint, bucket int, id bigint,
        kind text, msg_id bigint, conversation_id text, sender_id bigint,
        sender_device_id bigint, created_at_ms bigint, body text, up_to_msg_id bigint,
        scope text, group_json text, attachments text,
        PRIMARY KEY ((user_id, bucket), id)
    ) WITH CLUSTERING ORDER BY (id ASC)""",
    """CREATE TABLE IF NOT EXISTS inbox_heads (
        user_id bigint PRIMARY KEY, first_bucket int
    )""",
    """CREATE TABLE IF NOT EXISTS messages (
        conversation_id text, bucket int, msg_id bigint,
        sender_id bigint, sender_device_id bigint, body text, created_at_ms bigint,
        deleted boolean, attachments text,
        PRIMARY KEY ((conversation_id, bucket), msg_id)
    ) WITH CLUSTERING ORDER BY (msg_id DESC)""",
    """CREATE TABLE IF NOT EXISTS messages_by_id (
        msg_id bigint PRIMARY KEY, conversation_id text, bucket int, deleted boolean
    )""",
    """CREATE TABLE IF NOT EXISTS conversations (
        conversation_id text PRIMARY KEY, first_bucket int
    )""",
    """CREATE TABLE IF NOT EXISTS sends_by_client_id (
        sender_id bigint, client_msg_id text,
        msg_id bigint, id bigint, conversation_id text, created_at_ms bigint,
        PRIMARY KEY ((sender_id, client_msg_id))
    )""",
    """CREATE TABLE IF NOT EXISTS users (
        user_id bigint PRIMARY KEY, username text, display_name text, password_hash text,
        created_at_ms bigint
    )""",
    """CREATE TABLE IF NOT EXISTS users_by_name (
        username text PRIMARY KEY, user_id bigint
    )""",
    """CREATE TABLE IF NOT EXISTS devices (
        device_id bigint PRIMARY KEY, user_id bigint, device_name text, platform text,
        active boolean, cur_max_msg_id bigint, created_at_ms bigint, last_seen_ms bigint,
        push_provider text, push_token text, push_topic text
    )""",
    """CREATE TABLE IF NOT EXISTS device_cursors (
        device_id bigint PRIMARY KEY, cur_max_msg_id bigint
    )""",
    """CREATE TABLE IF NOT EXISTS devices_by_user (
        user_id bigint, device_id bigint, PRIMARY KEY ((user_id), device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS devices_by_push_token (
        push_token text PRIMARY KEY, device_id bigint
    )""",
    """CREATE TABLE IF NOT EXISTS groups (
        group_id bigint PRIMARY KEY, name text, owner_id bigint,
        member_ids frozen<list<bigint>>, created_at_ms bigint, version bigint,
        last_event text, last_user_ids frozen<list<bigint>>
    )""",
    """CREATE TABLE IF NOT EXISTS group_create_keys (
        owner_id bigint, client_key text, group_id bigint,
        PRIMARY KEY ((owner_id, client_key))
    )""",
    """CREATE TABLE IF NOT EXISTS groups_by_user (
        user_id bigint, group_id bigint, PRIMARY KEY ((user_id), group_id)
    )""",
    """CREATE TABLE IF NOT EXISTS mutes (
        user_id bigint, conversation_id text, until_ms bigint,
        PRIMARY KEY ((user_id), conversation_id)
    )""",
    """CREATE TABLE IF NOT EXISTS user_conversations (
        user_id bigint, conversation_id text,
        last_msg_id bigint, read_up_to bigint, joined_msg_id bigint,
        PRIMARY KEY ((user_id), conversation_id)
    )""",
    """CREATE TABLE IF NOT EXISTS group_activity (
        conversation_id text PRIMARY KEY, last_msg_id bigint
    )""",
    """CREATE TABLE IF NOT EXISTS hidden_messages (
        user_id bigint, conversation_id text, msg_id bigint,
        PRIMARY KEY ((user_id, conversation_id), msg_id)
    )""",
    """CREATE TABLE IF NOT EXISTS departures (
        conversation_id text, msg_id bigint, user_id bigint,
        PRIMARY KEY ((conversation_id), msg_id, user_id)
    ) WITH CLUSTERING ORDER BY (msg_id DESC, user_id ASC)""",
    """CREATE TABLE IF NOT EXISTS attachments (
        attachment_id bigint PRIMARY KEY, owner_id bigint, state text, name text, size bigint,
        created_at_ms bigint, content_type text, sha256 text, width int, height int,
        thumbnail_id bigint, parent_id bigint, gc_due_ms bigint
    )""",
    """CREATE TABLE IF NOT EXISTS attachments_by_sha (
        sha256 text, attachment_id bigint, PRIMARY KEY ((sha256), attachment_id)
    )""",
    """CREATE TABLE IF NOT EXISTS attachment_refs (
        attachment_id bigint, msg_id bigint, conversation_id text, created_at_ms bigint,
        PRIMARY KEY ((attachment_id), msg_id)
    )""",
    """CREATE TABLE IF NOT EXISTS attachment_refs_by_msg (
        msg_id bigint, attachment_id bigint, PRIMARY KEY ((msg_id), attachment_id)
    )""",
    """CREATE TABLE IF NOT EXISTS attachment_gc (
        day int, due_ms bigint, attachment_id bigint,
        PRIMARY KEY ((day), due_ms, attachment_id)
    )""",
    """CREATE TABLE IF NOT EXISTS attachment_gc_days (
        name text PRIMARY KEY, day int
    )""",
)
COLUMNS_ADDED: Final = (
    # Columns added to tables after their first release (keyspaces created before them).
    "ALTER TABLE groups ADD IF NOT EXISTS last_event text",
    "ALTER TABLE groups ADD IF NOT EXISTS last_user_ids frozen<list<bigint>>",
    "ALTER TABLE inbox_entries ADD IF NOT EXISTS attachments text",
    "ALTER TABLE messages ADD IF NOT EXISTS attachments text",
)


def bucket_of(snowflake: int) -> int:
    """The 10-day bucket holding a Snowflake-shaped position or message id."""
    return timestamp_ms(snowflake) // BUCKET_MS


def replication_cql(replication: Mapping[str, Any]) -> str:
    """Render a replication map as a CQL map literal, refusing anything but names and ints."""
    if "class" not in replication:
        raise ValueError("replication needs a 'class' (SimpleStrategy/NetworkTopologyStrategy)")
    parts = []
    for key, value in replication.items():
        if not _OPTION.fullmatch(str(key)) or not _OPTION.fullmatch(str(value)):
            raise ValueError(f"invalid replication option {key!r}: {value!r}")
        parts.append(f"'{key}': '{value}'")
    return "{" + ", ".join(parts) + "}"


def create_schema(
    session: Any, keyspace: str, replication: Mapping[str, Any] = DEFAULT_REPLICATION
) -> None:
    """Create the keyspace and every table if missing (idempotent; blocking, run it off-loop).

    Called at start-up and by ``messenger migrate``; ``session`` is a cassandra-driver
    ``Session``. Existing tables keep their data; columns added since they were created
    (``COLUMNS_ADDED``) are added to them.
    """
    if not _NAME.fullmatch(keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}")
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} "
        f"WITH replication = {replication_cql(replication)}"
    )
    for table in TABLES:
        session.execute(table.replace("IF NOT EXISTS ", f"IF NOT EXISTS {keyspace}.", 1))
    for column in COLUMNS_ADDED:
        session.execute(column.replace("ALTER TABLE ", f"ALTER TABLE {keyspace}.", 1))
    session.cluster.control_connection.wait_for_schema_agreement()
