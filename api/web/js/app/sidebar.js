// The left column: who is logged in and the connection state, starting a 1:1 chat by
// username, creating a group, and the conversation list (unread badges, last message).

import { directId, peerOf, randomKey } from "../client/ids.js";
import { clock, fields, h } from "./dom.js";
import { conversation, listed, previewText } from "./model.js";

export class Sidebar {
  constructor(app) {
    this.app = app;
    this.status = h("span", { class: "status", id: "status" });
    this.retry = h("button", { class: "link", id: "retry", hidden: true, onclick: () => app.client.reconnectNow() }, "Retry now");
    this.error = h("p", { class: "error", id: "sidebar-error", role: "alert" });
    this.list = h("ul", { class: "conversations", id: "conversations" });
    this.el = h("aside", { class: "sidebar" },
      h("header", {},
        h("div", { class: "me" }, h("strong", { id: "me" }, app.session.username), this.status, this.retry),
        h("button", { class: "link", id: "logout", onclick: () => app.logout() }, "Log out")),
      h("form", { id: "new-chat", class: "inline", onsubmit: (e) => this.newChat(e) },
        h("input", { name: "username", placeholder: "Chat with username", required: true, autocomplete: "off" }),
        h("button", { type: "submit" }, "Chat")),
      h("form", { id: "new-group", class: "inline", onsubmit: (e) => this.newGroup(e) },
        h("input", { name: "name", placeholder: "New group name", required: true, autocomplete: "off" }),
        h("input", { name: "members", placeholder: "usernames, comma separated", autocomplete: "off" }),
        h("button", { type: "submit" }, "Create")),
      this.error,
      this.list);
  }

  async newChat(event) {
    event.preventDefault();
    const form = event.target;
    await this.guard(async () => {
      const user = await this.app.rest.findUser(fields(form).username);
      this.app.model.users[user.user_id] = { username: user.username, display_name: user.display_name };
      form.reset();
      this.app.open(directId(this.app.me, user.user_id));
    });
  }

  async newGroup(event) {
    event.preventDefault();
    const form = event.target;
    const { name, members } = fields(form);
    await this.guard(async () => {
      const names = members.split(",").map((s) => s.trim()).filter(Boolean);
      const users = await Promise.all(names.map((n) => this.app.rest.findUser(n)));
      const group = await this.app.rest.createGroup(name, users.map((u) => u.user_id), randomKey());
      const conv = conversation(this.app.model, `g:${group.group_id}`);
      conv.title ??= group.name; // the group_event entry brings the same, moments later
      form.reset();
      this.app.open(conv.cid);
    });
  }

  /** Run a user action; show its error under the forms. */
  async guard(action) {
    this.error.textContent = "";
    try {
      await action();
    } catch (exc) {
      this.error.textContent = exc.status === 404 ? "No such user." : exc.message;
    }
  }

  render() {
    const { state, retryAt, sessionId } = this.app.client.status;
    const waitS = retryAt ? Math.max(0, Math.round((retryAt - Date.now()) / 1000)) : 0;
    this.status.textContent = { online: "online", connecting: "connecting…", stopped: "signed out",
      offline: `offline, retrying in ${waitS}s` }[state];
    this.status.dataset.state = state;
    this.status.dataset.session = sessionId ?? "";
    this.retry.hidden = state !== "offline";
    if (state === "offline") setTimeout(() => this.app.render(), 1000); // the countdown
    this.list.replaceChildren(...listed(this.app.model).map((conv) => this.item(conv)));
  }

  sender(conv, msg) {
    if (msg.sender_id === this.app.me) return "You: ";
    return conv.kind === "group" ? `${this.app.name(msg.sender_id)}: ` : "";
  }

  item(conv) {
    const app = this.app;
    const unread = app.unread(conv);
    const last = conv.last;
    const peer = conv.kind === "direct" ? peerOf(conv.cid, app.me) : null;
    const online = peer && peer !== app.me && app.presence[peer]?.status === "online";
    return h("li", {
      class: `conversation${conv.cid === app.chat.cid ? " active" : ""}`,
      dataset: { cid: conv.cid, unread: String(unread) },
      onclick: () => app.open(conv.cid),
    },
    h("div", { class: "row" },
      h("span", { class: "title" }, online ? h("span", { class: "dot", title: "online" }) : null, app.title(conv)),
      last ? h("time", {}, clock(last.created_at)) : null),
    h("div", { class: "row" },
      h("span", { class: "last" }, last ? `${this.sender(conv, last)}${previewText(last)}` : "no messages yet"),
      unread ? h("span", { class: "badge" }, String(unread)) : null));
  }
}
