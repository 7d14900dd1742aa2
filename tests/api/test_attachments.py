"""Attachments over the API on both backends: the embedded default (a local directory +
SQLite) and production (S3 on a real S3-compatible server + Redis + Cassandra). Upload,
reference, download, who may fetch what, collection, and every bad input leaving nothing."""

from __future__ import annotations

import io
import json
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image

from tests.api.backends import production_env, with_redis_db
from tests.api.server import Account, MessengerProcess, new_account, sync_all
from tests.api.wsclient import next_frame, open_ws
from tests.servers.s3_server import ACCESS_KEY, SECRET_KEY

MAX_BYTES = 3_000_000
GRACE_S = 8.0


@pytest.fixture(scope="module", params=["embedded", "production"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[MessengerProcess]:
    env = {"MESSENGER_ATTACHMENTS_MAX_BYTES": str(MAX_BYTES),
           "MESSENGER_ATTACHMENTS_GRACE_S": str(GRACE_S),
           "MESSENGER_ATTACHMENTS_GC_INTERVAL_S": "0.3"}
    if request.param == "production":
        s3 = request.getfixturevalue("s3_server")
        env |= with_redis_db(production_env(request.getfixturevalue("redis_server"),
                                            request.getfixturevalue("cassandra_server"),
                                            "attach"), 5)
        env |= {"MESSENGER_ATTACHMENTS_S3_BUCKET": f"attach-{uuid.uuid4().hex[:10]}",
                "MESSENGER_ATTACHMENTS_S3_ENDPOINT": s3.endpoint,
                "MESSENGER_ATTACHMENTS_S3_ACCESS_KEY_ID": ACCESS_KEY,
                "MESSENGER_ATTACHMENTS_S3_SECRET_ACCESS_KEY": SECRET_KEY}
    proc = MessengerProcess(tmp_path_factory.mktemp("attach") / "data", env)
    proc.start()
    yield proc
    proc.stop()



def is_s3(server: MessengerProcess) -> bool:
    return "MESSENGER_ATTACHMENTS_S3_BUCKET" in server.env


def stored_blobs(server: MessengerProcess) -> set[str]:
    """Every blob key the server's storage holds."""
    if not is_s3(server):
        root = server.data_dir / "attachments"
        return {str(p.relative_to(root)) for sub in ("blobs", "uploads")
                for p in (root / sub).glob("*")}
    s3 = boto3.client("s3", endpoint_url=server.env["MESSENGER_ATTACHMENTS_S3_ENDPOINT"],
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                      region_name="us-east-1")
    answer = s3.list_objects_v2(Bucket=server.env["MESSENGER_ATTACHMENTS_S3_BUCKET"])
    return {item["Key"] for item in answer.get("Contents", [])}


def spooled(server: MessengerProcess) -> list[Path]:
    return list((server.data_dir / "attachments" / "spool").glob("*"))


def photo(size: tuple[int, int] = (800, 600), gps: bool = True) -> bytes:
    """A JPEG with EXIF (camera, GPS position, orientation 6: rotate 90 degrees)."""
    image = Image.new("RGB", size, "red")
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0112] = 6
    if gps:
        exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG claiming ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def upload(client: httpx.Client, who: Account, data: bytes, name: str = "cat.jpg",
           **headers: str) -> httpx.Response:
    return client.post("/v1/attachments", params={"name": name}, content=data,
                       headers={**who.headers, "content-type": "text/html", **headers})


def send(client: httpx.Client, who: Account, attachments: list[str], body: str = "",
         **target: str) -> httpx.Response:
    return client.post("/v1/messages", headers=who.headers, json={
        "client_msg_id": uuid.uuid4().hex, "body": body, "attachments": attachments,
        **(target or {})})


def fetch(client: httpx.Client, who: Account, attachment_id: str, **headers: str
          ) -> httpx.Response:
    return client.get(f"/v1/attachments/{attachment_id}/content",
                      headers={**who.headers, **headers})


def test_an_image_is_sniffed_cleaned_thumbnailed_and_sent(client: httpx.Client,
                                                           server: MessengerProcess) -> None:
    alice, bob, eve = (new_account(client) for _ in range(3))
    r = upload(client, alice, photo())
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["content_type"] == "image/jpeg"  # sniffed: the client said text/html
    assert (att["width"], att["height"]) == (600, 800)  # the orientation was applied
    sent = send(client, alice, [att["attachment_id"]], to_user=bob.user_id)
    assert sent.status_code == 201, sent.text

    got = fetch(client, bob, att["attachment_id"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["etag"] == f'"{att["sha256"]}"'
    assert "immutable" in got.headers["cache-control"]
    assert got.headers["x-content-type-options"] == "nosniff"
    image = Image.open(io.BytesIO(got.content))
    assert image.size == (600, 800) and dict(image.getexif()) == {}  # no EXIF, no GPS
    thumb = fetch(client, bob, att["thumbnail_id"])
    assert thumb.status_code == 200
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    assert fetch(client, eve, att["attachment_id"]).status_code == 404
    assert fetch(client, eve, att["thumbnail_id"]).status_code == 404
    info = client.get(f"/v1/attachments/{att['attachment_id']}", headers=bob.headers)
    assert info.json() == att

    entries, _ = sync_all(client, bob)
    [entry] = [e for e in entries if e["kind"] == "message"]
    assert entry["body"] == "" and entry["attachments"] == [
        {k: att[k] for k in ("attachment_id", "name", "size", "content_type", "width",
                             "height", "thumbnail_id")}]
    [row] = client.get("/v1/conversations", headers=bob.headers).json()
    assert row["preview"] == "Photo" and row["last_message"]["attachments"] == \
        entry["attachments"]
    history = client.get(f"/v1/conversations/{row['conversation_id']}/messages",
                         headers=bob.headers).json()
    assert history[0]["attachments"] == entry["attachments"]


def test_files_ranges_etags_links_and_dedup(client: httpx.Client,
                                            server: MessengerProcess) -> None:
    alice, bob = new_account(client), new_account(client)
    data = b"%PDF-1.4\n" + bytes(range(256)) * 100
    first = upload(client, alice, data, "report.pdf").json()
    second = upload(client, bob, data, "copy.pdf").json()
    assert first["content_type"] == "application/pdf" and first["sha256"] == second["sha256"]
    assert first["attachment_id"] != second["attachment_id"]
    assert sum(first["sha256"] in key for key in stored_blobs(server)) == 1  # stored once
    assert send(client, alice, [first["attachment_id"]], "the report",
                to_user=bob.user_id).status_code == 201
    [row] = client.get("/v1/conversations", headers=bob.headers).json()
    assert row["preview"] == "the report"

    aid = first["attachment_id"]
    part = fetch(client, bob, aid, range="bytes=9-18")
    assert part.status_code == 206 and part.content == data[9:19]
    assert part.headers["content-range"] == f"bytes 9-18/{len(data)}"
    assert fetch(client, bob, aid, range="bytes=-5").content == data[-5:]
    beyond = fetch(client, bob, aid, range=f"bytes={len(data)}-")
    assert beyond.status_code == 416 and beyond.json()["error"]["code"] == \
        "range_not_satisfiable"
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    odd = client.get(f"/v1/attachments/{aid}/content",  # "²" is a digit to str.isdigit
                     headers=[(b"authorization", f"Bearer {bob.token}".encode()),
                              (b"range", "bytes=\xb2-".encode("latin-1"))])
    assert odd.status_code == 200 and odd.content == data  # ignored, not a 500
    etag = fetch(client, bob, aid).headers["etag"]
    assert fetch(client, bob, aid, **{"if-none-match": etag}).status_code == 304
    assert fetch(client, bob, aid, range="bytes=0-3", **{"if-range": '"other"'}
                 ).status_code == 200
    disposition = fetch(client, bob, aid).headers["content-disposition"]
    assert disposition.startswith("attachment;") and "report.pdf" in disposition

    link = client.get(f"/v1/attachments/{aid}/url", headers=bob.headers).json()
    if is_s3(server):
        assert link["direct"] and httpx.get(link["url"]).content == data
    else:
        assert not link["direct"] and link["url"] == f"/v1/attachments/{aid}/content"


def test_sends_name_only_the_senders_ready_uploads(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    bobs = upload(client, bob, b"bob's notes").json()["attachment_id"]
    refused = send(client, alice, [bobs], to_user=bob.user_id)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert send(client, alice, ["123"], to_user=bob.user_id).status_code == 404
    assert send(client, alice, [], to_user=bob.user_id).status_code == 422  # no body, nothing
    own = upload(client, alice, b"mine").json()["attachment_id"]
    assert send(client, alice, [own, own], to_user=bob.user_id).status_code == 422
    assert send(client, alice, [own] * 11, to_user=bob.user_id).status_code == 422
    assert sync_all(client, bob)[0] == []  # nothing was sent


async def test_the_websocket_send_op_takes_attachments_as_rest_does(
        client: httpx.Client, server: MessengerProcess) -> None:
    alice, bob = new_account(client), new_account(client)
    own = upload(client, alice, b"minutes", "minutes.txt").json()["attachment_id"]
    bobs = upload(client, bob, b"bob's notes").json()["attachment_id"]
    ws = await open_ws(server.ws_url, alice)
    try:
        await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "ref": "ok",
                                  "client_msg_id": "with-file", "attachments": [own]}))
        sent = await next_frame(ws, "sent")  # no body at all: the file is the message
        assert sent["ref"] == "ok" and sent["client_msg_id"] == "with-file"
        refusals: list[tuple[Any, str]] = [
            ([bobs], "not_found"), (["123"], "not_found"), ([own, own], "invalid_request"),
            ([own] * 11, "invalid_request"), ([], "invalid_request"), (None, "invalid_request"),
            (own, "invalid_frame"), ([{"id": own}], "invalid_frame")]
        for n, (attachments, code) in enumerate(refusals):
            await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "ref": f"r{n}",
                                      "client_msg_id": f"bad{n}",
                                      "attachments": attachments}))
            error = await next_frame(ws, "error")
            assert (error["code"], error["ref"]) == (code, f"r{n}"), attachments
    finally:
        await ws.close()
    entries, _ = sync_all(client, bob)
    assert [(e["msg_id"], e["body"], [a["attachment_id"] for a in e["attachments"]])
            for e in entries if e["kind"] == "message"] == [(sent["msg_id"], "", [own])]


