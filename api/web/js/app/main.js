// Entry point: the login screen, or the messenger for the stored session.

import { clearSession, loadSession, moveOutbox, saveSession } from "../client/storage.js";
import { h } from "./dom.js";
import { showLogin } from "./login.js";
import { Messenger } from "./messenger.js";

const base = new URL("..", document.baseURI); // the app lives at <server>/app/
const root = document.getElementById("root");

function start(session) {
  runAlone(session, () => new Promise((release) => {
    const app = new Messenger(base, session, {
      onStopped(code) { // the token was refused: log in again (as the same device unless it
        // was logged out, which the server says with `unauthorized`)
        release();
        saveSession({ ...session, token: null, revoked: code === "unauthorized" });
        login(`Your session ended (${code}). Log in again; unsent messages are kept.`);
      },
      onLoggedOut() {
        release();
        clearSession();
        login(null);
      },
    });
    app.mount(root);
  }));
}

/** One tab per device: two would both write the device's cursor and state. A second tab
 * waits (Web Locks) and takes over when the first one closes. `run` returns a promise that
 * settles when the app stops; the lock is held until then. */
function runAlone(session, run) {
  if (!navigator.locks) { // not a secure context (plain http on a non-local address)
    run();
    return;
  }
  const name = `messenger.device.${session.device_id}`;
  navigator.locks.request(name, { ifAvailable: true }, (lock) => {
    if (lock) return run();
    root.replaceChildren(h("p", { class: "empty", id: "other-tab" },
      "Inbox Messenger is open in another tab. It continues here when that tab closes."));
    return navigator.locks.request(name, run);
  });
}

function login(notice) {
  const previous = loadSession();
  showLogin(root, {
    base, previous, notice,
    onLoggedIn(session) {
      if (previous?.user_id === session.user_id && previous.device_id !== session.device_id) {
        moveOutbox(session.user_id, previous.device_id, session.device_id);
      }
      start(session);
    },
  });
}

const session = loadSession();
if (session?.token) start(session);
else login(null);
