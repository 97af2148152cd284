"""Front end with real clients (slixmpp, aioxmpp): sign-in, messages, rosters, presence, offline
delivery, carbons, stream management, blocking, redirects, cross-pool routing, components,
tandemctl and failover of a front-end server. Hostile input is in test_frontend_hostile.py,
proxy mode in test_frontend_proxy.py.

Two front-end pools of two servers each, started by hand (lib/frontend_lab.make_lab; the `lab`
fixture in conftest.py), with a PostgreSQL store per pool. Run: TANDEM_TEST_NET=14 \
    TANDEM_BUILD_DIR=build-h4 /usr/bin/python3 -m pytest tests/integration/test_frontend.py
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.frontend_lab import CHAT, POOL1, POOL2, home, jid, make_lab, run  # noqa: E402
from lib.xmpp_clients import aio_connect, owner_of, slix_connect, wait_until  # noqa: E402


# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
def test_signs_in_with_each_sasl_mechanism(lab, mechanism):
    async def go():
        c = await slix_connect(jid("alice", "m"), "alice-pw", home(lab, "alice"), lab.ca_file,
                               mechanism=mechanism)
        assert str(c.boundjid) == jid("alice", "m")
        await c.close()
    run(go())


def test_signs_in_over_direct_tls(lab):
    async def go():
        c = await slix_connect(jid("bob", "tls"), "bob-pw", home(lab, "bob"), lab.ca_file,
                               port=5223, direct_tls=True)
        await c.close()
    run(go())



def test_message_between_slixmpp_and_aioxmpp(lab):
    async def go():
        alice = await slix_connect(jid("alice", "s"), "alice-pw", home(lab, "alice"), lab.ca_file)
        bob = await aio_connect(jid("bob", "a"), "bob-pw", home(lab, "bob"), lab.ca_file)
        alice.send_chat(jid("bob"), "hello bob")
        m = await bob.next_message(5)
        assert m.body.any() == "hello bob" and str(m.from_) == jid("alice", "s")
        await bob.send_chat(jid("alice", "s"), "hello alice")
        m = await alice.next_message(5)
        assert m["body"] == "hello alice"
        await alice.close()
        await bob.close()
    run(go())


def test_message_across_pools(lab):
    async def go():
        alice = await slix_connect(jid("alice", "x"), "alice-pw", home(lab, "alice"), lab.ca_file)
        carol = await slix_connect(jid("carol", "x"), "carol-pw", home(lab, "carol"), lab.ca_file)
        alice.send_chat(jid("carol"), "across pools")
        m = await carol.next_message(5)
        assert m["body"] == "across pools" and m["from"] == jid("alice", "x")
        carol.send_chat(jid("alice", "x"), "back")
        assert (await alice.next_message(5))["body"] == "back"
        await alice.close()
        await carol.close()
    run(go())


def test_roster_subscription_with_approval_and_presence(lab):
    async def go():
        bob = await slix_connect(jid("bob", "r"), "bob-pw", home(lab, "bob"), lab.ca_file)
        dave = await slix_connect(jid("dave", "r"), "dave-pw", home(lab, "dave"), lab.ca_file)
        for c in (bob, dave):  # answer subscription requests by hand, not automatically
            # (None: neither accept nor deny; slixmpp's False denies at once with 'unsubscribed',
            # after which the test's 'subscribed' is a pre-approval, RFC 6121 §3.4 — #23)
            c.roster.auto_authorize = None
            c.roster.auto_subscribe = False
        bob.send_presence(pto=jid("dave"), ptype="subscribe")
        req = await dave.next_from(dave.subscriptions, 5, "subscribe",
                                   lambda p: p["type"] == "subscribe")
        assert req["from"] == jid("bob")
        dave.send_presence(pto=jid("bob"), ptype="subscribed")
        await bob.next_from(bob.subscriptions, 5, "subscribed", lambda p: p["type"] == "subscribed")
        # bob now sees dave's presence; the roster says to/from on each side.
        await bob.next_from(bob.presences, 5, "dave's presence",
                            lambda p: p["from"].bare == jid("dave") and p["type"] == "available")
        wait = time.monotonic() + 5
        while bob.client_roster[jid("dave")]["subscription"] != "to" and time.monotonic() < wait:
            await asyncio.sleep(0.05)
        assert bob.client_roster[jid("dave")]["subscription"] == "to"
        await dave.close()
        await bob.next_from(bob.presences, 5, "dave's unavailable",
                            lambda p: p["from"].bare == jid("dave") and p["type"] == "unavailable")
        # A fresh sign-in reads the stored roster.
        bob2 = await slix_connect(jid("bob", "r2"), "bob-pw", home(lab, "bob"), lab.ca_file)
        assert bob2.client_roster[jid("dave")]["subscription"] == "to"
        await bob.close()
        await bob2.close()
    run(go())


def test_offline_messages_are_delivered_at_sign_in(lab):
    async def go():
        carol = await slix_connect(jid("carol", "o"), "carol-pw", home(lab, "carol"), lab.ca_file)
        for i in range(3):
            carol.send_chat(jid("erin"), f"offline {i}")
        await asyncio.sleep(0.5)  # let the stores commit before erin signs in
        erin = await slix_connect(jid("erin", "o"), "erin-pw", home(lab, "erin"), lab.ca_file)
        bodies = [(await erin.next_message(5))["body"] for _ in range(3)]
        assert bodies == ["offline 0", "offline 1", "offline 2"]
        await carol.close()
        await erin.close()
        # Delivered once only.
        erin = await slix_connect(jid("erin", "o2"), "erin-pw", home(lab, "erin"), lab.ca_file)
        with pytest.raises(AssertionError):
            await erin.next_message(1)
        await erin.close()
    run(go())


def test_carbons_copy_to_other_resources(lab):
    async def go():
        a1 = await slix_connect(jid("alice", "c1"), "alice-pw", home(lab, "alice"), lab.ca_file)
        a2 = await slix_connect(jid("alice", "c2"), "alice-pw", home(lab, "alice"), lab.ca_file)
        await a2["xep_0280"].enable()
        bob = await slix_connect(jid("bob", "c"), "bob-pw", home(lab, "bob"), lab.ca_file)
        a1.send_chat(jid("bob", "c"), "sent by c1")
        kind, m = await a2.next_from(a2.carbons, 5, "sent carbon")
        assert kind == "sent"
        assert m["carbon_sent"]["body"] == "sent by c1"
        bob.send_chat(jid("alice", "c1"), "to c1")
        kind, m = await a2.next_from(a2.carbons, 5, "received carbon")
        assert kind == "received" and m["carbon_received"]["body"] == "to c1"
        for c in (a1, a2, bob):
            await c.close()
    run(go())


def test_stream_management_resumes_and_redelivers(lab):
    async def go():
        fe = home(lab, "bob")
        bob = await slix_connect(jid("bob", "sm"), "bob-pw", fe, lab.ca_file)
        sm = bob["xep_0198"]
        deadline = time.monotonic() + 5
        while not sm.sm_id and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sm.sm_id, "stream management was not enabled"
        alice = await slix_connect(jid("alice", "sm"), "alice-pw", home(lab, "alice"), lab.ca_file)
        # Cut bob's TCP connection without a goodbye; a message sent meanwhile waits for him.
        bob.transport.abort()
        await asyncio.wait_for(bob.ended.wait(), 5)
        alice.send_chat(jid("bob", "sm"), "while you were away")
        await asyncio.sleep(0.5)
        bob.connect(address=(fe, 5222))
        await asyncio.wait_for(bob.resumed.wait(), 10)
        m = await bob.next_message(10)
        assert m["body"] == "while you were away"
        await alice.close()
        await bob.close()
    run(go())


def test_blocking_stops_messages(lab):
    async def go():
        erin = await slix_connect(jid("erin", "b"), "erin-pw", home(lab, "erin"), lab.ca_file)
        alice = await slix_connect(jid("alice", "b"), "alice-pw", home(lab, "alice"), lab.ca_file)
        await erin["xep_0191"].block([jid("alice")])
        alice.send_chat(jid("erin", "b"), "blocked?")
        with pytest.raises(AssertionError):
            await erin.next_message(1)
        await erin["xep_0191"].unblock([jid("alice")])
        alice.send_chat(jid("erin", "b"), "unblocked")
        assert (await erin.next_message(5))["body"] == "unblocked"
        await erin.close()
        await alice.close()
    run(go())


def test_redirects_to_the_owner_with_see_other_host(lab):
    pool_servers = lab.pools[POOL1]["servers"]
    owner = owner_of(list(pool_servers), jid("alice"))
    other = next(a for f, a in pool_servers.items() if f != owner)

    async def go():
        c = await slix_connect(jid("alice", "redir"), "alice-pw", other, lab.ca_file)
        assert c.redirects == [pool_servers[owner]]
        assert c.address[0] == pool_servers[owner]
        await c.close()
        # A user of the other pool is sent to its own pool.
        c = await slix_connect(jid("carol", "redir"), "carol-pw", other, lab.ca_file)
        assert c.redirects and c.redirects[-1] == home(lab, "carol")
        await c.close()
    run(go())



def test_admin_reports_sessions(lab):
    async def go():
        c = await slix_connect(jid("dave", "adm"), "dave-pw", home(lab, "dave"), lab.ca_file)
        server = next(f for f, a in lab.servers().items() if a == home(lab, "dave"))
        sessions = lab.admin(server, "/sessions")["sessions"]
        assert any(s["jid"] == jid("dave", "adm") for s in sessions)
        assert lab.admin(server, "/status")["sessions"] >= 1
        assert "tandem_frontend_sessions" in lab.admin(server, "/metrics")
        await c.close()
    run(go())


def test_killed_front_end_users_land_on_the_other_server():
    lab = make_lab("fekill", block=10)
    try:
        pool_servers = lab.pools[POOL1]["servers"]
        owner = owner_of(list(pool_servers), jid("alice"))
        survivor = next(f for f in pool_servers if f != owner)

        async def go():
            alice = await slix_connect(jid("alice", "k"), "alice-pw", pool_servers[owner], lab.ca_file)
            lab.kill9(owner)
            await asyncio.wait_for(alice.ended.wait(), 10)
            wait_until(lambda: lab.admin(survivor, "/pool")["servers"] and not any(
                s["healthy"] for s in lab.admin(survivor, "/pool")["servers"] if s["fqdn"] == owner),
                10, "survivor sees the owner gone")
            alice2 = await slix_connect(jid("alice", "k2"), "alice-pw", pool_servers[survivor],
                                        lab.ca_file)
            carol = await slix_connect(jid("carol", "k"), "carol-pw", home(lab, "carol"), lab.ca_file)
            carol.send_chat(jid("alice"), "found you")
            assert (await alice2.next_message(5))["body"] == "found you"
            await alice2.close()
            await carol.close()
        run(go())
    finally:
        lab.close()


class RawComponent:
    """A chat server's side of the component protocol (docs/architecture.md), by hand."""

    def __init__(self, server: str):
        self.server = server
        self.buf = ""

    async def attach(self, address: str, token: str) -> "RawComponent":
        self.r, self.w = await asyncio.open_connection(address, 5347)
        self.w.write((f"<stream:stream xmlns='jabber:component:accept' "
                      f"xmlns:stream='http://etherx.jabber.org/streams' to='{CHAT}' "
                      f"from='{self.server}'>").encode())
        header = await self.read_until(r"<stream:stream[^>]*>")
        stream_id = re.search(r"id=['\"]([^'\"]+)", header).group(1)
        digest = hashlib.sha1((stream_id + token).encode()).hexdigest()
        self.w.write(f"<handshake>{digest}</handshake>".encode())
        await self.read_until(r"<handshake\s*/>")
        return self

    async def read_until(self, pattern: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.buf, re.S)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.server}: no {pattern!r} within {timeout} s; got {self.buf!r}")
            chunk = await asyncio.wait_for(self.r.read(65536), left)
            if not chunk:
                raise AssertionError(f"{self.server}: connection closed; got {self.buf!r}")
            self.buf += chunk.decode()

    def send(self, xml: str) -> None:
        self.w.write(xml.encode())

    def close(self) -> None:
        self.w.close()


