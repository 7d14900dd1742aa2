"""The inbox store port: per-user inboxes (ordered logs of entries) and conversation
history. Backends: ``store_sqlite`` (embedded) and ``store_hybrid`` (Redis + Cassandra).

Every method may raise ``inbox.core.errors.Unavailable`` when the backing store cannot answer;
that error always means "nothing happened, a retry is safe".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inbox.core.errors import DomainError
from inbox.core.models import AppendBatch, Appended, InboxPage, Message, SendReceipt


class InboxStore(Protocol):
    """Per-user inboxes (ordered logs of entries) and conversation history.

    Contract:
    - ``append`` is atomic and durable when it returns: the entry is in every listed inbox or
      in none. Positions in each inbox are strictly increasing in the order entries become
      visible to ``read`` (never a smaller position after a larger one was readable), and each
      is at least the draft's ``msg_id`` so positions stay Snowflake-shaped.
    - With an ``idempotency_key``, a second append with the same key writes nothing and returns
      the first receipt with ``replayed=True``, whatever its draft says.
    - ``read`` returns the entries after ``after`` in position order, at most ``limit``.
    """

    async def append(self, batch: AppendBatch) -> Appended:
        """Append ``batch.draft`` to each of ``batch.user_ids``' inboxes (see the contract)."""
        ...

    async def append_many(self, batches: Sequence[AppendBatch]
                          ) -> list[Appended | DomainError]:
        """``append`` each batch, in list order (a later batch never gets a smaller position
        in an inbox than an earlier one), each atomic on its own: its ``Appended``, or the
        ``DomainError`` (``Unavailable``) it failed with. One device's queued sends go
        through here together, in a few store round trips for all of them."""
        ...

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        """The entries of ``user_id``'s inbox with position > ``after``, oldest first."""
        ...

    async def head(self, user_id: int) -> int:
        """The largest position in ``user_id``'s inbox, 0 when it is empty."""
        ...

    async def history(self, conversation_id: str, before: int | None, limit: int) -> list[Message]:
        """Messages of a conversation with ``msg_id < before`` (all when None), newest first.

        Messages deleted for everyone are left out.
        """
        ...

    async def get_message(self, msg_id: int) -> Message | None:
        """One message by id, or None when unknown or deleted for everyone."""
        ...

    async def receipt(self, key: tuple[int, str]) -> SendReceipt | None:
        """The receipt a stored append with idempotency ``key`` answered, None if there is
        none (so a retry can be told its original answer before anything else is checked)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; ``Unavailable`` otherwise (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
