"""The write path: validate a send, give it a Snowflake id, append it to every inbox involved.

The sender's inbox is written too, so its other devices sync their own messages. Steps (the
conversation index) run after the append is durable, then listeners (live delivery, push
planning), side by side. A listener's failure never fails a send that has been stored; a
step's does (the retry redoes it), but the listeners are told first, since a retry is a
replay and tells no one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from idgen.clock import Clock
from inbox.accounts.known_users import KnownUsers
from inbox.accounts.port import AccountStore
from inbox.core.attachments import MAX_ATTACHMENTS, AttachmentRef
from inbox.core.errors import DomainError, Forbidden, InvalidInput, NotFound, RateLimited, TooLarge
from inbox.core.ids import direct_id
from inbox.core.models import (
    AppendBatch,
    Appended,
    Caller,
    EntryDraft,
    EntryKind,
    Message,
    SendReceipt,
)
from inbox.messages.metrics import ENTRIES_APPENDED, SENDS
from inbox.messages.port import InboxStore
from inbox.ratelimit.port import RateLimiter, SendLimits, send_key

log = logging.getLogger(__name__)

DEFAULT_SEND_LIMITS = SendLimits()
MAX_BODY_BYTES = 16 * 1024
MAX_CLIENT_MSG_ID = 128


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A send as a client asked for it (REST body or ``send`` frame), ids already parsed."""

    body: str
    client_msg_id: str
    to_user: int | None = None
    to_group: int | None = None
    attachments: tuple[int, ...] = ()
    """Ids of attachments the sender uploaded, in the order the message shows them."""


Appends = Sequence[tuple[AppendBatch, Appended]]
"""Appended batches with their outcomes, in the order they were appended."""


class AppendListener(Protocol):
    """Something that reacts to entries once they are durable (live delivery, push)."""

    async def on_appended(self, appends: Appends) -> None:
        """Called after ``appends`` were appended, in order (never for idempotent replays)."""
        ...


class AppendStep(Protocol):
    """Bookkeeping that must be done once an append is durable (the conversation index).

    Unlike listeners, steps also run for idempotent replays and their failures fail the
    call: a retried send replays the append and does the step again, so it must be
    idempotent."""

    async def after_append(self, appends: Appends) -> None:
        """Called after ``appends`` were appended or replayed, before the listeners (which
        are still told if a step fails)."""
        ...


class Recipients(Protocol):
    """Resolves a group send's audience; the group feature provides it."""

    async def group_audience(self, caller: Caller, group_id: int) -> tuple[str, list[int]]:
        """The group's conversation id and member ids; Forbidden for non-members."""
        ...


class AttachmentClaims(Protocol):
    """Turns a send's attachment ids into the references its message carries; the
    attachment feature provides it."""

    async def claim(self, caller: Caller, attachment_ids: Sequence[int], msg_id: int,
                    conversation_id: str) -> tuple[AttachmentRef, ...]:
        """The references, in order, after recording that message ``msg_id`` of
        ``conversation_id`` refers to each attachment (before the message is stored, so an
        attachment is never collected from under a message; a reference whose message was
        never stored grants nothing). NotFound unless the caller uploaded every one of them
        and each upload is complete."""
        ...