def test_room_stanzas_reach_the_owning_chat_server_and_replies_come_back(lab):
    """Components attach only to the server alice does NOT use: her front end forwards the
    stanza over the internal link, and the reply travels back the same way."""
    pool_servers = lab.pools[POOL1]["servers"]
    alice_fe = owner_of(list(pool_servers), jid("alice"))
    other_fe = next(f for f in pool_servers if f != alice_fe)
    room = f"ops@{CHAT}"
    owner = owner_of(["chat1a.example.test", "chat1b.example.test"], room)

    async def go():
        comps = {s: await RawComponent(s).attach(pool_servers[other_fe], lab.token)
                 for s in ("chat1a.example.test", "chat1b.example.test")}
        alice = await slix_connect(jid("alice", "room"), "alice-pw", pool_servers[alice_fe], lab.ca_file)
        alice.send_message(mto=room, mbody="hello room", mtype="groupchat")
        got = await comps[owner].read_until(r"<message.*?</message>")
        assert "hello room" in got and jid("alice", "room") in got
        comps[owner].send(f"<message from='{room}/alice' to='{jid('alice', 'room')}' "
                          f"type='groupchat'><body>echo</body></message>")
        m = await alice.next_message(5)
        assert m["body"] == "echo" and m["from"] == f"{room}/alice"
        # A wrong secret is refused.
        bad = RawComponent("chat1a.example.test")
        with pytest.raises(AssertionError):
            await bad.attach(pool_servers[other_fe], "0" * 64)
        for c in comps.values():
            c.close()
        await alice.close()
    run(go())


