// The sign-up and log-in screen. A device that was logged in before (its session is kept
// after the server refused its token) logs in again as the same device, so it keeps its
// cursor and its unsent messages.

import { Rest } from "../client/rest.js";
import { saveSession } from "../client/storage.js";
import { fields, h } from "./dom.js";

export function showLogin(root, { base, previous, notice, onLoggedIn }) {
  const rest = new Rest(base);
  const error = h("p", { class: "error", id: "login-error", role: "alert" });
  const form = h("form", { class: "login", id: "login-form" },
    h("h1", {}, "Inbox Messenger"),
    notice ? h("p", { class: "notice" }, notice) : null,
    h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true, value: previous?.username ?? "" })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("label", {}, "Display name (sign up only)", h("input", { name: "display_name", autocomplete: "nickname" })),
    h("div", { class: "buttons" },
      h("button", { type: "submit", name: "login", id: "login-button" }, "Log in"),
      h("button", { type: "submit", name: "signup", id: "signup-button", class: "secondary" }, "Sign up")),
    error);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const signup = event.submitter?.name === "signup";
    const { username, password, display_name: displayName } = fields(form);
    error.textContent = "";
    form.classList.add("busy");
    try {
      if (signup) await rest.signup(username, password, displayName || null);
      const again = previous?.username === username && !previous.revoked ? previous.device_id : null;
      const login = await loginDevice(rest, username, password, again);
      const session = { user_id: login.user_id, username, device_id: login.device_id, token: login.access_token };
      saveSession(session);
      onLoggedIn(session);
    } catch (exc) {
      error.textContent = exc.message;
    } finally {
      form.classList.remove("busy");
    }
  });
  root.replaceChildren(form);
}

async function loginDevice(rest, username, password, deviceId) {
  try {
    return await rest.login(username, password, deviceId);
  } catch (exc) {
    if (deviceId && (exc.status === 404 || exc.status === 403)) return rest.login(username, password);
    throw exc;
  }
}