def test_groups_and_deletes_decide_who_may_fetch(client: httpx.Client) -> None:
    alice, bob, carol = (new_account(client) for _ in range(3))
    group = client.post("/v1/groups", headers=alice.headers, json={
        "name": "g", "member_ids": [bob.user_id, carol.user_id]}).json()
    att = upload(client, alice, b"plans", "plans.txt").json()
    assert att["content_type"].startswith("text/plain")
    msg = send(client, alice, [att["attachment_id"]], to_group=group["group_id"]).json()
    assert fetch(client, carol, att["attachment_id"]).content == b"plans"
    gid = group["group_id"]
    assert client.delete(f"/v1/groups/{gid}/members/{carol.user_id}",
                         headers=carol.headers).status_code == 204
    assert fetch(client, carol, att["attachment_id"]).status_code == 404  # left the group
    assert fetch(client, bob, att["attachment_id"]).status_code == 200
    assert client.delete(f"/v1/messages/{msg['msg_id']}?scope=everyone",
                         headers=alice.headers).status_code == 204
    assert fetch(client, bob, att["attachment_id"]).status_code == 404
    assert fetch(client, alice, att["attachment_id"]).status_code == 200  # the uploader's
    assert wait_gone(client, alice, att["attachment_id"])  # collected after the grace