def test_tandemctl_manages_users_and_reports_sessions(lab):
    pw = lab.dir / "dora.pw"
    pw.write_text("dora-pw\n")
    out = json.loads(lab.ctl("user", "add", "dora", "--pool", POOL2, "--password-file", str(pw),
                             "--json").stdout)
    assert out["jid"] == jid("dora") and out["pool"] == POOL2
    again = lab.ctl("user", "add", "dora", "--pool", POOL2, "--password-file", str(pw), check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    users = json.loads(lab.ctl("user", "list", "--pool", POOL2, "--json").stdout)["users"]
    assert jid("dora") in [u["jid"] for u in users]
    dora_fe = lab.servers()[owner_of(list(lab.pools[POOL2]["servers"]), jid("dora"))]

    async def go():
        dora = await slix_connect(jid("dora", "cli"), "dora-pw", dora_fe, lab.ca_file)
        sessions = json.loads(lab.ctl("user", "sessions", "--user", "dora", "--json").stdout)
        assert [s["jid"] for s in sessions["sessions"]] == [jid("dora", "cli")]
        status = json.loads(lab.ctl("pool", "status", "--pool", POOL2, "--json").stdout)
        assert all(s["healthy"] for s in status["servers"])
        assert sum(s["sessions"] for s in status["servers"]) >= 1
        lab.ctl("user", "remove", "dora", "--yes")
        await asyncio.wait_for(dora.ended.wait(), 5)  # the server ends the removed user's session
    run(go())
    assert "dora" not in lab.ctl("user", "list", "--pool", POOL2).stdout
