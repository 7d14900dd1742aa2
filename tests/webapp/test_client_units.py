"""The web app's pure modules (ids, backoff, reconnect plan, inbox stream, outbox, model,
attachment labels),
imported as the page imports them and run in Chromium: no server logic, no socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.server import MessengerProcess
from tests.webapp.browser import Browser

MODULES = ("ids", "backoff", "reconnect", "stream", "outbox")


@pytest.fixture(scope="module")
def page(web_server: MessengerProcess) -> Iterator[Browser]:
    browser = Browser.launch()
    try:
        browser.open(f"{web_server.url}/app/")
        yield browser
        assert browser.console_errors() == []
    finally:
        browser.quit()


def run(page: Browser, body: str) -> Any:
    """Run ``body`` (an async function body with the client modules, ``model`` and ``media``
    in scope)
    in the page; its return value."""
    imports = "\n".join(f"const {m} = await import('/app/js/client/{m}.js');" for m in MODULES)
    script = f"""
        const done = arguments[arguments.length - 1];
        (async () => {{
          {imports}
          const model = await import('/app/js/app/model.js');
          const media = await import('/app/js/app/media.js');
          const fixed = (v) => () => v;  // a "random" source that always answers v
          {body}
        }})().then(done, (e) => done({{error: String(e.stack || e)}}));"""
    result = page.driver.execute_async_script(script)
    assert not (isinstance(result, dict) and "error" in result), result
    return result


def test_ids_compare_as_64_bit_integers(page: Browser) -> None:
    assert run(page, """
        return [ids.cmp('9007199254740993', '9007199254740992'), ids.cmp('10', '9'),
                ids.directId('254940121193775104', '99'), ids.peerOf('d:5:7', '5'),
                ids.targetOf('g:42', '5'), ids.targetOf('d:5:7', '7')];""") == [
        1, 1, "d:99:254940121193775104", "7", {"to_group": "42"}, {"to_user": "5"}]


def test_backoff_full_jitter_doubles_to_the_cap(page: Browser) -> None:
    assert run(page, """
        const top = new backoff.Backoff(backoff.DEFAULT_POLICY, fixed(0.999999));
        const ceilings = Array.from({length: 9}, () => Math.round(top.nextDelay()));
        const low = new backoff.Backoff(backoff.DEFAULT_POLICY, fixed(0));
        return [ceilings, low.nextDelay(), top.attempt];""") == [
        [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000], 0, 9]


def test_reconnect_plan(page: Browser) -> None:
    plans = run(page, """
        const b = () => new backoff.Backoff(backoff.DEFAULT_POLICY, fixed(0.5));
        const failing = b(); failing.attempt = 4;
        const goaway = b(); goaway.attempt = 4;
        const stable = b(); stable.attempt = 4;
        return {
          goaway: [reconnect.plan({code: 1001, goawayMs: 3000}, goaway), goaway.attempt],
          heartbeat: reconnect.plan({code: 4000}, failing),
          unauthorized: reconnect.plan({code: 4001, error: {code: 'token_expired'}}, b()),
          refused: reconnect.plan({code: null, refused: {status: 401, code: 'invalid_token'}}, b()),
          tryAgain: [reconnect.plan({code: 1013}, failing), failing.attempt],
          stableThenDrop: reconnect.plan({code: null, uptimeMs: 10000}, stable),
        };""")
    assert plans == {
        "goaway": [{"delayMs": 3250}, 0],  # after reconnect_after_ms (+ jitter); starts over
        "heartbeat": {"delayMs": 250},  # at once, jittered, not counted as a failure
        "unauthorized": {"stop": "token_expired"},
        "refused": {"stop": "invalid_token"},
        "tryAgain": [{"delayMs": 4000}, 5],  # 0.5 * min(30 s, 0.5 s * 2^4)
        "stableThenDrop": {"delayMs": 250},  # a socket up 10 s resets the count
    }


def test_stream_applies_only_after_its_sync_started_once_each(page: Browser) -> None:
    assert run(page, """
        const e = (id) => ({id});
        const s = new stream.InboxStream('10');
        const idsOf = (list) => list.map((x) => x.id);
        const out = [];
        out.push(idsOf(s.onFrame([e('11')])));               // no socket yet
        out.push(s.startSync());
        out.push(idsOf(s.onFrame([e('12')])));               // live before sync_started
        out.push(s.onSyncStarted('9'));                    // not our sync
        out.push(s.onSyncStarted('10'));
        out.push(idsOf(s.onFrame([e('9'), e('10'), e('11'), e('12')])));
        out.push(idsOf(s.onFrame([e('12'), e('13')])));      // a duplicate and a new one
        s.onDisconnect();
        out.push(idsOf(s.onFrame([e('14')])));
        out.push(s.startSync());
        return out;""") == [[], "10", [], False, True, ["11", "12"], ["13"], [], "13"]


def test_outbox_sends_in_order_and_retries_until_answered(page: Browser) -> None:
    assert run(page, """
        const item = (n) => ({client_msg_id: 'c' + n, body: 'b' + n});
        const o = new outbox.Outbox([], new backoff.Backoff(backoff.DEFAULT_POLICY, fixed(0.5)));
        const id = (x) => x && x.client_msg_id;
        const out = [];
        o.add(item(1)); o.add(item(2)); o.add(item(1));
        out.push(o.items.length);
        out.push(id(o.nextToSend(0)), id(o.nextToSend(0)));   // one in flight at a time
        o.onDisconnect();                                     // lost with the socket: again
        out.push(id(o.nextToSend(0)));
        o.onError('c1', {code: 'rate_limited', retry_after_ms: 700}, 1000);
        out.push(id(o.nextToSend(1699)), id(o.nextToSend(1700)));
        o.onError('c1', {code: 'unavailable'}, 2000);
        out.push(o.wakeAt());                                 // backoff: 0.5 * 500 ms
        out.push(id(o.nextToSend(2250)));
        o.onError('c1', {code: 'token_expired'}, 3000);       // held until a new socket
        out.push(id(o.nextToSend(1e12)));
        o.onDisconnect();
        out.push(id(o.nextToSend(3000)));
        out.push(id(o.onSent('c1')), id(o.nextToSend(3000)));
        out.push(id(o.onError('c2', {code: 'forbidden'}, 3000)), o.items.length);
        out.push(outbox.bodyProblem(' '), outbox.bodyProblem('é'.repeat(8192)),
                 outbox.bodyProblem('é'.repeat(8193)), outbox.bodyProblem('', 1),
                 outbox.bodyProblem('', 11));
        return out;""") == [
        2, "c1", None, "c1", None, "c1", 2250, "c1", None, "c1", "c1", "c2", "c2", 0,
        "the message is empty", None, "the message is 16386 bytes; at most 16384",
        None, "11 attachments; at most 10"]


def test_model_folds_entries_into_conversations(page: Browser) -> None:
    result = run(page, """
        const me = '5', peer = '7', cid = 'd:5:7', g = 'g:100';
        const m = model.emptyModel();
        const msg = (id, sender, c = cid) => ({id, kind: 'message', msg_id: id,
          conversation_id: c, sender_id: sender, sender_device_id: '1', body: 'm' + id,
          created_at: '2025-01-01T00:00:00.000Z'});
        const group = (id, event, members, users) => ({id, kind: 'group_event', msg_id: id,
          conversation_id: g, sender_id: me, group: {group_id: '100', name: 'Hiking',
          owner_id: me, member_ids: members, event, user_ids: users}});
        model.applyEntries(m, me, [msg('11', peer), msg('12', me), msg('13', peer),
                                   msg('14', peer)]);
        const c = m.convs[cid];
        const out = [c.unreadIds.length, c.last.body];
        model.applyEntries(m, me, [{id: '15', kind: 'read', msg_id: '13', up_to_msg_id: '13',
                                    conversation_id: cid, sender_id: me}]);
        out.push([...c.unreadIds]);                              // read on another device
        model.applyEntries(m, me, [{id: '16', kind: 'read', msg_id: '12', up_to_msg_id: '12',
                                    conversation_id: cid, sender_id: peer}]);
        out.push(model.deliveryState(c, {msg_id: '12'}), model.deliveryState(c, {msg_id: '13'}));
        model.applyEntries(m, me, [{id: '17', kind: 'delete', msg_id: '14', scope: 'everyone',
                                    conversation_id: cid, sender_id: peer}]);
        out.push(c.unreadIds.length, c.last, c.lastStale);
        model.applyEntries(m, me, [group('18', 'created', [me, peer], [me, peer])]);
        out.push(model.listed(m).map((x) => x.cid));             // newest activity first
        model.applyEntries(m, me, [msg('19', peer)]);
        out.push(model.listed(m).map((x) => x.cid));
        model.applyEntries(m, me, [group('20', 'member_removed', [peer], [me])]);
        out.push(model.listed(m).map((x) => x.cid), m.convs[g].left);
        return out;""")
    assert result == [3, "m14", ["14"], "read", "sent", 0, None, True,
                      ["g:100", "d:5:7"], ["d:5:7", "g:100"], ["d:5:7"], True]


def test_attachment_previews_sizes_and_shown_ids(page: Browser) -> None:
    assert run(page, """
        const photo = (id) => ({attachment_id: id, name: id + '.jpg', size: 1,
                                content_type: 'image/jpeg', thumbnail_id: 't' + id});
        const file = (id) => ({attachment_id: id, name: id + '.pdf', size: 1,
                               content_type: 'application/pdf'});
        const preview = (body, attachments) => model.previewText({body, attachments});
        return [preview('hi', [photo('a')]), preview('', [photo('a')]),
                preview('', [photo('a'), photo('b')]), preview('', [file('f')]),
                preview('', [file('f'), file('g')]), preview('', [photo('a'), file('f')]),
                model.previewText({body: 'old entry, no list'}),
                [0, 999, 1000, 4150, 17_400_000, 5e12].map(media.sizeText),
                media.shownIds([photo('a'), file('f')]), media.shownIds()];""") == [
        "hi", "Photo", "2 photos", "File: f.pdf", "2 files", "2 attachments",
        "old entry, no list", ["0 B", "999 B", "1.0 KB", "4.2 KB", "17 MB", "5000 GB"],
        ["a", "ta", "f"], []]
