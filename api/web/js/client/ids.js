// Ids are 64-bit integers sent as decimal strings: JavaScript numbers cannot hold them, so
// they stay strings and are compared as BigInt.

/** -1, 0 or 1 as id `a` is below, equal to or above id `b`. */
export function cmp(a, b) {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const maxId = (a, b) => (cmp(a, b) >= 0 ? a : b);

/** The conversation id of the direct chat of users `a` and `b` (lower id first). */
export function directId(a, b) {
  return cmp(a, b) <= 0 ? `d:${a}:${b}` : `d:${b}:${a}`;
}

export const groupConversationId = (groupId) => `g:${groupId}`;

/** The other user of a direct conversation (oneself for notes to self). */
export function peerOf(cid, me) {
  const [, a, b] = cid.split(":");
  return a === me ? b : a;
}

/** The send target of a conversation: `{to_user}` or `{to_group}`. */
export function targetOf(cid, me) {
  return cid.startsWith("g:") ? { to_group: cid.slice(2) } : { to_user: peerOf(cid, me) };
}

/** A fresh random key (for `client_msg_id`, `client_group_id`); works without HTTPS. */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
