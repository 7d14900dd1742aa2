// One logged-in device: keeps a WebSocket open, applies its inbox in order with no gap and no
// duplicate across reconnects, and sends through an outbox that survives reloads. The same
// rules as the Python client (messenger_client): sync from the stored cursor on every socket
// and apply entries only after `sync_started`; ack what was applied (within half a second,
// at once when the tab goes away); ping on the server's interval; reconnect with full-jitter
// backoff, after `goaway` when told, at once after 4000, never after 4001. Attachments are
// uploaded first; only then is their message queued.
//
// Events (CustomEvent, in `detail`): "status" {state: connecting|online|offline|stopped,
// retryAt, sessionId}, "entries" [entries just applied], "sent" {item, receipt},
// "failed" {item, error}, "outbox" (the queue changed), "presence" frame, "typing" frame,
// "stopped" {code} (credentials refused: log in again).

import { Backoff } from "./backoff.js";
import { bodyProblem, Outbox } from "./outbox.js";
import { plan } from "./reconnect.js";
import { InboxStream } from "./stream.js";
import { openLink } from "./connection.js";
import { randomKey } from "./ids.js";

const SEND_REF = "send:";
const ACK_DELAY_MS = 500;

export class Client extends EventTarget {
  /**
   * `base`: the server's root URL; `store`: this device's DeviceStore; `rest`: a Rest with its
   * token; `apply(entries)`: folds entries into `store.state.app`, synchronously (the cursor
   * is saved with what it covers right after).
   */
  constructor({ base, token, store, rest, apply, backoff = new Backoff(), now = () => Date.now() }) {
    super();
    this.url = new URL("v1/ws", base);
    this.url.protocol = this.url.protocol === "https:" ? "wss:" : "ws:";
    this.token = token;
    this.store = store;
    this.rest = rest;
    this.apply = apply;
    this.backoff = backoff;
    this.now = now;
    this.stream = new InboxStream(store.state.cursor);
    this.outbox = new Outbox(store.state.outbox, backoff);
    this.status = { state: "offline", retryAt: null, sessionId: null };
    this.link = null;
    this.ready = false; // hello received on the current socket
    this.stopped = false;
    this.retryTimer = null;
    this.outboxTimer = null;
    this.ackTimer = null;
    this.acked = null;
    this.onOnline = () => this.reconnectNow();
    this.onPageHide = () => this.sendAck(); // the tab closes: ack now, not after the delay
  }

