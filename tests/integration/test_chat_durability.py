"""Persistent chat durability: a reflection is an acknowledgement (issue #7).

Alice streams messages into a room and counts the reflections she gets back; the chat server is
killed with SIGKILL mid-stream and started again; afterwards every reflected message is in the
room's archive (MAM) exactly once and in the order it was reflected. Also: the compliance export
files hold exactly the stored messages.
"""

import asyncio
import json
import os
import signal
import subprocess
import time

import psycopg2
import pytest

from test_chat_muc import SERVICE, sign_in, wait_chat_serving

CHAT = "chat1a.example.test"


def chat_record(d):
    for r in d.run_records():
        if r.get("name") == CHAT:
            return r
    raise AssertionError(f"no run record for {CHAT}")


def restart_chat(d):
    rec = chat_record(d)
    with open(rec["log"], "ab") as log:
        subprocess.Popen(rec["argv"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)


def mgc(d, db="mgc"):
    store = d.pools("chat")[0]["store"]
    return psycopg2.connect(host=d.address(store), dbname=db, user="tandem", password=d.token())


@pytest.fixture(scope="module")
def quick(deploy_module):
    d = deploy_module("examples/quickstart.yaml")
    wait_chat_serving(d)
    return d


def test_acknowledged_messages_survive_kill_9_exactly_once_in_order(quick):
    n_total, kill_after = 400, 120

    async def scenario():
        alice = await sign_in(quick, "alice")
        reflected = []
        try:
            await alice.join("ops", "alice")

            async def count():
                while True:
                    m = await alice.msgs.get()
                    x = m.xml
                    body = x.findtext("{jabber:client}body") or ""
                    if x.get("type") == "groupchat" and body.startswith("d-") and \
                            x.find("{urn:xmpp:delay}delay") is None:
                        reflected.append(body)
            counter = asyncio.ensure_future(count())
            killed = False
            for i in range(n_total):
                alice.say("ops", f"d-{i:05d}")
                if i % 20 == 19:
                    await asyncio.sleep(0.02)
                if not killed and len(reflected) >= kill_after:
                    os.kill(int(chat_record(quick)["pid"]), signal.SIGKILL)
                    killed = True
            deadline = time.monotonic() + 5
            while not killed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if len(reflected) >= kill_after:
                    os.kill(int(chat_record(quick)["pid"]), signal.SIGKILL)
                    killed = True
            assert killed, f"only {len(reflected)} reflections before the end of the stream"
            await asyncio.sleep(1)
            counter.cancel()
        finally:
            await alice.c.close()
        return list(reflected)

    acked = asyncio.run(scenario())
    assert len(acked) >= 120
    restart_chat(quick)
    wait_chat_serving(quick)

    async def read_archive():
        bob = await sign_in(quick, "bob")
        try:
            await bob.join("ops", "bob")
            bodies, ids, fin = await bob.mam("ops", max_=250)
            out = list(bodies)
            while fin.get("complete") != "true":
                bodies, ids, fin = await bob.mam("ops", max_=250, after=ids[-1])
                out += bodies
            return out
        finally:
            await bob.c.close()

    archived = [b for b in asyncio.run(read_archive()) if b and b.startswith("d-")]
    assert len(archived) == len(set(archived)), "a message was stored twice"
    positions = {b: i for i, b in enumerate(archived)}
    missing = [b for b in acked if b not in positions]
    assert not missing, f"{len(missing)} acknowledged messages are missing, e.g. {missing[:5]}"
    order = [positions[b] for b in acked]
    assert order == sorted(order), "acknowledged messages are out of order in the archive"
    # The archive may hold more than was acknowledged (committed, then killed before the
    # reflection went out), never less.
    assert len(archived) >= len(acked)


def test_compliance_files_hold_exactly_the_stored_messages(quick):
    async def talk():
        alice = await sign_in(quick, "alice")
        try:
            await alice.join("ops", "alice")
            for i in range(30):
                alice.say("ops", f"c-{i}")
            await alice.reflection("ops", "c-29", timeout=15)
        finally:
            await alice.c.close()
    asyncio.run(talk())
    with mgc(quick) as conn, conn.cursor() as cur:
        cur.execute("SELECT seq, stanza_id, body FROM messages ORDER BY seq")
        stored = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    export_dir = quick.state_dir / "compliance" / SERVICE

    def exported():
        lines = {}
        for f in sorted(export_dir.glob("compliance-*.jsonl")) if export_dir.exists() else []:
            for line in f.read_text().splitlines():
                j = json.loads(line)
                assert j["mgc_seq"] not in lines, f"message {j['mgc_seq']} exported twice"
                lines[j["mgc_seq"]] = (j["stanza_id"], j["body"])
        return lines if set(stored) <= set(lines) else None
    lines = quick.wait_until(exported, timeout=60, what="every stored message exported")
    assert {k: v for k, v in lines.items() if k in stored} == stored
    assert set(lines) - set(stored) == set()  # nothing exported that mgc does not hold
    status = quick.ctl("chat", "compliance", "status", json=True)
    assert status["queue_depth"] == 0 or status["messages_exported_total"] >= len(stored)


def test_compliance_status_says_whether_an_adapter_drains_the_queue(quick):
    """The adapter has no admin endpoint: its heartbeat in mgccomp.adapter is what `compliance
    status` reports. Killed, the status says NOT RUNNING while messages queue up; restarted, the
    queue drains and it says running again."""
    def status():
        return quick.ctl("chat", "compliance", "status", json=True)
    st = quick.wait_until(lambda: (s := status())["adapter_running"] and s,
                          timeout=30, what="a running compliance adapter in compliance status")
    assert [a["server"] for a in st["adapters"]] == [CHAT], st
    rec = next(r for r in quick.run_records()
               if r.get("role") == "compliance" or "compliance" in r.get("argv", []))
    interval_s = st["adapters"][0]["interval_ms"] / 1000
    os.kill(rec["pid"], signal.SIGKILL)

    async def talk(prefix, n):
        alice = await sign_in(quick, "alice")
        try:
            await alice.join("ops", "alice")
            for i in range(n):
                alice.say("ops", f"{prefix}-{i}")
            await alice.reflection("ops", f"{prefix}-{n - 1}", timeout=15)
        finally:
            await alice.c.close()
    asyncio.run(talk("q", 5))
    st = quick.wait_until(lambda: (s := status())["queue_depth"] >= 5 and not s["adapter_running"]
                          and s, timeout=3 * interval_s + 20,
                          what="compliance status: queue growing, adapter NOT RUNNING")
    text = quick.ctl("chat", "compliance", "status").stdout
    assert "NOT RUNNING" in text and "no compliance adapter is exporting them" in text, text
    with open(rec["log"], "ab") as log:
        subprocess.Popen(rec["argv"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    quick.wait_until(lambda: (s := status())["adapter_running"] and s["queue_depth"] == 0,
                     timeout=3 * interval_s + 20, what="restarted adapter drains the queue")
