// The open conversation: its history (paged back with `before=` as the user scrolls up),
// live messages, pending/sent/read state of one's own messages, typing and presence in the
// header, deleting, the composer (text, and photos or files with the text as caption), and
// the members panel of a group.

import { cmp, peerOf, targetOf } from "../client/ids.js";
import { clock, fields, h, presenceText } from "./dom.js";
import { Media, shownIds } from "./media.js";
import { deliveryState, messageOf } from "./model.js";

const PAGE = 50;
const TYPING_EVERY_MS = 2000;
const EVERYONE_WINDOW_MS = 24 * 3600 * 1000;

/** Whether entry `e` is the message of outbox `item` (same conversation, text and files). */
function isItemOf(e, item) {
  const ids = (list) => (list ?? []).map((a) => a.attachment_id).join(",");
  return e.conversation_id === item.conversation_id && e.body === item.body && ids(e.attachments) === ids(item.attachments);
}

export class ChatView {
  constructor(app) {
    this.app = app;
    this.cid = null;
    this.messages = new Map(); // msg_id -> message
    this.rendered = new Map(); // row id -> {key, li}: rows reused while unchanged
    this.hasMore = false;
    this.loading = false;
    this.loadFailed = false;
    this.linked = new Set(); // outbox items whose message already came back as an entry
    this.lastTyping = 0;
    this.showMembers = false;
    this.media = new Media(app.rest, (text) => this.notify(text));
    this.title = h("h2", { id: "chat-title" });
    this.subtitle = h("span", { class: "subtitle", id: "chat-subtitle" });
    this.typingLine = h("div", { class: "typing", id: "typing" });
    this.membersToggle = h("button", { class: "link", id: "members-toggle", onclick: () => { this.showMembers = !this.showMembers; this.render(); } }, "Members");
    this.actions = h("div", { class: "actions" }, this.membersToggle);
    this.memberList = h("ul", {});
    this.panel = h("section", { class: "members", id: "members", hidden: true },
      this.memberList,
      h("form", { class: "inline", id: "add-member", onsubmit: (e) => this.addMember(e) },
        h("input", { name: "username", placeholder: "Add by username", required: true, autocomplete: "off" }),
        h("button", { type: "submit" }, "Add")),
      h("button", { class: "danger", id: "leave-group", onclick: () => this.leave() }, "Leave group"));
    this.list = h("ol", { class: "messages", id: "messages", onscroll: () => this.onScroll() });
    this.notice = h("p", { class: "notice", id: "chat-notice", role: "status" });
    this.input = h("textarea", { name: "body", id: "composer-input", rows: 2, placeholder: "Message", oninput: () => this.onTyping(), onkeydown: (e) => this.onKey(e) });
    this.files = h("input", { type: "file", id: "attach-input", multiple: true, hidden: true, onchange: () => this.onFiles() });
    this.composer = h("form", { class: "composer", id: "composer", onsubmit: (e) => this.onSend(e) },
      this.files,
      h("button", { type: "button", id: "attach", class: "secondary", title: "Send photos or files", onclick: () => this.files.click() }, "Attach"),
      this.input, h("button", { type: "submit", id: "send" }, "Send"));
    this.body = h("div", { class: "chat-body", hidden: true },
      h("header", {}, h("div", {}, this.title, this.subtitle), this.actions),
      this.panel, this.list, this.typingLine, this.notice, this.composer);
    this.empty = h("p", { class: "empty" }, "Pick a conversation, or start one by username.");
    this.el = h("main", { class: "chat", id: "chat" }, this.empty, this.body, this.media.viewer);
  }

  conv() {
    return this.cid ? this.app.model.convs[this.cid] ?? null : null;
  }

  open(cid) {
    if (cid === this.cid) return;
    this.cid = cid;
    this.messages = new Map();
    this.rendered = new Map();
    this.hasMore = true;
    this.showMembers = false;
    this.notice.textContent = "";
    this.input.value = "";
    if (cid.startsWith("d:")) this.app.fetchPresence([peerOf(cid, this.app.me)]);
    this.loadOlder(true);
    this.input.focus();
  }

  close() {
    this.cid = null;
    this.app.render();
  }

