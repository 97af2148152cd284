"""Persistent chat disaster recovery drill with real processes and real XMPP clients.

Transcript: bob's clients (home pool pool2) chat steadily in three rooms, recording every message
the room reflected (= acknowledged, committed to mgc); `deploy kill-site Site1` (chat1a, pool1, pc1
and pc1m die by kill -9); the operator fails the CMS over to pool2 and runs `chat failover
--frontend-pool pool2.example.test`; clients reconnect through pool2 and chat again; every
acknowledged message older than the reported bound is in the rooms' history and the reported loss
equals what the clients counted. Then `deploy revive-site Site1`, `chat failback`: nothing written
while failed over is lost, state Normal, log shipping healthy again.

    TANDEM_TEST_NET=16 TANDEM_BUILD_DIR=build-h6 /usr/bin/python3 -m pytest -m drill -s \
        tests/integration/test_chat_hadr.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lib.xmpp_clients import owner_of, slix_connect  # noqa: E402
from test_chat_hadr_stores import cms_failover, wait_cms_standby  # noqa: E402

pytestmark = pytest.mark.drill

POOL = "chat.example.test"
ROOMS = ["drill1", "drill2", "drill3"]


def parse_ts(s: str) -> float:
    s = s.strip().replace(" ", "T")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s).timestamp()


class RoomLoad:
    """One client per room, in its own event loop thread: sends a groupchat message every
    `period` s and records each one the room reflects back (acknowledged) with its time."""

    def __init__(self, d, server: str, period: float = 0.1):
        self.d, self.server, self.period = d, server, period
        self.acked: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self):
        self.thread.start()
        return self

    async def _client(self, room: str, n: int):
        jid = f"bob@example.test/load{n}-{uuid.uuid4().hex[:4]}"
        c = await slix_connect(jid, "bob-pw", self.d.address(self.server), self.d.ca_file(),
                               plugins=("xep_0030", "xep_0045", "xep_0199"))
        muc = f"{room}@{POOL}"
        c.send_presence(pto=f"{muc}/bob{n}")
        pending: set[str] = set()

        def on_message(m):
            if m["type"] == "groupchat" and m["body"] in pending:
                pending.discard(m["body"])
                self.acked[m["body"]] = time.time()
        c.add_event_handler("groupchat_message", on_message)
        await asyncio.sleep(1)
        return c, muc, pending

    async def _main(self):
        try:
            clients = [await self._client(r, i) for i, r in enumerate(ROOMS)]
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"connect: {e}")
            self.ready.set()
            return
        self.ready.set()
        while not self.stop.is_set():
            for c, muc, pending in clients:
                body = f"{muc}:{uuid.uuid4().hex[:12]}"
                pending.add(body)
                self.sent[body] = time.time()
                try:
                    c.send_message(mto=muc, mbody=body, mtype="groupchat")
                except Exception as e:  # noqa: BLE001 - the front end may be gone
                    self.errors.append(str(e))
            await asyncio.sleep(self.period)
        await asyncio.sleep(1)
        for c, _, _ in clients:
            await c.close()

    def finish(self, timeout=10):
        self.stop.set()
        self.thread.join(timeout)


def bob_server(d) -> str:
    return owner_of(["fe2a.example.test", "fe2b.example.test"], "bob@example.test")


async def chat_once(d, server: str, room: str, timeout: float = 5) -> bool:
    """Connect through `server`, join `room`, send one message; True when the room reflects it."""
    c = await slix_connect(f"bob@example.test/probe{uuid.uuid4().hex[:4]}", "bob-pw",
                           d.address(server), d.ca_file(), plugins=("xep_0030", "xep_0045"))
    try:
        muc = f"{room}@{POOL}"
        got = asyncio.Event()
        body = f"probe:{uuid.uuid4().hex[:8]}"
        c.add_event_handler("groupchat_message", lambda m: m["body"] == body and got.set())
        c.send_presence(pto=f"{muc}/probe{uuid.uuid4().hex[:4]}")
        await asyncio.sleep(0.3)
        c.send_message(mto=muc, mbody=body, mtype="groupchat")
        await asyncio.wait_for(got.wait(), timeout)
        return True
    finally:
        await c.close()


def chatting_again(d, room="drill1") -> bool:
    try:
        return asyncio.run(chat_once(d, bob_server(d), room))
    except Exception:  # noqa: BLE001
        return False


def bodies_on(d, stores, bodies) -> set[str]:
    hosts = ",".join(d.address(s) for s in stores)
    with psycopg2.connect(host=hosts, port=",".join("5432" for _ in stores), dbname="mgc",
                          user="tandem", password=d.token(), connect_timeout=2,
                          target_session_attrs="read-write") as c, c.cursor() as cur:
        cur.execute("SELECT body FROM messages WHERE body = ANY(%s)", (list(bodies),))
        return {r[0] for r in cur.fetchall()}


@pytest.fixture(scope="module")
def d(deploy_module):
    dep = deploy_module("examples/two-site.yaml")
    dep.wait_healthy(["chat1a.example.test", "fe2a.example.test", "fe2b.example.test"], timeout=120)

    def shipping():
        doc = dep.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)
        return doc["role"] == "BackupRestoring" and doc["restore_job"]
    dep.wait_until(shipping, timeout=180, what="log shipping pc1 -> pcb")
    dep.wait_until(lambda: chatting_again(dep), timeout=60, what="bob chatting in drill1")
    wait_cms_standby(dep)
    return dep


def test_site_loss_failover_and_failback_under_chat_load(d, tmp_path):
    load = RoomLoad(d, bob_server(d)).start()
    assert load.ready.wait(30) and not load.errors, load.errors
    d.wait_until(lambda: len(load.acked) >= 150, timeout=60, what="150 acknowledged messages")
    time.sleep(3)
    killed_at = time.time()
    d.kill_site("Site1")
    time.sleep(2)  # messages sent now are not acknowledged: they count as not sent
    load.finish()
    acked = dict(load.acked)
    ids = tmp_path / "acked.json"
    ids.write_text(json.dumps(list(acked)))

    cms_failover(d)
    t0 = time.time()
    doc = d.ctl("chat", "failover", "--pool", POOL, "--frontend-pool", "pool2.example.test",
                "--acknowledged-ids", str(ids), "--yes", json=True, timeout=300)
    runbook_s = time.time() - t0
    assert doc["outcome"] == "done", doc
    d.wait_until(lambda: chatting_again(d), timeout=60, what="clients chatting again through pool2")
    rto = time.time() - t0
    r = doc["report"]
    bound = parse_ts(r["last_commit_replayed"])
    have = bodies_on(d, ["pcb", "pcbm"], acked)
    missing_older = [b for b, t in acked.items() if t < bound - 0.01 and b not in have]
    assert not missing_older, f"{len(missing_older)} acknowledged messages older than the bound lost"
    counted_lost = len(acked) - len(have)
    assert r["messages_lost"] == counted_lost
    print(f"\nchat failover: runbook {runbook_s:.1f} s, chatting again after {rto:.1f} s; "
          f"lost {counted_lost} of {len(acked)} acknowledged; bound {killed_at - bound:.2f} s "
          f"before the kill")

    # ---- the failed-over period, then failback.
    during = RoomLoad(d, bob_server(d)).start()
    assert during.ready.wait(30) and not during.errors, during.errors
    d.wait_until(lambda: len(during.acked) >= 60, timeout=60, what="chat while failed over")
    during.finish()
    d.revive_site("Site1")
    t0 = time.time()
    back = d.ctl("chat", "failback", "--pool", POOL, "--yes", json=True, timeout=600)
    assert back["outcome"] == "done", back
    d.wait_until(lambda: chatting_again(d), timeout=60, what="clients chatting after failback")
    print(f"chat failback: {time.time() - t0:.1f} s to chatting again")
    everything = set(have) | set(during.acked)
    assert bodies_on(d, ["pc1", "pc1m"], everything) == everything, "failback lost messages"
    assert "Normal" in d.ctl("config", "get", f"chat.{POOL}.state").stdout
    ls = d.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)
    assert ls["role"] == "BackupRestoring" and ls["copy_job"] and ls["restore_job"]
