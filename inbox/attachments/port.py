"""The attachment metadata port: who uploaded what, its content's hash, type and size, which
messages refer to it, and when to consider collecting it. Backends: ``store_sqlite``
(embedded) and ``store_cassandra`` (production). The bytes live in a ``BlobStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from inbox.core.attachments import AttachmentRef


class AttachmentState(StrEnum):
    PENDING = "pending"
    """A presigned upload not completed yet: never referenced, never served."""
    STORING = "storing"
    """A presigned upload one ``complete`` request is storing: others must not store it too."""
    READY = "ready"


@dataclass(frozen=True, slots=True)
class Attachment:
    """One upload. Thumbnails are attachments too (``parent_id`` names their image).
    ``gc_due_ms`` is when the collector looks at it next; 0 once a message refers to it."""

    attachment_id: int
    owner_id: int
    state: AttachmentState
    name: str
    size: int
    created_at_ms: int
    content_type: str = ""
    sha256: str = ""
    width: int | None = None
    height: int | None = None
    thumbnail_id: int | None = None
    parent_id: int | None = None
    gc_due_ms: int = 0

    def ref(self) -> AttachmentRef:
        """What a message carries of it."""
        return AttachmentRef(self.attachment_id, self.name, self.size, self.content_type,
                             self.width, self.height, self.thumbnail_id)


@dataclass(frozen=True, slots=True)
class Reference:
    """Message ``msg_id`` of ``conversation_id`` refers to an attachment (recorded before the
    message is stored: it may name a message that never was)."""

    attachment_id: int
    msg_id: int
    conversation_id: str
    created_at_ms: int


class AttachmentStore(Protocol):
    """Attachment metadata.

    Contract:
    - ``create`` stores a new attachment (and, when its ``gc_due_ms`` is set, schedules it);
      ``complete`` replaces one in state ``expected`` (pending unless given) by ``attachment``
      (its new state and measured fields), atomically, once: False when it is not in that
      state (taken by another request, completed already, or gone).
    - ``get`` answers what ``create``/``complete``/``schedule`` wrote; ``delete`` removes the
      attachment, its references and its schedule, and is idempotent.
    - ``holds(sha256)``: whether any attachment (pending or ready) has this content, i.e. its
      blob is still needed.
    - ``due(now_ms, limit)`` lists scheduled ``(attachment_id, due_ms)`` with ``due_ms <=
      now_ms``, oldest first; ``unschedule`` removes one such entry (``schedule`` sets the
      attachment's ``gc_due_ms`` and adds an entry, 0 only clears the field).
    - Every method may raise ``Unavailable`` (nothing happened; retry).
    """

    async def create(self, attachment: Attachment) -> None:
        """Store a new attachment."""
        ...

    async def complete(self, attachment: Attachment,
                       expected: AttachmentState = AttachmentState.PENDING) -> bool:
        """Replace the attachment of this id, if in state ``expected``, by ``attachment``."""
        ...

    async def get(self, attachment_id: int) -> Attachment | None:
        """The attachment, None when unknown or deleted."""
        ...

    async def delete(self, attachment: Attachment) -> None:
        """Forget the attachment (not its blob: see ``holds``)."""
        ...

    async def holds(self, sha256: str) -> bool:
        """Whether an attachment with this content exists."""
        ...

    async def add_refs(self, refs: Sequence[Reference]) -> None:
        """Record that these messages refer to these attachments (idempotent)."""
        ...

    async def refs(self, attachment_id: int) -> list[Reference]:
        """The messages that refer (or were about to refer) to the attachment."""
        ...

    async def attachments_of(self, msg_id: int) -> list[int]:
        """The attachments a message refers to."""
        ...

    async def schedule(self, attachment_id: int, due_ms: int) -> None:
        """Set the attachment's ``gc_due_ms``; with due_ms > 0 also list it as due then."""
        ...

    async def due(self, now_ms: int, limit: int) -> list[tuple[int, int]]:
        """Scheduled ``(attachment_id, due_ms)`` with ``due_ms <= now_ms``, oldest first."""
        ...

    async def unschedule(self, attachment_id: int, due_ms: int) -> None:
        """Remove one entry ``due`` listed."""
        ...
