// A tiny DOM builder: `h("li", {class: "msg", dataset: {msgId}, onclick}, "text", child)`.
// Strings always become text nodes, so message bodies and names can never become markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

export function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** "online", or when the user was last seen. */
export function presenceText(info) {
  if (!info) return "";
  if (info.status === "online") return "online";
  if (!info.last_seen) return "offline";
  return `last seen ${new Date(info.last_seen).toLocaleString([], { dateStyle: "short", timeStyle: "short" })}`;
}

/** The form's named inputs as `{name: trimmed value}`. */
export function fields(form) {
  return Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, String(v).trim()]));
}
