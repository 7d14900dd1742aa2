// The REST API (docs/api.md) as one method per route, acting as one device. I/O only: every
// non-2xx answer becomes an `ApiError` with the server's code; no answer at all is status 0.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

export class Rest {
  /** `base`: the server's root URL (ending in "/"); `token`: a device's access token. */
  constructor(base, token = null) {
    this.base = base;
    this.token = token;
  }

  /** The answer to a request as a Response; a non-2xx answer or none at all throws. */
  async request(method, path, { body, query, type } = {}) {
    const url = new URL(path.replace(/^\//, ""), this.base);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value != null) url.searchParams.set(key, value);
    }
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (type) headers["Content-Type"] = type;
    let response;
    try {
      response = await fetch(url, { method, headers, body });
    } catch (exc) {
      throw new ApiError(0, "offline", `the server cannot be reached (${exc.message})`);
    }
    if (response.ok) return response;
    const error = (await response.json().catch(() => null))?.error ?? {};
    const retry = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, error.code ?? "http_error", error.message ?? response.statusText, retry);
  }

  /** A JSON route: its answer parsed (null for 204). */
  async call(method, path, { body, query } = {}) {
    const json = body === undefined ? {} : { body: JSON.stringify(body), type: "application/json" };
    const response = await this.request(method, path, { query, ...json });
    return response.status === 204 ? null : response.json().catch(() => null);
  }

  signup(username, password, displayName) {
    return this.call("POST", "/v1/auth/signup", {
      body: { username, password, ...(displayName ? { display_name: displayName } : {}) },
    });
  }

  login(username, password, deviceId = null) {
    return this.call("POST", "/v1/auth/login", {
      body: { username, password, platform: "web", device_name: "Web browser", ...(deviceId ? { device_id: deviceId } : {}) },
    });
  }

  logout(deviceId) { return this.call("DELETE", `/v1/devices/${deviceId}`); }
  me() { return this.call("GET", "/v1/users/me"); }
  user(userId) { return this.call("GET", `/v1/users/${userId}`); }
  findUser(username) { return this.call("GET", "/v1/users", { query: { username } }); }
  group(groupId) { return this.call("GET", `/v1/groups/${groupId}`); }

  createGroup(name, memberIds, clientGroupId) {
    return this.call("POST", "/v1/groups", { body: { name, member_ids: memberIds, client_group_id: clientGroupId } });
  }

  addMembers(groupId, userIds) {
    return this.call("POST", `/v1/groups/${groupId}/members`, { body: { user_ids: userIds } });
  }

  removeMember(groupId, userId) { return this.call("DELETE", `/v1/groups/${groupId}/members/${userId}`); }

  history(cid, before = null, limit = 50) {
    return this.call("GET", `/v1/conversations/${encodeURIComponent(cid)}/messages`, { query: { before, limit } });
  }

  markRead(cid, upToMsgId) {
    return this.call("POST", `/v1/conversations/${encodeURIComponent(cid)}/read`, { body: { up_to_msg_id: upToMsgId } });
  }

  deleteMessage(msgId, scope) { return this.call("DELETE", `/v1/messages/${msgId}`, { query: { scope } }); }
  /** Upload a File (or a Blob, named by `name`) as an attachment; the server sniffs its
   * type. Its metadata: `{attachment_id, name, size, content_type, thumbnail_id?, ...}`. */
  async upload(file, name = file.name) {
    const response = await this.request("POST", "/v1/attachments", {
      body: file, query: { name }, type: file.type || "application/octet-stream",
    });
    return response.json();
  }

  /** An attachment's bytes (or a thumbnail's: it is an attachment too) as a Blob. */
  async download(attachmentId) {
    return (await this.request("GET", `/v1/attachments/${attachmentId}/content`)).blob();
  }

  presence(userIds) { return this.call("GET", "/v1/presence", { query: { user_ids: userIds.join(",") } }); }
}
