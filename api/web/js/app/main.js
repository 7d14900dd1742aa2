// Entry point: the login screen, or the messenger for the stored session.

import { clearSession, loadSession, saveSession } from "../client/storage.js";
import { showLogin } from "./login.js";
import { Messenger } from "./messenger.js";

const base = new URL("..", document.baseURI); // the app lives at <server>/app/
const root = document.getElementById("root");

function start(session) {
  const app = new Messenger(base, session, {
    onStopped(code) { // the server refused the token: log in again as the same device
      saveSession({ ...session, token: null });
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
  showLogin(root, { base, previous: loadSession(), notice, onLoggedIn: start });
}

const session = loadSession();
if (session?.token) start(session);
else login(null);
