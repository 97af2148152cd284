"""Front end proxy mode (issue 6 §4): clients that cannot follow see-other-host keep their stream
at the server they reached, which relays it to the owner over the internal link. aioxmpp is
proxied, slixmpp is redirected in `auto` and proxied in `proxy`; the owner's death ends proxied
sessions; tandemctl shows where a proxied session's client is connected.

The lab (lib/frontend_lab.make_lab) is started once for this file. Run: TANDEM_TEST_NET=14 \
    TANDEM_BUILD_DIR=build-h4 /usr/bin/python3 -m pytest tests/integration/test_frontend_proxy.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.frontend_lab import (  # noqa: E402
    PASSWORDS, POOL1, home, jid, make_lab, non_owner, run, set_redirect_mode)
from lib.xmpp_clients import AioClient, slix_connect, wait_until  # noqa: E402


class AioWatch:
    """An aioxmpp client (lib AioClient) that also records directed presence and each time its
    stream is (re)established."""

    def __init__(self, user: str, address: str, ca_file: str):
        self.c = AioClient(jid(user), PASSWORDS[user], address, ca_file)
        aioxmpp = self.c.aioxmpp
        self.presences: asyncio.Queue = asyncio.Queue()
        self.establishments = 0
        self.changed = asyncio.Event()

        def established():
            self.establishments += 1
            self.changed.set()
        self.c.client.on_stream_established.connect(established)
        self.c.client.stream.register_presence_callback(
            aioxmpp.PresenceType.AVAILABLE, None, lambda p: self.presences.put_nowait(p))

    async def start(self, timeout: float = 20) -> "AioWatch":
        await self.c.start(timeout)
        return self

    async def established_again(self, timeout: float) -> None:
        first = self.establishments
        deadline = time.monotonic() + timeout
        while self.establishments == first:
            left = deadline - time.monotonic()
            assert left > 0, f"aioxmpp {self.c.jid} did not sign in again within {timeout} s"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def send_presence_to(self, to: str) -> None:
        aioxmpp = self.c.aioxmpp
        await self.c.client.send(aioxmpp.Presence(to=aioxmpp.JID.fromstr(to),
                                                  type_=aioxmpp.PresenceType.AVAILABLE))


def test_aioxmpp_at_a_non_owner_server_is_proxied_to_the_owner(lab):
    owner, via = non_owner(lab, "erin")
    servers = lab.servers()

    async def go():
        # aioxmpp 0.13 does not follow see-other-host: it reconnects to the address it has, so
        # in `auto` the second attempt is proxied.
        erin = await AioWatch("erin", servers[via], lab.ca_file).start()
        bob = await slix_connect(jid("bob", "px"), "bob-pw", home(lab, "bob"), lab.ca_file)
        # The owner holds the session; the client is at `via`.
        sessions = lab.admin(owner, "/sessions?user=erin")["sessions"]
        assert len(sessions) == 1 and sessions[0]["proxied_via"] == via, sessions
        erin_full = sessions[0]["jid"]
        relays = lab.admin(via, "/status")["proxied_connections"]
        assert {"jid": erin_full, "owner": owner} in [
            {"jid": r["jid"], "owner": r["owner"]} for r in relays], relays
        assert not lab.admin(via, "/sessions?user=erin")["sessions"]
        listed = json.loads(lab.ctl("user", "sessions", "--user", "erin", "--json").stdout)
        assert [(s["server"], s["proxied_via"]) for s in listed["sessions"]] == [(owner, via)]
        # Messages both ways.
        await erin.c.send_chat(jid("bob", "px"), "from behind the proxy")
        assert (await bob.next_message(5))["body"] == "from behind the proxy"
        bob.send_chat(erin_full, "to behind the proxy")
        assert (await erin.c.next_message(5)).body.any() == "to behind the proxy"
        # Presence both ways (directed).
        await erin.send_presence_to(jid("bob", "px"))
        p = await bob.next_from(bob.presences, 5, "presence from erin",
                                lambda p: p["from"].bare == jid("erin"))
        assert str(p["from"]) == erin_full
        bob.send_presence(pto=erin_full)
        p = await asyncio.wait_for(erin.presences.get(), 5)
        while str(p.from_.bare()) == jid("erin"):  # her own presence, reflected first
            p = await asyncio.wait_for(erin.presences.get(), 5)
        assert str(p.from_) == jid("bob", "px")
        await erin.c.close()
        wait_until(lambda: not lab.admin(owner, "/sessions?user=erin")["sessions"], 5,
                   "erin's proxied session to end at the owner")
        wait_until(lambda: not lab.admin(via, "/status")["proxied_connections"], 5,
                   "the relay to end")
        # Offline delivery through the proxy.
        bob.send_chat(jid("erin"), "while you were away")
        await asyncio.sleep(0.5)
        erin = await AioWatch("erin", servers[via], lab.ca_file).start()
        assert (await erin.c.next_message(5)).body.any() == "while you were away"
        await erin.c.close()
        await bob.close()
    run(go(), 90)


def test_slixmpp_is_redirected_in_auto_and_proxied_in_proxy_mode(lab):
    # bob, not alice, for `auto`: test_redirects_to_the_owner_with_see_other_host redirects alice
    # moments earlier, and in `auto` a JID that comes back within 60 s of a redirect is proxied.
    b_owner, b_via = non_owner(lab, "bob")
    servers = lab.servers()

    async def go():
        c = await slix_connect(jid("bob", "auto"), "bob-pw", servers[b_via], lab.ca_file)
        assert c.redirects == [servers[b_owner]] and c.address[0] == servers[b_owner]
        await c.close()
    run(go())
    owner, via = non_owner(lab, "alice")
    set_redirect_mode(lab, POOL1, "proxy")
    try:
        async def proxied():
            c = await slix_connect(jid("alice", "px"), "alice-pw", servers[via], lab.ca_file)
            assert c.redirects == [] and c.address[0] == servers[via]
            sessions = lab.admin(owner, "/sessions?user=alice")["sessions"]
            assert (jid("alice", "px"), via) in [(s["jid"], s["proxied_via"]) for s in sessions]
            bob = await slix_connect(jid("bob", "px2"), "bob-pw", home(lab, "bob"), lab.ca_file)
            bob.send_chat(jid("alice", "px"), "hello proxied slixmpp")
            assert (await c.next_message(5))["body"] == "hello proxied slixmpp"
            c.send_chat(jid("bob", "px2"), "hello back")
            assert (await bob.next_message(5))["body"] == "hello back"
            await bob.close()
            await c.close()
        run(proxied())
    finally:
        set_redirect_mode(lab, POOL1, "auto")
    bad = lab.ctl("config", "set", f"frontend.{POOL1}.redirect", '"sometimes"', check=False)
    assert bad.returncode != 0 and "redirect" in bad.stderr and "proxy" in bad.stderr


def test_owner_death_ends_proxied_sessions_and_clients_reconnect():
    lab = make_lab("feproxy", block=20)
    try:
        owner, via = non_owner(lab, "erin")
        servers = lab.servers()

        async def go():
            erin = await AioWatch("erin", servers[via], lab.ca_file).start()
            assert lab.admin(owner, "/sessions?user=erin")["sessions"][0]["proxied_via"] == via
            lab.kill9(owner)
            # The via server ends the relay; aioxmpp reconnects and now `via` owns erin.
            await erin.established_again(20)
            wait_until(lambda: lab.admin(via, "/sessions?user=erin")["sessions"], 10,
                       "erin's session at the surviving server")
            assert lab.admin(via, "/status")["proxied_connections"] == []
            carol = await slix_connect(jid("carol", "px"), "carol-pw", home(lab, "carol"), lab.ca_file)
            carol.send_chat(jid("erin"), "after the owner died")
            assert (await erin.c.next_message(5)).body.any() == "after the owner died"
            await carol.close()
            await erin.c.close()
        run(go(), 90)
    finally:
        lab.close()


def test_tandemctl_shows_where_a_proxied_sessions_client_is(lab):
    """`user sessions` names the via server (VIA); `pool status` counts the proxied session at
    the owner and the relayed connection at the via server, in the table and in --json."""
    owner, via = non_owner(lab, "erin")
    servers = lab.servers()

    async def go():
        erin = await AioWatch("erin", servers[via], lab.ca_file).start()
        try:
            table = lab.ctl("user", "sessions", "--user", "erin").stdout
            header, row = table.splitlines()[0].split(), next(
                line.split() for line in table.splitlines() if line.startswith(jid("erin")))
            assert header[:3] == ["JID", "SERVER", "VIA"], table
            assert row[1:3] == [owner, via], table
            status = json.loads(lab.ctl("pool", "status", "--pool", POOL1, "--json").stdout)
            by_server = {s["fqdn"]: s for s in status["servers"]}
            assert by_server[owner]["proxied_sessions"] == 1, by_server[owner]
            assert [r["owner"] for r in by_server[via]["proxied_connections"]] == [owner], by_server[via]
            assert by_server[via]["proxied_sessions"] == 0 and not by_server[owner]["proxied_connections"]
            table = lab.ctl("pool", "status", "--pool", POOL1).stdout
            cols = table.splitlines()[0].split()
            rows = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
            assert rows[owner][cols.index("PROXIED")] == "1", table
            assert rows[via][cols.index("RELAYED")] == "1", table
        finally:
            await erin.c.close()
    run(go(), 90)
