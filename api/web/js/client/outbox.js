// The outbox: messages waiting for the server's answer, sent one at a time, in order. No I/O.
//
// Each message has a `client_msg_id` (the server's idempotency key), so a message whose
// answer was lost is simply sent again: the server answers the original receipt and stores
// nothing twice. Only the oldest message is in flight; the next goes once it is answered, so
// messages land in the order they were queued even when one has to be retried. Answers:
// - `sent`: done, the message leaves the outbox;
// - `rate_limited`: retry after the server's `retry_after_ms`;
// - `unavailable`, `internal`: retry after a backoff delay;
// - credentials refused: hold it (the socket is about to close with 4001; a new login sends it);
// - anything else (not a participant, too large...): refused for good, dropped and reported.
// A disconnect puts the message in flight back at the head. The caller persists `items`.

import { Backoff } from "./backoff.js";

export const MAX_BODY_BYTES = 16 * 1024;
export const MAX_ATTACHMENTS = 10;
const RETRYABLE = new Set(["rate_limited", "unavailable", "internal"]);
export const CREDENTIAL_CODES = new Set(["unauthorized", "token_expired", "invalid_token"]);

/** Why the server would refuse this body (with that many attachments) for good, or null
 * when it is fine. A message of attachments alone may have an empty body. */
export function bodyProblem(body, attachments = 0) {
  const size = new TextEncoder().encode(body).length;
  if (body.trim() === "" && attachments === 0) return "the message is empty";
  if (size > MAX_BODY_BYTES) return `the message is ${size} bytes; at most ${MAX_BODY_BYTES}`;
  if (attachments > MAX_ATTACHMENTS) return `${attachments} attachments; at most ${MAX_ATTACHMENTS}`;
  return null;
}

export class Outbox {
  /** `items`: `[{client_msg_id, body, conversation_id, to_user | to_group, queued_at,
   * attachments?}]` (`attachments`: the uploads' metadata, as the server answered them). */
  constructor(items = [], backoff = new Backoff()) {
    this.items = [...items];
    this.backoff = backoff;
    this.inFlight = null;
    this.notBefore = 0;
  }

  /** Queue a message (one already queued, by `client_msg_id`, is left as it is). */
  add(item) {
    if (!this.items.some((i) => i.client_msg_id === item.client_msg_id)) this.items.push(item);
  }

  /** The message to send now, if any: the oldest, once nothing is in flight. */
  nextToSend(now) {
    if (this.inFlight !== null || this.items.length === 0 || now < this.notBefore) return null;
    this.inFlight = this.items[0].client_msg_id;
    return this.items[0];
  }

  /** When `nextToSend` may next return a message (null: only after an answer or a change). */
  wakeAt() {
    return this.inFlight !== null || this.items.length === 0 ? null : this.notBefore;
  }

  /** The server stored it: the item that leaves the outbox (null if not ours). */
  onSent(clientMsgId) {
    const index = this.items.findIndex((i) => i.client_msg_id === clientMsgId);
    const item = index >= 0 ? this.items.splice(index, 1)[0] : null;
    if (clientMsgId === this.inFlight) {
      this.inFlight = null;
      this.backoff.reset();
    }
    return item;
  }

  /** The server refused the message in flight: the item dropped for good, or null. */
  onError(clientMsgId, error, now) {
    if (clientMsgId !== this.inFlight) return null;
    this.inFlight = null;
    if (CREDENTIAL_CODES.has(error.code)) {
      this.notBefore = Infinity;
      return null;
    }
    if (error.code === "rate_limited") {
      this.notBefore = now + (error.retry_after_ms ?? this.backoff.nextDelay());
      return null;
    }
    if (RETRYABLE.has(error.code)) {
      this.notBefore = now + this.backoff.nextDelay();
      return null;
    }
    const index = this.items.findIndex((i) => i.client_msg_id === clientMsgId);
    return index >= 0 ? this.items.splice(index, 1)[0] : null;
  }

  /** The socket went away: the message in flight goes again on the next one. */
  onDisconnect() {
    this.inFlight = null;
    if (this.notBefore === Infinity) this.notBefore = 0;
  }
}
