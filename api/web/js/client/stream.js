// The inbox cursor of one device: which entries reach the app, in order, each once. No I/O.
//
// On a new socket the server streams live entries from the moment it registered the socket,
// before it has read our `sync`; those could jump ahead of the replay (which brings them
// again, in order), so only `entries` frames after the answer to our latest `sync`
// (`sync_started` with our cursor) count. Entries at or below the cursor are duplicates.

import { cmp } from "./ids.js";

export const IDLE = "idle"; // no socket
export const AWAITING_SYNC = "awaiting_sync"; // our sync is on its way: entries are stale
export const STREAMING = "streaming"; // entries follow our cursor

export class InboxStream {
  constructor(cursor = "0") {
    this.cursor = cursor;
    this.state = IDLE;
    this.syncCursor = null;
  }

  /** A new socket is about to send `sync`: the cursor to send. */
  startSync() {
    this.state = AWAITING_SYNC;
    this.syncCursor = this.cursor;
    return this.cursor;
  }

  /** The server took a sync; true if it is ours (a stray one is ignored). */
  onSyncStarted(cursor) {
    if (this.state !== AWAITING_SYNC || cmp(cursor, this.syncCursor) !== 0) return false;
    this.state = STREAMING;
    return true;
  }

  /** An `entries` frame: the entries to apply (none before `sync_started`). */
  onFrame(entries) {
    return this.state === STREAMING ? this.accept(entries) : [];
  }

  /** Entries in inbox order: the ones not seen yet; the cursor moves past them. */
  accept(entries) {
    const fresh = [];
    for (const entry of entries) {
      if (cmp(entry.id, this.cursor) > 0) {
        fresh.push(entry);
        this.cursor = entry.id;
      }
    }
    return fresh;
  }

  onDisconnect() {
    this.state = IDLE;
    this.syncCursor = null;
  }
}
