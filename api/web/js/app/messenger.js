// The logged-in app: one Client (the device's socket, cursor and outbox), the model folded
// from its entries, and the two views (conversation list, open chat). Holds what only lives
// while the page is open: presence, typing, names being looked up, reads on their way.

import { Client } from "../client/client.js";
import { cmp, peerOf } from "../client/ids.js";
import { Rest } from "../client/rest.js";
import { DeviceStore } from "../client/storage.js";
import { ChatView } from "./chat.js";
import { h } from "./dom.js";
import { applyEntries, conversation, emptyModel, listed, previewText } from "./model.js";
import { Sidebar } from "./sidebar.js";

const TYPING_SHOWN_MS = 4000;

export class Messenger {
  constructor(base, session, hooks) {
    this.session = session;
    this.me = session.user_id;
    this.hooks = hooks;
    this.rest = new Rest(base, session.token);
    this.store = new DeviceStore(session.user_id, session.device_id);
    this.model = this.store.state.app ?? emptyModel();
    this.store.state.app = this.model;
    this.client = new Client({
      base, token: session.token, store: this.store, rest: this.rest,
      apply: (entries) => applyEntries(this.model, this.me, entries),
    });
    this.presence = {}; // user id -> {status, last_seen}
    this.typing = {}; // conversation id -> {user id: shown until (ms)}
    this.pendingRead = {}; // conversation id -> the read sent, until its entry comes back
    this.lookups = new Map();
    this.renderQueued = false;
    this.sidebar = new Sidebar(this);
    this.chat = new ChatView(this);
    this.listen();
  }

  listen() {
    const on = (type, fn) => this.client.addEventListener(type, (event) => fn(event.detail));
    on("entries", (entries) => {
      const newPeers = [];
      for (const e of entries) {
        if (e.kind !== "message") continue;
        delete this.typing[e.conversation_id]?.[e.sender_id];
        if (e.conversation_id.startsWith("d:") && !(e.sender_id in this.presence)) newPeers.push(e.sender_id);
      }
      this.fetchPresence(newPeers); // a new contact: presence frames come only on changes
      this.chat.onEntries(entries);
      this.refreshStale();
      this.render();
    });
    on("status", (status) => {
      if (status.state === "online") this.whenOnline();
      this.render();
    });
    for (const type of ["sent", "outbox"]) on(type, () => this.render());
    on("failed", ({ item, error }) => { // refused for good: dropped from the outbox
      this.sidebar.error.textContent = `Not sent: “${previewText(item).slice(0, 40)}”: ${error.message}`;
    });
    on("presence", (frame) => {
      this.presence[frame.user_id] = { status: frame.status, last_seen: frame.last_seen };
      this.render();
    });
    on("typing", (frame) => {
      (this.typing[frame.conversation_id] ??= {})[frame.user_id] = Date.now() + TYPING_SHOWN_MS;
      setTimeout(() => this.render(), TYPING_SHOWN_MS + 50);
      this.render();
    });
    on("stopped", ({ code }) => this.hooks.onStopped(code));
    document.addEventListener("visibilitychange", () => this.render());
  }

  mount(root) {
    root.replaceChildren(h("div", { class: "app" }, this.sidebar.el, this.chat.el));
    this.client.start();
    this.render();
  }

  /** Re-render both views once, after the current batch of events. */
  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.sidebar.render();
      this.chat.render();
      this.markRead();
    });
  }

  /** A user's display name (looked up once, then kept in the model). */
  name(userId) {
    const user = this.model.users[userId];
    if (!user && !this.lookups.has(userId)) {
      this.lookups.set(userId, this.rest.user(userId).then((u) => {
        this.model.users[userId] = { username: u.username, display_name: u.display_name };
        this.store.save();
        this.render();
      }, () => this.lookups.delete(userId)));
    }
    return user?.display_name ?? user?.username ?? "…";
  }

  title(conv) {
    if (conv.kind === "group") return conv.title ?? "Group";
    const peer = peerOf(conv.cid, this.me);
    return peer === this.me ? `${this.name(peer)} (notes to self)` : this.name(peer);
  }

  unread(conv) {
    const sent = this.pendingRead[conv.cid];
    return conv.unreadIds.filter((id) => !sent || cmp(id, sent) > 0).length;
  }

  typingIn(cid) {
    const now = Date.now();
    return Object.entries(this.typing[cid] ?? {}).filter(([, until]) => until > now).map(([user]) => user);
  }

  open(cid) {
    conversation(this.model, cid); // listed once it has a message (or a group event)
    this.chat.open(cid);
    this.render();
  }

  /** The open chat is on screen: read up to its newest unread message. */
  markRead() {
    const conv = this.chat.conv();
    if (!conv || document.visibilityState !== "visible" || this.unread(conv) === 0) return;
    const upTo = conv.unreadIds.reduce((a, b) => (cmp(a, b) >= 0 ? a : b));
    if (this.client.read(conv.cid, upTo)) {
      this.pendingRead[conv.cid] = upTo;
      this.sidebar.render();
    }
  }

  whenOnline() {
    this.chat.retryHistory();
    for (const [cid, upTo] of Object.entries(this.pendingRead)) { // lost with the last socket?
      const conv = this.model.convs[cid];
      if (conv && cmp(conv.myRead, upTo) < 0) this.client.read(cid, upTo);
    }
    const peers = listed(this.model).filter((c) => c.kind === "direct").map((c) => peerOf(c.cid, this.me));
    this.fetchPresence(peers);
  }

  async fetchPresence(userIds) {
    const ids = [...new Set(userIds)].filter((id) => id !== this.me).slice(0, 200);
    if (ids.length === 0) return;
    try {
      Object.assign(this.presence, await this.rest.presence(ids));
      this.render();
    } catch { /* offline: presence frames and the next connect bring it */ }
  }

  /** Conversations whose last message was deleted: fetch the one before it. */
  async refreshStale() {
    for (const conv of Object.values(this.model.convs)) {
      if (!conv.lastStale || conv.left) continue;
      try {
        const [last] = await this.rest.history(conv.cid, null, 1);
        if (conv.lastStale) Object.assign(conv, { last: last ?? null, lastStale: false });
        this.store.save();
        this.render();
      } catch { /* tried again after the next entries */ }
    }
  }

  async logout() {
    this.client.stop();
    try {
      await this.rest.logout(this.session.device_id);
    } catch { /* the token goes with the session anyway */ }
    this.store.drop();
    this.hooks.onLoggedOut();
  }
}
