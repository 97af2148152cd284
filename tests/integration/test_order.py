"""Stanzas keep their order end to end; a MAM answer is complete and in archive order (#14).

The two-site example with four extra users, one owned by each front end of both pools (names
picked by computing the ring as the servers do), each signed in at its own front end. The chat
pool's front-end pool is pool1, so a pool2 user's stanzas cross an internal link both ways.
Every assertion compares sequences, not sets:
- 3 senders x 1,000 messages at full speed into 2 rooms: every occupant receives each room's
  messages in exactly the archive order (which contains each sender's messages in the order
  sent); the sender's own reflection included;
- MAM paging with max 10, 50, 250 forward (after) and backward (before) over the whole
  archive, max 1 and 7 over a 120-message window from its middle (both ways), with and without
  <flip-page/>: exactly the archive; a 500-result page read by a slow client arrives whole
  before its <fin/>;
- 2,000 1:1 messages each way between users of different front ends of different pools;
- faults: a pool1 front end killed with kill -9 mid-run, and the chat server's component link
  cut mid-run: what every client receives is still in archive order.
"""

import asyncio
import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from lib.xmpp_clients import owner_of, slix_connect
from test_chat_muc import NS_MAM, NS_RSM, SERVICE, Chat

REPO = Path(__file__).resolve().parents[2]
POOLS = {"pool1.example.test": ["fe1a.example.test", "fe1b.example.test"],
         "pool2.example.test": ["fe2a.example.test", "fe2b.example.test"]}
CHAT = "chat1a.example.test"
ROOMS = ["orda", "ordb"]
_qids = iter(range(1, 1 << 30))


def _owned_users() -> dict[str, str]:
    """front-end FQDN -> a user name whose bare JID that front end owns."""
    out = {}
    for servers in POOLS.values():
        for i in range(1000):
            name = f"o{i}"
            fe = owner_of(servers, f"{name}@example.test")
            if fe not in out and name not in out.values():
                out[fe] = name
            if all(s in out for s in servers):
                break
    return out


USERS = _owned_users()  # fe1a, fe1b, fe2a, fe2b -> user


def topology() -> dict:
    t = copy.deepcopy(yaml.safe_load((REPO / "examples" / "two-site.yaml").read_text()))
    for fe, name in USERS.items():
        pool = next(p for p, s in POOLS.items() if fe in s)
        t["users"].append({"name": name, "pool": pool, "password": f"{name}-pw"})
    return t


def chat_status(d):
    return d.admin(CHAT, "/status")["chat"]


def all_attached(d):
    s = chat_status(d)
    return s.get("schema_ready") and len(s["frontends"]) == 2 and all(
        f["attached"] for f in s["frontends"])


def links_up(d, fe):
    links = d.admin(fe, "/status").get("links", {})
    return len(links) == 3 and all(links.values())


@pytest.fixture(scope="module")
def site(deploy_module):
    d = deploy_module(topology())
    d.wait_until(lambda: all_attached(d), timeout=90, what="chat1a attached to both pool1 servers")
    for servers in POOLS.values():
        for fe in servers:
            d.wait_until(lambda fe=fe: links_up(d, fe), timeout=60, what=f"{fe}'s internal links up")
    return d


async def sign_in_at_owner(d, fe) -> Chat:
    name = USERS[fe]
    c = await slix_connect(d.jid(name), f"{name}-pw", d.address(fe), d.ca_file(), roster=False)
    chat = Chat(c)
    chat.fe, chat.name = fe, name
    return chat


async def sign_in_all(d) -> list[Chat]:
    return [await sign_in_at_owner(d, fe) for fe in sorted(USERS)]


async def close_all(chats):
    for c in chats:
        await c.c.close()


async def occupy(d, rooms):
    """Everyone signs in at their own front end and joins `rooms` (created by the first).
    Returns (chats, senders, reader): the senders are the users of fe1a, fe1b and fe2a; the
    reader, fe2b's user, only listens (every stanza to it crosses an internal link)."""
    chats = await sign_in_all(d)
    try:
        await enter_rooms(chats, rooms)
    except BaseException:
        await close_all(chats)
        raise
    for c in chats:
        c.drain()
    return chats, [c for c in chats if c.fe != "fe2b.example.test"], chats[-1]


