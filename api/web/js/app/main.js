// Entry point: the login screen, or the messenger for the stored session.

import { clearSession, loadSession, moveOutbox, saveSession } from "../client/storage.js";
import { showLogin } from "./login.js";
import { Messenger } from "./messenger.js";

const base = new URL("..", document.baseURI); // the app lives at <server>/app/
const root = document.getElementById("root");

function start(session) {
  const app = new Messenger(base, session, {
    onStopped(code) { // the token was refused: log in again (as the same device unless it
      // was logged out, which the server says with `unauthorized`)
      saveSession({ ...session, token: null, revoked: code === "unauthorized" });
      login(`Your session ended (${code}). Log in again; unsent messages are kept.`);
    },
    onLoggedOut() {
      clearSession();
      login(null);
    },
  });
  app.mount(root);
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
