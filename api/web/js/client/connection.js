// One WebSocket to the gateway: open it with the browser subprotocols, read `hello`, ping on
// the server's heartbeat interval, count a socket that brings nothing for 3 intervals as dead
// (a half-open network: every ping is answered), and tell once how it ended. What the frames
// mean is the client's business (client.js).

export const HELLO_TIMEOUT_MS = 10_000;
export const MISSED_INTERVALS = 3;
const MIN_INTERVAL_MS = 50;

/**
 * Open a socket to `url` as the device of `token`. `handlers.onHello(hello)`,
 * `handlers.onFrame(frame)` for every later frame, and `handlers.onEnd(closed)` once, with
 * `closed = {code, reason, error, goawayMs, uptimeMs, hello}` (`code` null when there was no
 * close frame; `hello` false when the socket never said hello). Returns `{send, close}`.
 */
export function openLink(url, token, handlers, now = () => performance.now()) {
  const ws = new WebSocket(url, ["messenger.v1", `bearer.${token}`]);
  let hello = null;
  let openedAt = null;
  let lastFrameAt = now();
  let goawayMs = null;
  let error = null;
  let ended = false;
  let beat = null;
  const helloTimer = setTimeout(() => end(null, "no hello from the server"), HELLO_TIMEOUT_MS);

  function send(frame) {
    if (ended || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function end(code, reason) {
    if (ended) return;
    ended = true;
    clearTimeout(helloTimer);
    clearInterval(beat);
    ws.onmessage = ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
    handlers.onEnd({
      code, reason, error, goawayMs, hello: hello !== null,
      uptimeMs: openedAt === null ? 0 : now() - openedAt,
    });
  }

  function startHeartbeat(intervalMs) {
    const interval = Math.max(MIN_INTERVAL_MS, intervalMs);
    beat = setInterval(() => {
      if (now() - lastFrameAt >= MISSED_INTERVALS * interval) {
        end(null, "the server was silent for 3 heartbeat intervals");
      } else {
        send({ op: "ping" });
      }
    }, interval);
  }

  ws.onmessage = (event) => {
    lastFrameAt = now();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return; // not ours to read: skip it
    }
    if (frame === null || typeof frame !== "object") return;
    if (frame.op === "error" && frame.ref == null) error = frame;
    if (hello === null) {
      if (frame.op !== "hello") return;
      hello = frame;
      openedAt = now();
      clearTimeout(helloTimer);
      startHeartbeat(frame.heartbeat_interval_ms);
      handlers.onHello(frame);
      return;
    }
    if (frame.op === "goaway") goawayMs = frame.reconnect_after_ms;
    handlers.onFrame(frame);
  };
  ws.onclose = (event) => end(event.code === 1006 ? null : event.code, event.reason);
  return { send, close: () => end(null, "closed by the client") };
}