async def enter_rooms(chats, rooms):
    first = chats[0]
    for r in rooms:
        await first.join(r, first.name)
        await first.configure(r, persistentroom=1)
        for c in chats[1:]:
            await c.join(r, c.name)


def groupchat_bodies(chat, room, prefix):
    """Drains the bodies of `room`'s live groupchat messages that start with `prefix`, in arrival
    order (a room -> list dict kept on the Chat). Discussion history (XEP-0045 §7.2.15, marked
    with <delay/>) is counted in chat.history instead: it is sent on a join, not live."""
    got = chat.__dict__.setdefault("got", {})
    keep = []
    while not chat.msgs.empty():
        m = chat.msgs.get_nowait().xml
        keep.append(m)
    for m in keep:
        frm = m.get("from", "")
        body = m.findtext("{jabber:client}body") or ""
        if m.get("type") == "groupchat" and body.startswith(prefix):
            if m.find("{urn:xmpp:delay}delay") is not None:
                chat.__dict__.setdefault("history", []).append(body)
                continue
            got.setdefault(frm.split("@")[0], []).append(body)
        else:
            chat.msgs.put_nowait(_Raw(m))
    return got.get(room, [])


class _Raw:
    def __init__(self, xml):
        self.xml = xml


async def collect(chats, rooms, prefix, expected_per_room, timeout):
    """Waits (bounded) until every chat has `expected_per_room[r]` messages of each room."""
    deadline = time.monotonic() + timeout
    while True:
        done = all(len(groupchat_bodies(c, r, prefix)) >= expected_per_room[r]
                   for c in chats for r in rooms)
        if done or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


async def mam_page(chat, room, max_, after=None, before=None, flip=False, timeout=30):
    """One MAM page: (bodies in the order they arrived, ids, fin). Only results that arrived
    BEFORE the <fin/> iq count (XEP-0313 §4: a client may stop collecting at <fin/>)."""
    qid = f"ord{next(_qids)}"
    rsm = f"<set xmlns='{NS_RSM}'><max>{max_}</max>"
    if after:
        rsm += f"<after>{after}</after>"
    if before is not None:
        rsm += f"<before>{before}</before>" if before else "<before/>"
    rsm += "</set>"
    fp = "<flip-page/>" if flip else ""
    fin_iq = await chat.iq(f"{room}@{SERVICE}", "set",
                           f"<query xmlns='{NS_MAM}' queryid='{qid}'>{rsm}{fp}</query>", timeout)
    bodies, ids, keep = [], [], []
    while not chat.msgs.empty():
        m = chat.msgs.get_nowait()
        r = m.xml.find(f"{{{NS_MAM}}}result")
        if r is None or r.get("queryid") != qid:
            keep.append(m)
            continue
        msg = r.find("{urn:xmpp:forward:0}forwarded").find("{jabber:client}message")
        bodies.append(msg.findtext("{jabber:client}body"))
        ids.append(r.get("id"))
    for m in keep:
        chat.msgs.put_nowait(m)
    return bodies, ids, fin_iq.find(f"{{{NS_MAM}}}fin")


def rsm_bound(fin, which):
    return fin.find(f"{{{NS_RSM}}}set").findtext(f"{{{NS_RSM}}}{which}")


async def read_pages(chat, room, max_, backward=False, flip=False, cursor=None, most=None):
    """Pages through `room`'s archive from the archive id `cursor` (None: from the start, or
    from the end when backward) until the archive ends or at least `most` messages were read;
    returns [(body, id)] in archive order."""
    pages, read = [], 0
    for _ in range(100000):  # bounded: far more pages than any archive here
        if backward:
            bodies, ids, fin = await mam_page(chat, room, max_, before=cursor or "", flip=flip)
        else:
            bodies, ids, fin = await mam_page(chat, room, max_, after=cursor, flip=flip)
        assert len(bodies) <= max_, (max_, len(bodies))
        page = list(zip(bodies, ids))
        pages.append(page[::-1] if flip else page)
        read += len(page)
        if fin.get("complete") == "true" or not page or (most and read >= most):
            break
        cursor = rsm_bound(fin, "first" if backward else "last")
    if backward:
        pages.reverse()
    return [item for p in pages for item in p]