  /** A line above the composer: an error, or (`info`) what is going on. */
  notify(text, info = false) {
    this.notice.textContent = text;
    this.notice.classList.toggle("info", info);
  }

  async loadOlder(first = false) {
    if (this.loading || !this.hasMore || !this.cid) return;
    const cid = this.cid;
    const oldest = [...this.messages.keys()].reduce((a, b) => (a && cmp(a, b) <= 0 ? a : b), null);
    this.loading = true;
    try {
      const page = await this.app.rest.history(cid, oldest, PAGE);
      if (cid !== this.cid) return;
      for (const msg of page) this.messages.set(msg.msg_id, msg);
      this.hasMore = page.length === PAGE;
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      this.render();
      this.list.scrollTop = first ? this.list.scrollHeight : this.list.scrollHeight - fromBottom;
    } catch (exc) {
      if (cid !== this.cid) return;
      this.loadFailed = true;
      this.notify(`History not loaded: ${exc.message}`);
    } finally {
      this.loading = false;
    }
  }

  /** Back online: load the history that could not be loaded while offline. */
  retryHistory() {
    if (!this.loadFailed) return;
    this.loadFailed = false;
    this.notice.textContent = "";
    this.loadOlder(this.messages.size === 0);
  }

  onScroll() {
    if (this.list.scrollTop < 40) this.loadOlder();
  }

  onEntries(entries) {
    const inFlight = this.app.client.outbox.items.find((i) => i.client_msg_id === this.app.client.outbox.inFlight);
    for (const e of entries) {
      if (e.kind === "message" && inFlight && e.sender_device_id === this.app.session.device_id && isItemOf(e, inFlight)) {
        this.linked.add(inFlight.client_msg_id); // stored: `sent` is on its way
      }
      if (e.conversation_id !== this.cid) continue;
      if (e.kind === "message") this.messages.set(e.msg_id, messageOf(e));
      else if (e.kind === "delete") this.messages.delete(e.msg_id);
    }
    const conv = this.conv();
    if (conv?.left) this.close();
  }

  onTyping() {
    const now = Date.now();
    if (now - this.lastTyping >= TYPING_EVERY_MS && this.input.value && this.app.client.typing(this.cid)) {
      this.lastTyping = now;
    }
  }

