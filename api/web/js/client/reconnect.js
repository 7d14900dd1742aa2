// What to do when a socket ends: reconnect after a delay, or stop. No I/O.
//
// - `goaway`: the node is draining; come back after its `reconnect_after_ms` plus a little
//   jitter. Not a failure: the backoff starts over.
// - 4000: the server missed our heartbeats; reconnect at once (jittered).
// - 4001, or an upgrade refused with 401/403: the credentials are bad; stop (log in again).
// - 1013 (slow reader, a store down) and every other end: back off with full jitter.
//
// A browser never sees why an upgrade was refused (the socket just closes with 1006), so the
// client asks `GET /v1/users/me` after a socket that never said hello and passes that
// answer here as `refused` ({status, code}).

export const CLOSE_HEARTBEAT = 4000;
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_TRY_AGAIN = 1013;

/**
 * `closed`: `{code, error, goawayMs, uptimeMs, refused}` (any may be null);
 * returns `{delayMs}` or `{stop: code}` (the server's error code); updates `backoff`.
 */
export function plan(closed, backoff) {
  if ((closed.uptimeMs ?? 0) >= backoff.policy.stableAfterMs) backoff.reset();
  const refused = closed.refused;
  if (refused && (refused.status === 401 || refused.status === 403)) return { stop: refused.code };
  if (closed.code === CLOSE_UNAUTHORIZED) return { stop: closed.error?.code ?? "unauthorized" };
  if (closed.goawayMs != null) {
    backoff.reset();
    return { delayMs: closed.goawayMs + backoff.jitter() };
  }
  if (closed.code === CLOSE_HEARTBEAT) return { delayMs: backoff.jitter() };
  return { delayMs: backoff.nextDelay() };
}
