"""Persistent chat disaster recovery, store level: the chat failover and failback runbooks against
a real two-site deployment, with a writer committing chat messages into `mgc` on the primary store
(recording every acknowledged id) and a real `deploy kill-site Site1` (kill -9 of everything in
the site). The XMPP-level drill with real clients is test_chat_hadr.py.

Transcript:
  chat failover refused while pc1 answers (not a site loss: db failover or --force)
  -> writer commits messages on pc1 (acknowledged ids recorded) -> kill-site Site1
  -> chat failover refused (CMS down; hint: cms failover) -> cms failover to pool2
  -> chat failover refused (front-end pool1 down; names pool2; then an active server in Site1)
  -> --frontend-pool pool2, killed
     after every step in turn and resumed -> report: bound and loss == what the writer counted
  -> rerun changes nothing -> writes on pcb -> revive-site Site1 -> chat failback (killed after
     every step, resumed) -> every message on pc1, state Normal, pc1m SYNCHRONIZED, log
     shipping healthy -> rerun changes nothing.

    TANDEM_TEST_NET=16 TANDEM_BUILD_DIR=build-h6 /usr/bin/python3 -m pytest -m drill \
        tests/integration/test_chat_hadr_stores.py
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from datetime import datetime

import psycopg2
import pytest

pytestmark = pytest.mark.drill

POOL = "chat.example.test"
FAILOVER = ("chat", "failover", "--pool", POOL, "--yes")
FAILBACK = ("chat", "failback", "--pool", POOL, "--yes")


def connect(d, stores, dbname="mgc"):
    hosts = ",".join(d.address(s) for s in stores)
    return psycopg2.connect(host=hosts, port=",".join("5432" for _ in stores), dbname=dbname,
                            user="tandem", password=d.token(), connect_timeout=2,
                            target_session_attrs="read-write")


def ensure_mgc(d):
    """The chat servers create mgc; wait for it (the store-level drill needs only its table)."""
    def ready():
        with connect(d, ["pc1", "pc1m"]) as c, c.cursor() as cur:
            cur.execute("SELECT count(*) FROM messages")
            return True
    d.wait_until(ready, timeout=120, what="mgc.messages on pc1 (created by chat1a)")


class Writer(threading.Thread):
    """Commits one message at a time (autocommit) and records each acknowledged id and when."""

    def __init__(self, d, stores, room="drill", prefix="w"):
        super().__init__(daemon=True)
        self.d, self.stores, self.room, self.prefix = d, stores, room, prefix
        self.acked: dict[str, float] = {}
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            conn = connect(self.d, self.stores)
            conn.autocommit = True
            cur = conn.cursor()
            while not self.stop.is_set():
                sid = f"{self.prefix}-{uuid.uuid4().hex[:12]}"
                cur.execute(
                    "INSERT INTO messages(room, stanza_id, sender, nick, body, stanza, ts, written_by)"
                    " VALUES (%s, %s, 'drill@example.test', 'drill', %s, '<message/>', now(), 'drill')",
                    (self.room, sid, sid))
                self.acked[sid] = time.time()
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 - the site is gone: the writer stops
            self.error = e


def present(d, stores, ids):
    with connect(d, stores) as c, c.cursor() as cur:
        cur.execute("SELECT stanza_id FROM messages WHERE stanza_id = ANY(%s)", (list(ids),))
        return {r[0] for r in cur.fetchall()}


def ctl_rc(d, *args, env=None, timeout=300):
    argv = [str(d.tandemctl), "--state-dir", str(d.state_dir), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, **d.env, **(env or {})})


def run_killed_at_every_step(d, args, steps):
    """Runs the runbook killed (kill -9 by its own hook) after step 1, resumes it killed after
    step 2, ... then resumes it to the end. Returns the final JSON report."""
    for n in range(1, steps):
        extra = ("--resume",) if n > 1 else ()
        cp = ctl_rc(d, *args, *extra, env={"TANDEM_RUNBOOK_DIE_AFTER_STEP": str(n)})
        assert cp.returncode == -9, f"step {n}: expected kill -9, got {cp.returncode}\n{cp.stderr}"
        assert f"[{n}/{steps}]" in cp.stderr
    cp = ctl_rc(d, *args, "--resume", "--json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return json.loads(cp.stdout)


def assert_rerun_changes_nothing(d, args):
    """A rerun of a completed runbook reports every step "already ..." and writes no CMS version."""
    before = d.ctl("config", "history", "--limit", "1", json=True)
    cp = ctl_rc(d, *args, "--json")
    assert cp.returncode == 0, cp.stderr
    again = json.loads(cp.stdout)
    assert all(("already" in s["outcome"]) for s in again["steps"]), again["steps"]
    assert d.ctl("config", "history", "--limit", "1", json=True) == before


def write_until(d, stores, prefix, count, what):
    """Runs a Writer on `stores` until `count` messages are acknowledged; returns it stopped."""
    w = Writer(d, stores, prefix=prefix)
    w.start()
    d.wait_until(lambda: len(w.acked) >= count, timeout=60, what=what)
    w.stop.set()
    w.join(10)
    return w


def parse_ts(s: str) -> float:
    s = s.strip().replace(" ", "T")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if len(s) >= 3 and s[-3] in "+-" and ":" not in s[-3:]:
        s += ":00"
    return datetime.fromisoformat(s).timestamp()


@pytest.fixture(scope="module")
def d(deploy_module):
    dep = deploy_module("examples/two-site.yaml")

    def shipping():
        doc = dep.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)
        return doc["role"] == "BackupRestoring" and doc["restore_job"] and doc["copy_job"]
    dep.wait_until(shipping, timeout=180, what="log shipping pc1 -> pcb running")
    ensure_mgc(dep)
    wait_cms_standby(dep)
    return dep


def cms_failover(d):
    """`cms failover` to pool2's store. Its last check (a pool2 server takes the master lease)
    is not what this drill tests: what matters is that sql2's copy is the active CMS."""
    cp = d.ctl("cms", "failover", "--pool", "pool2.example.test", "--yes", timeout=120, check=False)
    assert cp.returncode == 0 or "is now the active CMS" in cp.stderr, cp.stderr
    d.wait_until(lambda: d.ctl("cms", "status", json=True).get("active_store") == "sql2",
                 timeout=30, what="sql2 the active CMS")