  start() {
    window.addEventListener("online", this.onOnline);
    window.addEventListener("pagehide", this.onPageHide);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("pagehide", this.onPageHide);
    for (const timer of [this.retryTimer, this.outboxTimer]) clearTimeout(timer);
    this.sendAck(); // what was applied is not pushed once the socket is gone
    this.link?.close();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setStatus(state, extra = {}) {
    this.status = { state, retryAt: null, sessionId: this.status.sessionId, ...extra };
    this.emit("status", this.status);
  }

  /** Queue a message for `conversationId` (`target`: {to_user} or {to_group}), with the
   * metadata of already uploaded `attachments`; throws when the server would refuse it for good. */
  enqueue(body, conversationId, target, attachments = []) {
    const problem = bodyProblem(body, attachments.length);
    if (problem) throw new Error(problem);
    const item = { client_msg_id: randomKey(), body, conversation_id: conversationId, ...target, queued_at: new Date().toISOString() };
    if (attachments.length) item.attachments = attachments;
    this.outbox.add(item);
    this.saveOutbox();
    this.pump();
    return item;
  }

  /** Upload `files` (Files), then queue one message carrying them. Nothing is
   * queued when an upload fails (it throws); uploads are not retried, sends are. */
  async sendFiles(files, body, conversationId, target) {
    const problem = bodyProblem(body, files.length);
    if (problem) throw new Error(problem);
    const attachments = [];
    for (const file of files) attachments.push(await this.rest.upload(file));
    return this.enqueue(body, conversationId, target, attachments);
  }

  /** Tell the peers we are typing; false while offline (typing is never queued). */
  typing(conversationId) {
    return this.ready && this.link.send({ op: "typing", conversation_id: conversationId });
  }

  /** Move the read marker over the socket; false while offline. */
  read(conversationId, upToMsgId) {
    return this.ready && this.link.send({ op: "read", conversation_id: conversationId, up_to_msg_id: upToMsgId });
  }

  reconnectNow() {
    if (this.stopped || this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  connect() {
    this.retryTimer = null;
    this.setStatus("connecting");
    this.link = openLink(this.url, this.token, {
      onHello: (hello) => this.onHello(hello),
      onFrame: (frame) => this.onFrame(frame),
      onEnd: (closed) => this.onEnd(closed),
    });
  }

  onHello(hello) {
    this.ready = true;
    this.status.sessionId = hello.session_id;
    this.link.send({ op: "sync", cur_max_msg_id: this.stream.startSync() });
    this.pump();
  }

  onFrame(frame) {
    switch (frame.op) {
      case "sync_started":
        if (this.stream.onSyncStarted(frame.cur_max_msg_id)) {
          this.setStatus("online");
          this.scheduleAck();
        }
        break;
      case "entries":
        this.onEntries(frame.entries ?? []);
        break;
      case "sent":
        this.onSent(frame);
        break;
      case "error":
        if (typeof frame.ref === "string" && frame.ref.startsWith(SEND_REF)) {
          this.onSendError(frame.ref.slice(SEND_REF.length), frame);
        }
        break;
      case "presence":
      case "typing":
        this.emit(frame.op, frame);
        break;
      default: // pong, goaway (seen by the link) and ops this client does not know
    }
  }

  onEntries(entries) {
    const fresh = this.stream.onFrame(entries);
    if (fresh.length === 0) return;
    this.apply(fresh);
    this.store.state.cursor = this.stream.cursor;
    this.store.save();
    this.emit("entries", fresh);
    this.scheduleAck();
  }

  /** Ack the applied entries soon (one ack covers a burst): live deliveries not acked
   * within the server's ack window are pushed to this device after all. */
  scheduleAck() {
    if (this.ackTimer === null) this.ackTimer = setTimeout(() => this.sendAck(), ACK_DELAY_MS);
  }

  sendAck() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const cursor = this.stream.cursor;
    if (cursor !== this.acked && cursor !== "0" && this.ready) {
      if (this.link.send({ op: "ack", cur_max_msg_id: cursor })) this.acked = cursor;
    }
  }

  onSent(receipt) {
    const item = this.outbox.onSent(receipt.client_msg_id);
    this.saveOutbox();
    if (item) this.emit("sent", { item, receipt });
    this.pump();
  }

  onSendError(clientMsgId, error) {
    const dropped = this.outbox.onError(clientMsgId, error, this.now());
    this.saveOutbox();
    if (dropped) this.emit("failed", { item: dropped, error });
    this.pump();
  }

  saveOutbox() {
    this.store.state.outbox = this.outbox.items;
    this.store.save();
    this.emit("outbox", this.outbox.items);
  }

  /** Send the oldest pending message when nothing is in flight, or wake up when one may go. */
  pump() {
    clearTimeout(this.outboxTimer);
    this.outboxTimer = null;
    if (!this.ready) return;
    const item = this.outbox.nextToSend(this.now());
    if (item) {
      const { client_msg_id, body, to_user, to_group, attachments } = item;
      const target = to_group != null ? { to_group } : { to_user };
      const ids = attachments ? { attachments: attachments.map((a) => a.attachment_id) } : {};
      this.link.send({ op: "send", ...target, body, ...ids, client_msg_id, ref: SEND_REF + client_msg_id });
      return;
    }
    const wake = this.outbox.wakeAt();
    if (wake !== null && wake !== Infinity) {
      this.outboxTimer = setTimeout(() => this.pump(), Math.max(0, wake - this.now()));
    }
  }

  async onEnd(closed) {
    this.ready = false;
    this.link = null;
    this.outbox.onDisconnect();
    this.stream.onDisconnect();
    if (this.stopped) return;
    let refused = null;
    if (!closed.hello && closed.code === null) {
      try {
        await this.rest.me(); // the browser hides why an upgrade failed: ask over HTTP
      } catch (exc) {
        refused = { status: exc.status, code: exc.code };
      }
    }
    if (this.stopped) return;
    const next = plan({ ...closed, refused }, this.backoff);
    if (next.stop) {
      this.stopped = true;
      this.setStatus("stopped");
      this.emit("stopped", { code: next.stop });
      return;
    }
    this.setStatus("offline", { retryAt: this.now() + next.delayMs });
    this.retryTimer = setTimeout(() => this.connect(), next.delayMs);
  }
}
