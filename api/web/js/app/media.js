// Photos and files of messages. `<img src>` cannot carry the bearer token, so images are
// fetched with it as Blobs and shown through object URLs, which the chat releases once their
// messages leave the view. A photo shows as its thumbnail and opens full size on a click;
// any other file is a "name (size)" button that downloads it, with the token too.

import { h } from "./dom.js";

const THUMB_BOX = 240; // the longest side a thumbnail is shown at (px)
const DOWNLOAD_URL_MS = 60_000; // a download's object URL outlives the click by this much

/** A byte count for people: "812 B", "4.2 KB", "17 MB". */
export function sizeText(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let n = bytes;
  let unit = 0;
  while (n >= 1000 && unit < units.length - 1) {
    n /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[unit]}`;
}

/** The ids a message's attachments show (each one, and the thumbnails of its photos). */
export function shownIds(attachments = []) {
  return attachments.flatMap((a) => (a.thumbnail_id ? [a.attachment_id, a.thumbnail_id] : [a.attachment_id]));
}

export class Media {
  /** `rest`: the device's Rest; `notify(text)`: shows an error in the chat. */
  constructor(rest, notify) {
    this.rest = rest;
    this.notify = notify;
    this.urls = new Map(); // attachment id -> Promise of its object URL
    this.shown = null; // the attachment id of the full image on screen
    this.full = h("img", { id: "viewer-image", alt: "" });
    this.viewer = h("div", { class: "viewer", id: "viewer", hidden: true, onclick: () => this.close() }, this.full);
    document.addEventListener("keydown", (e) => { if (e.key === "Escape") this.close(); });
  }

  /** An object URL of attachment `id`, fetched once while it is shown. */
  url(id) {
    let url = this.urls.get(id);
    if (!url) {
      url = this.rest.download(id).then((blob) => URL.createObjectURL(blob));
      url.catch(() => this.urls.delete(id)); // fetched again when shown again
      this.urls.set(id, url);
    }
    return url;
  }

  /** Revoke the URLs of every attachment not in `keep` (a Set of ids still shown). */
  release(keep) {
    for (const [id, url] of this.urls) {
      if (keep.has(id)) continue;
      if (id === this.shown) this.close();
      this.urls.delete(id);
      url.then((u) => URL.revokeObjectURL(u), () => {});
    }
  }

  /** A message's attachments, or null when it has none. */
  view(attachments) {
    if (!attachments?.length) return null;
    return h("div", { class: "attachments" }, attachments.map((a) => (a.thumbnail_id ? this.photo(a) : this.file(a))));
  }

  photo(a) {
    const scale = Math.min(1, THUMB_BOX / Math.max(a.width ?? 0, a.height ?? 0, 1));
    const size = a.width ? { width: Math.round(a.width * scale), height: Math.round(a.height * scale) } : {};
    const img = h("img", { class: "photo", alt: a.name, title: a.name, ...size,
      dataset: { attachmentId: a.attachment_id }, onclick: () => this.open(a) });
    this.url(a.thumbnail_id).then((url) => { img.src = url; }, () => { img.alt = `${a.name} (not loaded)`; });
    return img;
  }

  file(a) {
    return h("button", { type: "button", class: "link file", title: `Download ${a.name}`,
      dataset: { attachmentId: a.attachment_id }, onclick: () => this.download(a) },
    `${a.name} (${sizeText(a.size)})`);
  }

  /** Show the full image over the page. */
  async open(a) {
    this.full.removeAttribute("src");
    this.full.alt = a.name;
    this.shown = a.attachment_id;
    this.viewer.hidden = false;
    try {
      this.full.src = await this.url(a.attachment_id);
    } catch (exc) {
      this.close();
      this.notify(`${a.name} not loaded: ${exc.message}`);
    }
  }

  close() {
    this.shown = null;
    this.viewer.hidden = true;
  }

  /** Save the file under its name: fetched with the token, handed over as an object URL. */
  async download(a) {
    try {
      const url = URL.createObjectURL(await this.rest.download(a.attachment_id));
      h("a", { href: url, download: a.name }).click();
      setTimeout(() => URL.revokeObjectURL(url), DOWNLOAD_URL_MS);
    } catch (exc) {
      this.notify(`${a.name} not downloaded: ${exc.message}`);
    }
  }
}