def wait_cms_standby(d):
    """The CMS standby copy (pool2's store) holds the current version: a CMS failover works."""
    def synced():
        # The master's file transfer agent keeps the standby current; `cms sync` does it now.
        d.ctl("cms", "sync", check=False)
        st = d.ctl("cms", "status", json=True)
        v = (st.get("standby") or {}).get("version")
        return st.get("current_version", 0) > 0 and v == st["current_version"] and st
    d.wait_until(synced, timeout=90, what="the CMS standby copy on sql2 up to date")


def test_failover_and_failback_under_write_load(d, tmp_path):
    # ---- refused while the primary answers: this is not a site loss (nothing changes).
    cp = ctl_rc(d, *FAILOVER, "--frontend-pool", "pool2.example.test")
    assert cp.returncode == 3, cp.stderr
    assert "primary store `pc1`" in cp.stderr and "still answers" in cp.stderr, cp.stderr
    assert "--force" in cp.stderr and "tandemctl db failover --store pc1" in cp.stderr, cp.stderr

    # ---- steady writes on the primary, then the site is lost.
    wait_cms_standby(d)
    w = Writer(d, ["pc1", "pc1m"])
    w.start()
    d.wait_until(lambda: len(w.acked) >= 200, timeout=60, what="200 acknowledged messages")
    time.sleep(3)  # steady state: several log backups reach the share meanwhile
    killed_at = time.time()
    d.kill_site("Site1")
    d.wait_until(lambda: not w.is_alive(), timeout=30, what="the writer to lose pc1")
    acked_before = dict(w.acked)
    ids_file = tmp_path / "acked.txt"
    ids_file.write_text("\n".join(acked_before) + "\n")

    # ---- refusals: the CMS is in the lost site; then the front-end pool is.
    cp = ctl_rc(d, *FAILOVER)
    assert cp.returncode == 3, cp.stderr
    assert "CMS is unreachable" in cp.stderr and "tandemctl cms failover --pool pool2.example.test" in cp.stderr
    cms_failover(d)
    cp = ctl_rc(d, *FAILOVER)
    assert cp.returncode == 3, cp.stderr
    assert "front-end pool `pool1.example.test`" in cp.stderr
    # An active server in the lost site is refused, naming the eligible ones.
    cp = ctl_rc(d, *FAILOVER, "--frontend-pool", "pool2.example.test",
                "--active-servers", "chat1a.example.test")
    assert cp.returncode == 3, cp.stderr
    assert "`chat1a.example.test` may not be an active server" in cp.stderr, cp.stderr
    assert "eligible: `chat2a.example.test`" in cp.stderr, cp.stderr
    assert d.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)["role"] == "BackupRestoring"

    # ---- what-if changes nothing and shows the plan.
    cp = ctl_rc(d, *FAILOVER, "--frontend-pool", "pool2.example.test", "--what-if")
    assert cp.returncode == 0, cp.stderr
    assert "[5/8] recover the backup store" in cp.stderr
    assert d.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)["role"] == "BackupRestoring"

    # ---- failover, killed after every step in turn, resumed each time.
    t0 = time.time()
    report = run_killed_at_every_step(
        d, FAILOVER + ("--frontend-pool", "pool2.example.test", "--acknowledged-ids", str(ids_file)), 8)
    took = time.time() - t0
    assert report["outcome"] == "done"
    r = report["report"]
    assert "mgccomp" in r["mgccomp"]
    # Every acknowledged message older than the reported bound is on the recovered store.
    have = present(d, ["pcb"], acked_before)
    bound = parse_ts(r["last_commit_replayed"])
    older = [i for i, t in acked_before.items() if t < bound - 0.01]
    missing_older = [i for i in older if i not in have]
    assert not missing_older, f"{len(missing_older)} acknowledged messages older than the bound lost"
    lost = len(acked_before) - len(have)
    assert r["messages_lost"] == lost
    assert killed_at - bound <= 5 + 1.5, f"RPO {killed_at - bound:.1f} s exceeds the 5 s interval"
    print(f"failover (killed at every step): {took:.1f} s; lost {lost} of {len(acked_before)}; "
          f"bound {r['last_commit_replayed']} ({killed_at - bound:.2f} s before the kill)")

    # ---- state: FailedOver on pcb, pcbm its mirror, chat2a active, pool2 the front-end pool.
    assert d.ctl("config", "get", f"chat.{POOL}.state").stdout.find("FailedOver") >= 0
    def mirror_members():
        return {m["store"]: m for m in d.ctl("db", "mirror", "state", "--store", "pcb", json=True)["members"]}
    members = mirror_members()
    assert members["pcb"]["role"] in ("Principal", "Standalone")
    # Step 7 verifies both sides of the pair: pcbm itself reports SYNCHRONIZED right away (each
    # agent reports its own monitor's last round; checking only pcb's side let pcbm still read
    # DISCONNECTED from its base backup once, after a quick step 7).
    assert members["pcbm"]["status"] == "SYNCHRONIZED", members

    # ---- a rerun of the completed runbook changes nothing.
    assert_rerun_changes_nothing(d, FAILOVER + ("--frontend-pool", "pool2.example.test"))

    # ---- the failed-over period: writes on pcb.
    w2 = write_until(d, ["pcb", "pcbm"], "fo", 100, "writes on the recovered store")
    assert w2.error is None, w2.error

    # ---- failback refused until Site1 is rebuilt; then run (killed at every step).
    cp = ctl_rc(d, *FAILBACK)
    assert cp.returncode == 3 and "is not rebuilt" in cp.stderr, cp.stderr
    d.revive_site("Site1")
    t0 = time.time()
    report = run_killed_at_every_step(d, FAILBACK, 7)
    print(f"failback (killed at every step): {time.time() - t0:.1f} s")
    assert report["outcome"] == "done"
    everything = set(have) | set(w2.acked)
    assert present(d, ["pc1", "pc1m"], everything) == everything, "failback lost messages"
    assert "Normal" in d.ctl("config", "get", f"chat.{POOL}.state").stdout
    ls = d.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)
    assert ls["role"] == "BackupRestoring" and ls["copy_job"] and ls["restore_job"]
    # Step 5 verified both sides of pc1's mirror; pc1m itself reports it.
    pc1m = {m["store"]: m for m in d.ctl("db", "mirror", "state", "--store", "pc1", json=True)["members"]}["pc1m"]
    assert pc1m["status"] == "SYNCHRONIZED", pc1m

    # ---- a rerun of the completed failback changes nothing.
    assert_rerun_changes_nothing(d, FAILBACK)

    # ---- log shipping healthy again: a new commit on pc1 reaches pcb.
    w3 = write_until(d, ["pc1", "pc1m"], "after", 20, "writes on pc1 after failback")
    last = max(w3.acked, key=w3.acked.get)

    def shipped():
        with psycopg2.connect(host=d.address("pcb"), dbname="mgc", user="tandem",
                              password=d.token(), connect_timeout=2) as c, c.cursor() as cur:
            cur.execute("SELECT 1 FROM messages WHERE stanza_id = %s", (last,))
            return cur.fetchone() is not None
    d.wait_until(shipped, timeout=30, what="a commit on pc1 visible on pcb")
