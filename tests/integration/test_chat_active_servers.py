"""Active servers: rooms are spread over the active chat servers and move when the list changes,
also while a client writes to a moving room (nothing acknowledged is lost); an inactive server
serves nothing and says so (issue #7)."""

import asyncio
import copy
import json
from pathlib import Path

import pytest
import yaml

from test_chat_muc import NS_USER, SERVICE, push_newest_version, sign_in

REPO = Path(__file__).resolve().parents[2]
ROOMS = [f"r{i}" for i in range(10)]


def topology():
    t = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())
    t = copy.deepcopy(t)
    for p in t["pools"]:
        if p["role"] == "chat":
            p["servers"].append({"fqdn": "chat1b.example.test", "address": "127.0.1.31"})
            p["active_servers"] = ["chat1a.example.test"]
    return t


def chat_status(d, server):
    return d.admin(server, "/status")["chat"]


def set_active(d, servers):
    d.ctl("config", "set", f"chat.{SERVICE}.active_servers", json.dumps(servers))
    try:
        d.wait_until(lambda: chat_status(d, "chat1a.example.test")["active_servers"] == servers,
                     timeout=3, what="replica push")
    except AssertionError:
        push_newest_version(d)


def serving(d, server):
    s = chat_status(d, server)
    return s["active"] and s["schema_ready"] and any(f["attached"] for f in s["frontends"])


@pytest.fixture(scope="module")
def two_chat(deploy_module):
    d = deploy_module(topology())
    d.wait_until(lambda: serving(d, "chat1a.example.test"), timeout=60, what="chat1a serving")
    return d


def test_inactive_server_serves_nothing_and_rooms_spread_and_move(two_chat):
    d = two_chat
    s = chat_status(d, "chat1b.example.test")
    assert not s["active"] and "not on the active server list" in s["reason"]
    assert s["frontends"] == []
    set_active(d, ["chat1a.example.test", "chat1b.example.test"])
    d.wait_until(lambda: serving(d, "chat1b.example.test"), timeout=30, what="chat1b serving")

    async def phase1():
        alice = await sign_in(d, "alice")
        try:
            for r in ROOMS:
                await alice.join(r, "alice")
                await alice.configure(r, persistentroom=1)
                alice.say(r, f"before-{r}")
                await alice.reflection(r, f"before-{r}")
        finally:
            await alice.c.close()
    asyncio.run(phase1())
    owned_a = set(chat_status(d, "chat1a.example.test")["rooms_owned"])
    owned_b = set(chat_status(d, "chat1b.example.test")["rooms_owned"])
    assert owned_a | owned_b >= set(ROOMS) and not (owned_a & owned_b)
    assert owned_a & set(ROOMS) and owned_b & set(ROOMS), (owned_a, owned_b)

    async def write_under_load(bob, room, changed: asyncio.Event) -> tuple[list, list]:
        """bob says load-0, load-1, ... in `room`, each waiting for its reflection (the
        acknowledgement), until 10 more are acknowledged after the list changed. When the room
        moves away under him he is evicted (status 332): he rejoins it at its new owner and goes
        on. Bounded: 200 messages (one MAM page holds 250). Returns (sent, acknowledged)."""
        sent, acked, after_change = [], [], 0
        for i in range(200):
            body = f"load-{i}"
            bob.say(room, body)
            sent.append(body)
            try:
                await bob.reflection(room, body, timeout=3)
                acked.append(body)
                after_change += changed.is_set()
            except AssertionError:  # not acknowledged: the room moved meanwhile
                await bob.stanza(bob.pres, lambda p: p.get("type") == "unavailable"
                                 and p.get("from") == f"{room}@{SERVICE}/bob", timeout=10,
                                 what=f"bob's eviction from {room}")
                await bob.join(room, "bob")
            if after_change >= 10:
                break
            await asyncio.sleep(0.05)
        return sent, acked

    async def phase2():
        alice = await sign_in(d, "alice")
        bob = await sign_in(d, "bob")
        try:
            moved = sorted(owned_b & set(ROOMS))
            for r in moved:
                await alice.join(r, "alice")
            # Under load: bob keeps writing to a room that moves while the list changes.
            loaded = moved[0]
            await bob.join(loaded, "bob")
            changed = asyncio.Event()
            writer = asyncio.ensure_future(write_under_load(bob, loaded, changed))
            await asyncio.sleep(1)
            set_active(d, ["chat1a.example.test"])
            changed.set()
            # Occupants of rooms that moved away are told (status 332) and rejoin the new owner.
            for r in moved:
                p = await alice.stanza(alice.pres, lambda p, r=r: p.get("type") == "unavailable"
                                       and p.get("from") == f"{r}@{SERVICE}/alice", timeout=10,
                                       what=f"eviction from {r}")
                assert "332" in {s.get("code") for s in p.iter(f"{{{NS_USER}}}status")}
            sent, acked = await asyncio.wait_for(writer, 60)
            alice.drain()
            for r in moved:
                await alice.join(r, "alice")
                alice.say(r, f"after-{r}")
                await alice.reflection(r, f"after-{r}")
                bodies, _, _ = await alice.mam(r, max_=250)
                if r != loaded:
                    assert bodies == [f"before-{r}", f"after-{r}"], bodies
                    continue
                # Every acknowledged message is in the history, once, in order; an unacknowledged
                # one (sent as the room moved) may or may not be.
                load = [b for b in bodies if b.startswith("load-")]
                assert bodies[0] == f"before-{r}" and bodies[-1] == f"after-{r}", bodies[:3]
                assert len(load) == len(set(load)) and set(load) <= set(sent), load
                assert [b for b in load if b in set(acked)] == acked, (acked, load)
                assert load == sorted(load, key=lambda b: int(b.split("-")[1])), load
            print(f"under load: {len(sent)} sent to {loaded}, {len(acked)} acknowledged, "
                  f"{len(load)} in its history")
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(phase2())
    d.wait_until(lambda: not chat_status(d, "chat1b.example.test")["active"], timeout=5,
                 what="chat1b inactive again")