def validate_send(request: SendRequest) -> None:
    """API rules for a send: exactly one target, body up to 16 KiB of UTF-8 (empty only with
    attachments), at most ``MAX_ATTACHMENTS`` distinct attachments, key 1..128 chars."""
    if (request.to_user is None) == (request.to_group is None):
        raise InvalidInput("give exactly one of to_user and to_group")
    if len(request.attachments) > MAX_ATTACHMENTS:
        raise InvalidInput(f"at most {MAX_ATTACHMENTS} attachments per message")
    if len(set(request.attachments)) != len(request.attachments):
        raise InvalidInput("an attachment is named twice")
    size = len(request.body.encode("utf-8", "surrogatepass"))
    if size == 0 and not request.attachments:
        raise InvalidInput("body must not be empty (unless the message has attachments)")
    if size > MAX_BODY_BYTES:
        raise TooLarge(f"body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    if not 1 <= len(request.client_msg_id) <= MAX_CLIENT_MSG_ID:
        raise InvalidInput(f"client_msg_id must be 1..{MAX_CLIENT_MSG_ID} characters")


class MessageService:
    """Sends: the only place that decides which inboxes a message goes to."""

    def __init__(
        self,
        inbox: InboxStore,
        accounts: AccountStore,
        next_id: Callable[[], int],
        clock: Clock,
        listeners: Sequence[AppendListener] = (),
        recipients: Recipients | None = None,
        steps: Sequence[AppendStep] = (),
        limiter: RateLimiter | None = None,
        limits: SendLimits = DEFAULT_SEND_LIMITS,
        attachments: AttachmentClaims | None = None,
    ) -> None:
        """``limiter`` holds each user's send bucket (``limits``); None sends unlimited.
        ``attachments`` resolves sends' attachment ids (None: sends with any are refused)."""
        self._inbox = inbox
        self._users = KnownUsers(accounts)
        self._next_id = next_id
        self._clock = clock
        self.listeners = list(listeners)
        self.recipients = recipients
        self.steps = list(steps)
        self._limiter = limiter
        self._limits = limits
        self.attachments = attachments

    async def send(self, caller: Caller, request: SendRequest) -> tuple[SendReceipt, bool]:
        """Store the message in every inbox involved; return the receipt and "was a replay"."""
        [outcome] = await self.send_many(caller, [request])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def send_many(self, caller: Caller, requests: Sequence[SendRequest]
                        ) -> list[tuple[SendReceipt, bool] | DomainError]:
        """``send`` for several requests of one device, stored in order in one append call
        (a socket's queued sends); each gets its receipt or its own error."""
        results: list[tuple[SendReceipt, bool] | DomainError | None] = [None] * len(requests)
        for n, request in enumerate(requests):
            try:
                validate_send(request)  # a malformed send gets its own error and costs no token
            except DomainError as exc:
                results[n] = exc
        await self._limit(caller, results)
        audiences: dict[tuple[int | None, int | None], tuple[str, list[int]] | DomainError] = {}
        batches: list[AppendBatch] = []
        slots: list[int] = []
        for n, request in enumerate(requests):
            if results[n] is not None:
                continue
            try:
                target = (request.to_user, request.to_group)
                if target not in audiences:
                    audiences[target] = await self._audience_or_refusal(caller, request)
                audience = audiences[target]
                if isinstance(audience, DomainError):
                    results[n] = await self._replay_or(caller, request, audience)
                    continue
                msg_id = self._next_id()
                refs = await self._claims_or_refusal(caller, request, msg_id, audience[0])
                if isinstance(refs, DomainError):
                    results[n] = await self._replay_or(caller, request, refs)
                    continue
            except DomainError as exc:
                results[n] = exc
                continue
            batches.append(self._message_batch(caller, request, msg_id, refs, *audience))
            slots.append(n)
        for n, outcome in zip(slots, await self.append_many(batches), strict=True):
            if isinstance(outcome, DomainError):
                results[n] = outcome
            else:
                assert outcome.receipt is not None  # receipt_for is set  # noqa: S101
                results[n] = (outcome.receipt, outcome.replayed)
        for result in results:
            if isinstance(result, tuple):
                SENDS.labels("replayed" if result[1] else "stored").inc()
        return [r for r in results if r is not None]

    async def _limit(self, caller: Caller,
                     results: list[tuple[SendReceipt, bool] | DomainError | None]) -> None:
        """Take one token of the user's send bucket per send still open, in order; the sends
        past what the bucket holds are refused (``RateLimited``, taking nothing).

        A replayed ``client_msg_id`` takes a token like any send: telling it apart needs a
        store read, which a flood of refused requests must not cause."""
        open_sends = [n for n, result in enumerate(results) if result is None]
        if self._limiter is None or not open_sends:
            return
        limits = self._limits
        taken, wait = await self._limiter.acquire_many(
            send_key(caller.user_id), limits.rate, limits.burst, len(open_sends))
        for n in open_sends[taken:]:
            results[n] = RateLimited(f"too many messages; at most {limits.burst} at once and "
                                     f"{limits.rate:g} per second", retry_after_s=wait)

    async def _replay_or(self, caller: Caller, request: SendRequest, refusal: DomainError
                         ) -> tuple[SendReceipt, bool]:
        """The stored receipt of this send's key, else raise ``refusal``: a retry of a stored
        send answers as the send did, even when the sender has left the group (or its
        attachments are gone) since: idempotency comes before permission."""
        earlier = await self._inbox.receipt((caller.user_id, request.client_msg_id))
        if earlier is None:
            raise refusal
        return earlier, True

    async def _claims_or_refusal(self, caller: Caller, request: SendRequest, msg_id: int,
                                 conversation_id: str
                                 ) -> tuple[AttachmentRef, ...] | DomainError:
        """The send's attachment references (``AttachmentClaims.claim``), or why not."""
        if not request.attachments:
            return ()
        if self.attachments is None:
            return NotFound("this server stores no attachments")
        try:
            return await self.attachments.claim(caller, request.attachments, msg_id,
                                                conversation_id)
        except (Forbidden, NotFound) as exc:
            return exc

    def _message_batch(self, caller: Caller, request: SendRequest, msg_id: int,
                       refs: tuple[AttachmentRef, ...], conversation_id: str,
                       audience: list[int]) -> AppendBatch:
        now = self._clock.now_ms()
        draft = EntryDraft(
            kind=EntryKind.MESSAGE,
            msg_id=msg_id,
            conversation_id=conversation_id,
            sender_id=caller.user_id,
            sender_device_id=caller.device_id,
            created_at_ms=now,
            body=request.body,
            attachments=refs,
        )
        return AppendBatch(
            draft=draft,
            user_ids=tuple(dict.fromkeys([caller.user_id, *audience])),
            message=Message(msg_id, conversation_id, caller.user_id, caller.device_id,
                            request.body, now, refs),
            idempotency_key=(caller.user_id, request.client_msg_id),
            receipt_for=caller.user_id,
        )

    async def append(self, batch: AppendBatch) -> Appended:
        """Append any entry batch and tell the listeners (shared by every writer of entries)."""
        [outcome] = await self.append_many([batch])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def append_many(self, batches: Sequence[AppendBatch]
                          ) -> list[Appended | DomainError]:
        """Append batches in order (``InboxStore.append_many``), run the steps over those
        appended, then tell the listeners. A step's failure fails every append of the call
        (its retry is a replay that redoes the step), after the listeners were told, since
        a replay tells no one."""
        if not batches:
            return []
        outcomes = await self._inbox.append_many(batches)
        done = [(b, a) for b, a in zip(batches, outcomes, strict=True)
                if isinstance(a, Appended)]
        for batch, appended in done:
            if not appended.replayed:
                ENTRIES_APPENDED.labels(batch.draft.kind.value).inc(len(batch.user_ids))
        try:
            for step in self.steps:
                await step.after_append(done)
        except DomainError as exc:
            await self._tell_all(done)
            return [exc if isinstance(a, Appended) else a for a in outcomes]
        except Exception:
            await self._tell_all(done)
            raise
        await self._tell_all(done)
        return outcomes

    async def _tell_all(self, appends: Appends) -> None:
        """Run the listeners side by side (live delivery and push planning are independent);
        never for a replay, whose first attempt told them."""
        fresh = [(b, a) for b, a in appends if not a.replayed]
        if fresh:
            await asyncio.gather(*(self._tell(listener, fresh) for listener in self.listeners))

    @staticmethod
    async def _tell(listener: AppendListener, appends: Appends) -> None:
        try:
            await listener.on_appended(appends)
        except Exception:  # a listener failure must not fail a stored send
            log.exception("append listener %r failed", listener)

    async def _audience_or_refusal(self, caller: Caller, request: SendRequest
                                   ) -> tuple[str, list[int]] | DomainError:
        """The send's conversation and audience, or why this sender may not send there."""
        try:
            return await self._audience(caller, request)
        except (Forbidden, NotFound) as exc:
            return exc

    async def _audience(self, caller: Caller, request: SendRequest) -> tuple[str, list[int]]:
        if request.to_user is not None:
            if not await self._users.exists(request.to_user):
                raise NotFound(f"no user {request.to_user}")
            return direct_id(caller.user_id, request.to_user), [request.to_user]
        assert request.to_group is not None  # noqa: S101 (validate_send checked it)
        if self.recipients is None:
            raise NotFound(f"no group {request.to_group}")
        return await self.recipients.group_audience(caller, request.to_group)