async def read_archive(chat, room, max_, backward=False, flip=False):
    """The bodies of `room`'s whole archive, in archive order, read in pages of `max_`."""
    return [b for b, _ in await read_pages(chat, room, max_, backward, flip)]


async def send_burst(chat, rooms, n, tag, pace=0.0):
    """`chat` says tag-<name>-<i> for i < n into rooms[i % len(rooms)], at full speed (or
    pausing `pace` s every 10 messages, so that a fault strikes while they are flowing)."""
    for i in range(n):
        try:
            chat.say(rooms[i % len(rooms)], f"{tag}-{chat.name}-{i}")
        except Exception:  # noqa: BLE001 - its server was killed under it (fault tests)
            break
        if pace and i % 10 == 9:
            await asyncio.sleep(pace)
        elif i % 50 == 49:
            await asyncio.sleep(0)  # let slixmpp's writer run; no pacing
    return [f"{tag}-{chat.name}-{i}" for i in range(n)]


def assert_in_send_order(seq, sent_by):
    """Each sender's messages appear in `seq` in the order that sender sent them."""
    for name, sent in sent_by.items():
        mine = [b for b in seq if b.split("-")[1] == name]
        index = {b: i for i, b in enumerate(sent)}
        assert [index[b] for b in mine] == sorted(index[b] for b in mine), \
            f"{name}'s messages out of order: {mine[:20]}"


def is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


# ---- tests -----------------------------------------------------------------------------------

