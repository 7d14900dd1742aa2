// What the app keeps across reloads, in localStorage: the logged-in session, and per device
// one record holding the inbox cursor, the outbox and the app's state built from the entries.
// The cursor and the state it covers sit in one key, so they are always written together.

const SESSION_KEY = "messenger.session";

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch {
    return null;
  }
}

/** `{user_id, username, device_id, token}` (token null once the server refused it), or null. */
export const loadSession = () => read(SESSION_KEY);
export const saveSession = (session) => localStorage.setItem(SESSION_KEY, JSON.stringify(session));
export const clearSession = () => localStorage.removeItem(SESSION_KEY);

/** After logging in as a new device of the same user (the old one was logged out), its
 * unsent messages move over: `client_msg_id` keys are per user, so none is stored twice. */
export function moveOutbox(userId, fromDevice, toDevice) {
  const from = new DeviceStore(userId, fromDevice);
  const to = new DeviceStore(userId, toDevice);
  for (const item of from.state.outbox) {
    if (!to.state.outbox.some((i) => i.client_msg_id === item.client_msg_id)) to.state.outbox.push(item);
  }
  to.save();
  from.drop();
}

/** One device's record: `state` is `{cursor, outbox, app}`; `save()` writes it whole. */
export class DeviceStore {
  constructor(userId, deviceId) {
    this.key = `messenger.device.${userId}.${deviceId}`;
    this.state = { cursor: "0", outbox: [], app: null, ...read(this.key) };
  }

  save() {
    localStorage.setItem(this.key, JSON.stringify(this.state));
  }

  drop() {
    localStorage.removeItem(this.key);
  }
}