  onKey(event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      this.composer.requestSubmit();
    }
  }

  onSend(event) {
    event.preventDefault();
    try {
      this.app.client.enqueue(this.input.value, this.cid, targetOf(this.cid, this.app.me));
      this.input.value = "";
      this.notice.textContent = "";
      this.lastTyping = 0;
    } catch (exc) {
      this.notify(exc.message);
    }
    this.render();
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** Files chosen: upload them, then queue one message with them (and the composer's text);
   * a failed upload queues nothing and says why. */
  async onFiles() {
    const files = [...this.files.files];
    this.files.value = ""; // the same file may be chosen again
    if (files.length === 0) return;
    const cid = this.cid;
    const body = this.input.value.trim() ? this.input.value : "";
    this.input.value = "";
    this.notify(`Uploading ${files.length === 1 ? files[0].name : `${files.length} files`}…`, true);
    try {
      await this.app.client.sendFiles(files, body, cid, targetOf(cid, this.app.me));
      if (cid === this.cid) this.notify("");
    } catch (exc) {
      if (cid === this.cid && !this.input.value) this.input.value = body; // kept for another try
      this.notify(`Not sent: ${exc.message}`);
    }
    this.render();
    this.list.scrollTop = this.list.scrollHeight;
  }

  async remove(msg, scope) {
    try {
      await this.app.rest.deleteMessage(msg.msg_id, scope);
      this.messages.delete(msg.msg_id);
      this.render();
    } catch (exc) {
      this.notify(`Not deleted: ${exc.message}`);
    }
  }

  render() {
    const conv = this.conv();
    this.empty.hidden = conv !== null;
    this.body.hidden = conv === null;
    if (!conv) return;
    const app = this.app;
    this.title.textContent = app.title(conv);
    const peer = conv.kind === "direct" ? peerOf(conv.cid, app.me) : null;
    this.subtitle.textContent = conv.kind === "group" ? `${conv.members.length} members`
      : peer === app.me ? "" : presenceText(app.presence[peer]);
    this.subtitle.dataset.presence = app.presence[peer]?.status ?? "";
    const typing = app.typingIn(conv.cid).map((id) => app.name(id));
    this.typingLine.textContent = typing.length ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…` : "";
    this.renderActions(conv);
    this.renderMessages(conv);
  }

  renderActions(conv) {
    this.membersToggle.hidden = conv.kind !== "group";
    this.panel.hidden = !(conv.kind === "group" && this.showMembers);
    if (this.panel.hidden) return;
    const app = this.app;
    this.memberList.replaceChildren(...conv.members.map((id) => h("li", { dataset: { userId: id } },
      app.name(id), id === conv.ownerId ? " (owner)" : "", id === app.me ? " (you)" : "")));
  }

  async addMember(event) {
    event.preventDefault();
    const gid = this.cid.slice(2);
    try {
      const user = await this.app.rest.findUser(fields(event.target).username);
      await this.app.rest.addMembers(gid, [user.user_id]);
      event.target.reset();
    } catch (exc) {
      this.notify(exc.status === 404 ? "No such user." : exc.message);
    }
  }

  async leave() {
    const gid = this.cid.slice(2);
    try {
      await this.app.rest.removeMember(gid, this.app.me);
    } catch (exc) {
      this.notify(exc.message);
    }
  }

  renderMessages(conv) {
    const app = this.app;
    const list = this.list;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const sorted = [...this.messages.values()].sort((a, b) => cmp(a.msg_id, b.msg_id));
    const pending = app.client.outbox.items.filter((i) => i.conversation_id === conv.cid && !this.linked.has(i.client_msg_id));
    const older = h("li", { class: "older", id: "load-older", onclick: () => this.loadOlder() }, this.loading ? "Loading…" : "Older messages");
    const rendered = new Map();
    const keep = (id, key, build) => { // reuse an unchanged row (a click on it stays valid)
      const old = this.rendered.get(id);
      const li = old?.key === key ? old.li : build();
      rendered.set(id, { key, li });
      return li;
    };
    list.replaceChildren(
      ...(this.hasMore ? [older] : []),
      ...sorted.map((msg) => {
        const mine = msg.sender_id === app.me;
        const key = [msg.body, mine ? deliveryState(conv, msg) : app.name(msg.sender_id)].join("\n");
        return keep(msg.msg_id, key, () => this.message(conv, msg));
      }),
      ...pending.map((item) => keep(`pending:${item.client_msg_id}`, "", () =>
        h("li", { class: "msg mine pending", dataset: { clientMsgId: item.client_msg_id, state: "pending" } },
          this.media.view(item.attachments),
          h("div", { class: "body" }, item.body),
          h("div", { class: "meta" }, h("span", { class: "state" }, "pending"))))));
    this.rendered = rendered;
    this.media.release(new Set([...sorted, ...pending].flatMap((m) => shownIds(m.attachments))));
    if (nearBottom) list.scrollTop = list.scrollHeight;
  }

  message(conv, msg) {
    const app = this.app;
    const mine = msg.sender_id === app.me;
    const state = mine ? deliveryState(conv, msg) : null;
    const everyone = mine && Date.now() - Date.parse(msg.created_at) < EVERYONE_WINDOW_MS;
    return h("li", { class: `msg ${mine ? "mine" : "theirs"}`, dataset: { msgId: msg.msg_id, state: state ?? "" } },
      conv.kind === "group" && !mine ? h("div", { class: "sender" }, app.name(msg.sender_id)) : null,
      this.media.view(msg.attachments),
      h("div", { class: "body" }, msg.body),
      h("div", { class: "meta" },
        h("time", {}, clock(msg.created_at)),
        state ? h("span", { class: "state", title: state }, state === "read" ? "✓✓ read" : "✓ sent") : null,
        h("button", { class: "link delete-me", title: "Delete for me", onclick: () => this.remove(msg, "me") }, "delete for me"),
        everyone ? h("button", { class: "link delete-everyone", title: "Delete for everyone", onclick: () => this.remove(msg, "everyone") }, "delete for everyone") : null));
  }
}