def test_regression14_groupchat_order_equals_archive_and_mam_pages_are_exact(site):
    n = 1000

    async def scenario():
        chats, senders, reader = await occupy(site, ROOMS)
        try:
            sent = await asyncio.gather(*(send_burst(s, ROOMS, n, "g") for s in senders))
            sent_by = {s.name: b for s, b in zip(senders, sent)}
            per_room = {r: len(senders) * n // len(ROOMS) for r in ROOMS}
            await collect(chats, ROOMS, "g-", per_room, timeout=240)
            full = {r: await read_pages(reader, r, 500) for r in ROOMS}
            history = {c.name: len(c.__dict__.get("history", [])) for c in chats}
            print(f"history messages received during the run (joins): {history}")
            for r in ROOMS:
                archive = [b for b, _ in full[r]]
                assert len(archive) == per_room[r] and len(set(archive)) == len(archive)
                assert_in_send_order(archive, sent_by)
                for c in chats:
                    got = groupchat_bodies(c, r, "g-")
                    assert got == archive, (
                        f"{c.name} (on {c.fe}) received {len(got)} of {len(archive)} in {r}; "
                        f"first difference at "
                        f"{next((i for i, (a, b) in enumerate(zip(got, archive)) if a != b), None)}")
            # Paging == the archive: forward (after) and backward (before), at every size,
            # flipped or not. Sizes 1 and 7 read a 120-message window from the middle of the
            # archive (the whole of it would be 3,000 round trips); the others read it all.
            for max_, rooms in ((10, ROOMS[:1]), (50, ROOMS), (250, ROOMS)):
                for r in rooms:
                    want = [b for b, _ in full[r]]
                    assert await read_archive(reader, r, max_) == want, f"forward max {max_}"
                    assert await read_archive(reader, r, max_, backward=True) == want, \
                        f"backward max {max_}"
            for max_, flip, r in ((1, False, ROOMS[0]), (7, False, ROOMS[0]), (7, True, ROOMS[1])):
                items, k = full[r], 700
                fwd = await read_pages(reader, r, max_, flip=flip, cursor=items[k][1], most=120)
                assert len(fwd) >= 120 and fwd == items[k + 1:k + 1 + len(fwd)], \
                    f"forward window, max {max_}, flip {flip}"
                back = await read_pages(reader, r, max_, backward=True, flip=flip,
                                        cursor=items[k][1], most=120)
                assert len(back) >= 120 and back == items[k - len(back):k], \
                    f"backward window, max {max_}, flip {flip}"
            for max_, backward in ((50, True), (250, False)):
                assert await read_archive(reader, ROOMS[1], max_, backward, flip=True) == \
                    [b for b, _ in full[ROOMS[1]]], f"flip-page max {max_}"
            # A flipped page really comes newest first.
            bodies, _, _ = await mam_page(reader, ROOMS[0], 5, before="", flip=True)
            assert bodies == [b for b, _ in full[ROOMS[0]][-5:]][::-1], bodies
        finally:
            await close_all(chats)
    asyncio.run(scenario())


def test_500_result_page_reaches_a_slow_client_whole_before_its_fin(site):
    async def scenario():
        reader = await sign_in_at_owner(site, "fe2b.example.test")
        try:
            archive = await read_archive(reader, ROOMS[0], 500)
            assert len(archive) >= 500
            page = asyncio.ensure_future(mam_page(reader, ROOMS[0], 500, timeout=60))
            await asyncio.sleep(0.1)  # the query is on the wire
            time.sleep(3)  # a slow client: reads nothing for 3 s while the answer queues up
            bodies, _, fin = await page
            assert bodies == archive[:500], f"{len(bodies)} results before the <fin/>"
            assert fin.get("complete") != "true"
        finally:
            await reader.c.close()
    asyncio.run(scenario())


def test_one_to_one_messages_across_pools_keep_their_order_both_ways(site):
    n = 2000

    async def scenario():
        a = await sign_in_at_owner(site, "fe1a.example.test")
        b = await sign_in_at_owner(site, "fe2b.example.test")
        try:
            # As fast as one connection may send: the front end's stanza bucket (500/s, burst
            # 2,000; src/frontend/config.h) ends a stream that floods past it (policy-violation),
            # and 2,000 messages plus the sign-in's stanzas sent unpaced on a quiet machine did
            # (the tail of 128 never arrived). 400/s keeps under the refill rate.
            async def burst(src, dst, tag):
                for i in range(n):
                    src.send(f"<message to='{dst.c.boundjid.bare}' type='chat'>"
                             f"<body>{tag}-{i}</body></message>")
                    if i % 40 == 39:
                        await asyncio.sleep(0.1)

            async def receive(chat, tag):
                got, deadline = [], time.monotonic() + 180
                while len(got) < n and time.monotonic() < deadline:
                    try:
                        m = await asyncio.wait_for(chat.msgs.get(), 1)
                    except asyncio.TimeoutError:
                        continue
                    body = m.xml.findtext("{jabber:client}body") or ""
                    if body.startswith(tag + "-"):
                        got.append(body)
                return got

            ra, rb = asyncio.ensure_future(receive(a, "ba")), asyncio.ensure_future(receive(b, "ab"))
            await asyncio.gather(burst(a, b, "ab"), burst(b, a, "ba"))
            got_b, got_a = await rb, await ra
            assert got_b == [f"ab-{i}" for i in range(n)], f"{len(got_b)} received by {b.name}"
            assert got_a == [f"ba-{i}" for i in range(n)], f"{len(got_a)} received by {a.name}"
        finally:
            await close_all([a, b])
    asyncio.run(scenario())


# ---- faults ----------------------------------------------------------------------------------

def cut_component_link(d, fe):
    """Aborts the chat server's component connection to `fe` (both ends get a reset), as a
    network cut would; the chat server reconnects on its own."""
    subprocess.run(["ss", "-K", "-t", "dst", d.address(fe), "dport", "=", ":5347"],
                   check=True, capture_output=True, timeout=10)


def kill_server(d, fqdn):
    rec = next(r for r in d.run_records() if r.get("name") == fqdn)
    os.kill(int(rec["pid"]), signal.SIGKILL)


def missing_runs(got, archive):
    """How many separate runs of the archive are missing from `got` (a subsequence of it)."""
    have, runs, in_gap = set(got), 0, False
    for b in archive:
        gap = b not in have
        runs += gap and not in_gap
        in_gap = gap
    return runs


async def run_with_fault(d, tag, fault, untouched, lost_fe=None):
    """3 senders x 600 messages into two fresh rooms, over ~6 s; `fault()` strikes once the pool2
    reader has 1/4 of them. Checks what every client received against the archive; returns
    {user: missing count} for the report. Senders on a front end in `untouched` (whose path to
    the chat server the fault does not cross) must lose nothing."""
    n, rooms = 600, [f"{tag}a", f"{tag}b"]
    chats, senders, reader = await occupy(d, rooms)
    try:
        per_room = {r: len(senders) * n // len(rooms) for r in rooms}
        bursts = asyncio.gather(*(send_burst(s, rooms, n, tag, pace=0.1) for s in senders))
        for _ in range(600):  # bounded: 60 s
            if len(groupchat_bodies(reader, rooms[0], tag + "-")) >= per_room[rooms[0]] // 4:
                break
            await asyncio.sleep(0.1)
        fault()
        sent = await bursts
        sent_by = {s.name: b for s, b in zip(senders, sent)}
        alive = [c for c in chats if c.fe != lost_fe]
        # Until everyone has everything, or nothing more arrives for 5 s (bounded: 120 s).
        last, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 120
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 5:
            total = sum(len(groupchat_bodies(c, r, tag + "-")) for c in alive for r in rooms)
            if total == len(alive) * sum(per_room.values()):
                break
            if total != last:
                last, quiet_since = total, time.monotonic()
            await asyncio.sleep(0.2)
        missing = {}
        for r in rooms:
            archive = await read_archive(reader, r, 500)
            assert len(set(archive)) == len(archive), "a message archived twice"
            assert_in_send_order(archive, sent_by)
            for s in senders:
                mine = [b for b in archive if b.split("-")[1] == s.name]
                want = [b for b in sent_by[s.name] if int(b.split("-")[2]) % 2 == rooms.index(r)]
                if s.fe == lost_fe:
                    # Its connection broke with its server: what was archived is a prefix.
                    assert mine == want[:len(mine)], f"{s.name}'s archived messages: not a prefix"
                elif s.fe in untouched:
                    assert mine == want, f"{s.name}: {len(mine)} of {len(want)} archived in {r}"
                else:  # its path crossed the fault: in order, at most one run lost in flight
                    assert missing_runs(mine, want) <= 1, f"{s.name}: several runs lost in {r}"
                missing[f"sent by {s.name}/{r}"] = len(want) - len(mine)
            for c in alive:
                got = groupchat_bodies(c, r, tag + "-")
                assert len(set(got)) == len(got), f"{c.name} received a message twice in {r}"
                assert is_subsequence(got, archive), f"{c.name} received {r} out of archive order"
                assert missing_runs(got, archive) <= 1, \
                    f"{c.name} misses {missing_runs(got, archive)} separate runs in {r}"
                missing[f"{c.name}@{c.fe}/{r}"] = len(archive) - len(got)
                if len(archive) != len(got):
                    have = set(got)
                    print("MISSING", c.name, r, [(i, b) for i, b in enumerate(archive) if b not in have])
        return missing
    finally:
        await close_all(chats)


def test_component_link_cut_under_load_keeps_every_client_in_archive_order(site):
    missing = asyncio.run(run_with_fault(
        site, "cut", lambda: cut_component_link(site, "fe1a.example.test"),
        untouched={"fe1b.example.test"}))
    print(f"component link to fe1a cut: missing per occupant/room {missing}, "
          f"chat delivery {chat_status(site)['delivery']}")
    site.wait_until(lambda: all_attached(site), timeout=60, what="chat1a re-attached to fe1a")


def test_pool1_front_end_killed_under_load_keeps_every_client_in_archive_order(site):
    missing = asyncio.run(run_with_fault(
        site, "kill", lambda: kill_server(site, "fe1b.example.test"),
        untouched={"fe1a.example.test", "fe2a.example.test"}, lost_fe="fe1b.example.test"))
    print(f"fe1b killed: missing per occupant/room {missing}, "
          f"chat delivery {chat_status(site)['delivery']}")