def wait_gone(client: httpx.Client, who: Account, attachment_id: str) -> bool:
    deadline = time.monotonic() + GRACE_S * 3 + 10
    while time.monotonic() < deadline:
        if fetch(client, who, attachment_id).status_code == 404:
            return True
        time.sleep(0.3)
    return False


def test_unsent_uploads_are_collected_and_sent_ones_kept(client: httpx.Client,
                                                         server: MessengerProcess) -> None:
    alice, bob = new_account(client), new_account(client)
    unsent = upload(client, alice, photo((64, 48))).json()
    kept = upload(client, alice, uuid.uuid4().bytes * 10).json()
    assert send(client, alice, [kept["attachment_id"]], to_user=bob.user_id).status_code == 201
    assert wait_gone(client, alice, unsent["attachment_id"])
    assert fetch(client, alice, unsent["thumbnail_id"]).status_code == 404
    blobs = stored_blobs(server)
    assert not any(unsent["sha256"] in key for key in blobs)
    assert fetch(client, bob, kept["attachment_id"]).status_code == 200
    late = send(client, alice, [unsent["attachment_id"]], to_user=bob.user_id)
    assert late.status_code == 404


@pytest.mark.parametrize(("data", "name", "status", "code"), [
    (b"", "empty.bin", 422, "empty_attachment"),
    (b"x" * (MAX_BYTES + 1), "big.bin", 413, "attachment_too_large"),
    (photo()[:600], "cut.jpg", 422, "invalid_image"),
    (png_header_only(100_000, 100_000), "bomb.png", 422, "image_too_large"),
    (png_header_only(8_000, 8_000), "big.png", 422, "image_too_large"),
    (b"data", "../etc/passwd", 422, "invalid_request"),
    (b"data", "a\\b.txt", 422, "invalid_request"),
    (b"data", "", 422, "invalid_request"),
])
def test_bad_uploads_are_refused_and_leave_nothing(client: httpx.Client,
                                                   server: MessengerProcess, data: bytes,
                                                   name: str, status: int, code: str) -> None:
    alice = new_account(client)
    before = stored_blobs(server)
    r = upload(client, alice, data, name)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert stored_blobs(server) == before
    assert spooled(server) == []


