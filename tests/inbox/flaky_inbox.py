"""An ``InboxStore`` of our own that fails chosen appends once, as a store outage would."""

from __future__ import annotations

from collections.abc import Sequence

from inbox.core.errors import DomainError, Unavailable
from inbox.core.models import AppendBatch, Appended, EntryKind, InboxPage, Message, SendReceipt
from inbox.messages.port import InboxStore


class FlakyInbox:
    """Delegates to ``inner``; ``fail_next(kind)`` makes the next append of an entry of that
    kind raise ``Unavailable`` without writing anything (the port's contract for a 503).
    ``history_calls`` records the (conversation_id, before, limit) of every history read."""

    def __init__(self, inner: InboxStore) -> None:
        self._inner = inner
        self._armed: set[EntryKind] = set()
        self.failed = 0
        self.history_calls: list[tuple[str, int | None, int]] = []

    def fail_next(self, kind: EntryKind) -> None:
        """Fail the next append of a ``kind`` entry (once)."""
        self._armed.add(kind)

    async def append(self, batch: AppendBatch) -> Appended:
        if batch.draft.kind in self._armed:
            self._armed.discard(batch.draft.kind)
            self.failed += 1
            raise Unavailable("injected inbox outage")
        return await self._inner.append(batch)

    async def append_many(self, batches: Sequence[AppendBatch]
                          ) -> list[Appended | DomainError]:
        out: list[Appended | DomainError] = []
        for batch in batches:
            try:
                out.append(await self.append(batch))
            except Unavailable as exc:
                out.append(exc)
        return out

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        return await self._inner.read(user_id, after, limit)

    async def head(self, user_id: int) -> int:
        return await self._inner.head(user_id)

    async def history(self, conversation_id: str, before: int | None, limit: int
                      ) -> list[Message]:
        self.history_calls.append((conversation_id, before, limit))
        return await self._inner.history(conversation_id, before, limit)

    async def get_message(self, msg_id: int) -> Message | None:
        return await self._inner.get_message(msg_id)

    async def receipt(self, key: tuple[int, str]) -> SendReceipt | None:
        return await self._inner.receipt(key)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()
