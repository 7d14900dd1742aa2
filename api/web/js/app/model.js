// The app's picture of its conversations, built only from inbox entries (docs/sync.md): a
// device never asks "what is new in conversation X", it folds its inbox into local state.
// Plain data (saved as JSON with the cursor), changed only by `applyEntries`. No I/O.
//
// conversation: {cid, kind: "direct"|"group", title, members, ownerId, last, lastStale,
//                unreadIds, myRead, peerRead, activity, left}
// `unreadIds`: messages from others after my read marker (deleted ones drop out);
// `peerRead`: how far the peer of a direct chat has read (from its `read` entries);
// `activity`: the inbox position of the last message or membership change (list order);
// `lastStale`: the last message was deleted and the one before it must be fetched.

import { cmp, maxId } from "../client/ids.js";

export function emptyModel() {
  return { convs: {}, users: {} };
}

export function conversation(model, cid) {
  let conv = model.convs[cid];
  if (!conv) {
    conv = {
      cid, kind: cid.startsWith("g:") ? "group" : "direct", title: null, members: [],
      ownerId: null, last: null, lastStale: false, unreadIds: [], myRead: "0", peerRead: "0",
      activity: "0", left: false,
    };
    model.convs[cid] = conv;
  }
  return conv;
}

export const messageOf = (e) => ({
  msg_id: e.msg_id, conversation_id: e.conversation_id, sender_id: e.sender_id,
  sender_device_id: e.sender_device_id, body: e.body, created_at: e.created_at,
  attachments: e.attachments ?? [],
});

/** What stands for a message in a list, as the server's `preview`: its body, or for a
 * message of attachments alone "Photo", "3 photos", "File: <name>", "2 files", "3 attachments". */
export function previewText(msg) {
  const list = msg.attachments ?? [];
  if (msg.body || list.length === 0) return msg.body;
  const photos = list.filter((a) => a.content_type.startsWith("image/")).length;
  if (photos === list.length) return photos === 1 ? "Photo" : `${photos} photos`;
  if (list.length === 1) return `File: ${list[0].name}`;
  return photos === 0 ? `${list.length} files` : `${list.length} attachments`;
}

/** Fold entries (in inbox order) into `model`, as user `me`. */
export function applyEntries(model, me, entries) {
  for (const e of entries) {
    const conv = conversation(model, e.conversation_id);
    if (e.kind === "message") applyMessage(conv, me, e);
    else if (e.kind === "read") applyRead(conv, me, e.sender_id, e.up_to_msg_id ?? e.msg_id);
    else if (e.kind === "delete") applyDelete(conv, e.msg_id);
    else if (e.kind === "group_event" && e.group) applyGroup(conv, me, e);
  }
}

function applyMessage(conv, me, e) {
  conv.activity = maxId(conv.activity, e.id);
  if (!conv.last || cmp(e.msg_id, conv.last.msg_id) > 0) {
    conv.last = messageOf(e);
    conv.lastStale = false;
  }
  if (e.sender_id !== me && cmp(e.msg_id, conv.myRead) > 0 && !conv.unreadIds.includes(e.msg_id)) {
    conv.unreadIds.push(e.msg_id);
  }
}

/** A read marker moved: mine (from any of my devices) or the peer's (a read receipt). */
export function applyRead(conv, me, readerId, upTo) {
  if (readerId === me) {
    conv.myRead = maxId(conv.myRead, upTo);
    conv.unreadIds = conv.unreadIds.filter((id) => cmp(id, conv.myRead) > 0);
  } else {
    conv.peerRead = maxId(conv.peerRead, upTo);
  }
}

function applyDelete(conv, msgId) {
  conv.unreadIds = conv.unreadIds.filter((id) => id !== msgId);
  if (conv.last && conv.last.msg_id === msgId) {
    conv.last = null;
    conv.lastStale = true;
  }
}

function applyGroup(conv, me, e) {
  const group = e.group;
  conv.title = group.name;
  conv.members = group.member_ids;
  conv.ownerId = group.owner_id;
  const removed = group.event === "member_removed" && group.user_ids.includes(me);
  conv.left = removed || !group.member_ids.includes(me);
  if (!removed) conv.activity = maxId(conv.activity, e.id);
}

/** The conversations to list, most recent activity first (groups one left are not listed). */
export function listed(model) {
  return Object.values(model.convs)
    .filter((c) => !c.left && cmp(c.activity, "0") > 0)
    .sort((a, b) => cmp(b.activity, a.activity));
}

/** A message's delivery state as its sender sees it: "read" once the peer of a direct chat
 * read up to it, else "sent" (pending messages are still in the outbox). */
export function deliveryState(conv, msg) {
  return conv.kind === "direct" && cmp(msg.msg_id, conv.peerRead) <= 0 ? "read" : "sent";
}