def test_a_streamed_body_over_the_limit_is_cut_off(client: httpx.Client,
                                                   server: MessengerProcess) -> None:
    alice = new_account(client)

    def chunks() -> Iterator[bytes]:  # chunked: no length declared
        for _ in range(MAX_BYTES // 65536 + 2):
            yield b"y" * 65536

    r = client.post("/v1/attachments", params={"name": "s.bin"}, content=chunks(),
                    headers=alice.headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "attachment_too_large"
    assert spooled(server) == []


def raw_upload(server: MessengerProcess, who: Account, declared: int, body: bytes) -> bytes:
    """A request whose body stops short of its ``Content-Length``: the client then closes
    its side, as a crashed or cut-off uploader would."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"POST /v1/attachments?name=short.bin HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {who.token}\r\n"
                      f"Content-Length: {declared}\r\n\r\n").encode() + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_body_shorter_than_declared_leaves_nothing(client: httpx.Client,
                                                     server: MessengerProcess) -> None:
    alice = new_account(client)
    before = stored_blobs(server)
    answer = raw_upload(server, alice, 1000, b"z" * 400)
    assert not answer.startswith(b"HTTP/1.1 201")
    time.sleep(0.5)
    assert stored_blobs(server) == before
    assert spooled(server) == []


def test_presigned_uploads(client: httpx.Client, server: MessengerProcess) -> None:
    alice, bob = new_account(client), new_account(client)
    start = client.post("/v1/attachments/uploads", headers=alice.headers,
                        json={"name": "movie.mp4", "size": 40})
    if not is_s3(server):
        assert start.status_code == 501 and start.json()["error"]["code"] == "not_supported"
        return
    assert start.status_code == 201, start.text
    plan: dict[str, Any] = start.json()
    aid = plan["attachment_id"]
    early = client.post(f"/v1/attachments/{aid}/complete", headers=alice.headers)
    assert early.json()["error"]["code"] == "upload_incomplete"
    data = b"\x00\x00\x00\x18ftypisom" + b"\x01" * 28
    put = httpx.request(plan["method"], plan["url"], content=data, headers=plan["headers"])
    assert put.status_code == 200
    assert client.post(f"/v1/attachments/{aid}/complete", headers=bob.headers
                       ).status_code == 404  # not bob's
    done = client.post(f"/v1/attachments/{aid}/complete", headers=alice.headers)
    assert done.status_code == 200, done.text
    assert done.json()["content_type"] == "video/mp4" and done.json()["size"] == 40
    assert client.post(f"/v1/attachments/{aid}/complete", headers=alice.headers
                       ).json() == done.json()
    assert send(client, alice, [aid], to_user=bob.user_id).status_code == 201
    assert fetch(client, bob, aid).content == data
    assert f"uploads/{aid}" not in stored_blobs(server)

    wrong = client.post("/v1/attachments/uploads", headers=alice.headers,
                        json={"name": "w.bin", "size": 10}).json()
    httpx.put(wrong["url"], content=b"w" * 20)  # the store here does not check the length
    r = client.post(f"/v1/attachments/{wrong['attachment_id']}/complete",
                    headers=alice.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "length_mismatch"
    assert f"uploads/{wrong['attachment_id']}" not in stored_blobs(server)
    assert client.post(f"/v1/attachments/{wrong['attachment_id']}/complete",
                       headers=alice.headers).status_code == 404
    too_big = client.post("/v1/attachments/uploads", headers=alice.headers,
                          json={"name": "w.bin", "size": MAX_BYTES + 1})
    assert too_big.status_code == 413
