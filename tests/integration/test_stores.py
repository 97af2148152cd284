"""SQL stores, agent side (issue #4): mirroring, witness failover, rejoin, fencing, log shipping.

Each test starts real sqlagents (`tandemd --role sqlagent`) with real PostgreSQL 15 clusters on
127.$TANDEM_TEST_NET.X.Y (stores_lib.StoreDeployment; `deploy up` is exercised by the deploy
tests) and kills them with real `kill -9`. The partner timeout is shortened to 3 s through
TANDEM_PARTNER_TIMEOUT_S so failovers fit in a test.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from stores_lib import (TIMEOUT_ENV, StoreDeployment, addr, connect,  # noqa: F401 (stores: fixture)
                        kill_principal_and_check_no_acknowledged_commit_lost, mirrored, role, run,
                        start_writer_on_synchronized_pair, stores, wait_until)

pytestmark = pytest.mark.skipif(
    not __import__("os").path.exists("/usr/lib/postgresql/15/bin/pg_ctl"),
    reason="PostgreSQL 15 is not installed")

def test_mirrored_store_becomes_synchronized(stores):
    d = stores(mirrored(3), TIMEOUT_ENV)
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "sql1 SYNCHRONIZED")
    p, m = d.status("sql1"), d.status("sql1m")
    assert (p["role"], m["role"]) == ("Principal", "Mirror")
    assert p["partner"] == "sql1m" and m["partner"] == "sql1" and m["principal"] == "sql1"
    assert p["synchronous"] and not p["in_recovery"] and m["in_recovery"]
    wait_until(lambda: d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 10, "mirror sees SYNCHRONIZED")
    assert d.call("w1", "GET", "/witness/status?store=sql1")["reachable"]
    metrics = d.call("sql1", "GET", "/metrics")
    assert 'tandem_store_role{role="Principal",store="sql1"} 1' in metrics
    assert "tandem_store_replication_lag_bytes" in metrics


def test_kill9_of_principal_loses_no_acknowledged_commit_and_old_principal_rejoins(stores):
    d = stores(mirrored(4), TIMEOUT_ENV)
    w = start_writer_on_synchronized_pair(d, 200)
    # The mirror only fails over if IT saw itself SYNCHRONIZED at its last contact (it polls
    # every second): killing before that is a different case (no automatic failover, by design).
    wait_until(lambda: d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 30,
               "the mirror sees itself SYNCHRONIZED")
    killed_at = kill_principal_and_check_no_acknowledged_commit_lost(d, w)
    before = max(t for _, t in w.acked if t <= killed_at)
    after = min(t for _, t in w.acked if t > killed_at)
    print(f"unavailability {after - before:.2f} s with a 3 s partner timeout")
    assert after - before < 15

    # The old principal comes back: it must rejoin as mirror (never a second principal).
    d.start("sql1")
    wait_until(lambda: role(d, "sql1") == "Mirror" and
               d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 90, "sql1 rejoined SYNCHRONIZED")
    assert d.status("sql1")["principal"] == "sql1m"
    assert run(d, "sql1", "SELECT pg_is_in_recovery()", rw=False)[0][0] is True


def test_agent_restart_keeps_the_role_it_last_had(stores):
    d = stores(mirrored(5), TIMEOUT_ENV)
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "SYNCHRONIZED")
    d.call("sql1", "POST", "/fence", timeout=60)  # operator: fence sql1 ...
    out = d.call("sql1m", "POST", "/promote", timeout=60)  # ... and promote the mirror
    assert "promoted" in out["outcome"]
    assert role(d, "sql1m") == "Principal"
    d.kill9("sql1m", postgres=False)  # the agent only: PostgreSQL keeps serving
    d.start("sql1m")
    wait_until(lambda: role(d, "sql1m") == "Principal", 30, "sql1m back as Principal (agent.json)")
    # The fenced old principal rejoins the new one by itself.
    wait_until(lambda: role(d, "sql1") == "Mirror" and
               d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 90, "sql1 rejoined")


def test_isolated_principal_is_fenced_and_acknowledges_nothing(stores):
    d = stores(mirrored(6), TIMEOUT_ENV)
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "SYNCHRONIZED")
    run(d, "sql1", "CREATE TABLE acked(id bigint PRIMARY KEY)")
    # Isolate sql1: its mirror (agent + postgres) and the witness disappear.
    d.kill9("sql1m")
    d.kill9("w1")
    acknowledged = []

    errors = []

    def write():
        c = None
        try:
            c = connect(d, "sql1")
            with c.cursor() as cur:
                cur.execute("INSERT INTO acked VALUES (1)")
                acknowledged.append(time.monotonic())
        except psycopg2.Error as e:
            errors.append(str(e))
        finally:
            if c is not None:
                c.close()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    wait_until(lambda: role(d, "sql1") == "Fenced", 30, "sql1 fenced")
    t.join(10)
    assert not acknowledged, f"an isolated principal acknowledged a commit ({errors})"
    with pytest.raises(psycopg2.OperationalError):
        connect(d, "sql1")
    # Partners back: the self-fenced principal serves again, mirror SYNCHRONIZED.
    d.start("w1")
    d.start("sql1m")
    wait_until(lambda: role(d, "sql1") == "Principal" and
               d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 90, "sql1 unfenced")


def log_shipped(x: int, y: int) -> list[dict]:
    return [
        {"name": "pc1", "site": "Site1", "address": addr(x, 20), "mirror": "pc1m",
         "log_shipping": {"to": "pcb", "share": "share/pc1", "interval_s": 1}},
        {"name": "pc1m", "site": "Site1", "address": addr(x, 21)},
        {"name": "pcb", "site": "Site2", "address": addr(y, 20), "mirror": "pcbm"},
        {"name": "pcbm", "site": "Site2", "address": addr(y, 21)},
    ]


def test_log_shipping_commit_on_primary_is_visible_on_backup_store_within_seconds(stores):
    d = stores(log_shipped(7, 8))
    wait_until(lambda: d.status("pcb")["pg_up"], 240, "pcb restoring")
    assert role(d, "pcb") == "BackupRestoring" and role(d, "pcbm") == "Stopped"
    run(d, ["pc1", "pc1m"], "CREATE TABLE t(id int)")
    wait_until(lambda: _count(d, "pcb", "SELECT count(*) FROM t") is not None, 30, "table on pcb")
    run(d, ["pc1", "pc1m"], "INSERT INTO t VALUES (42)")
    t0 = time.monotonic()
    wait_until(lambda: _count(d, "pcb", "SELECT count(*) FROM t WHERE id = 42") == 1, 15, "row on pcb")
    delay = time.monotonic() - t0
    print(f"commit on pc1 visible on pcb after {delay:.2f} s")
    st = d.call("pcb", "GET", "/log-shipping/status")
    assert st["stanza"] == "pc1" and st["copy_job"] and st["last_copied"] and st["last_restored"]
    with pytest.raises(psycopg2.Error):  # restoring: read-only
        run(d, "pcb", "INSERT INTO t VALUES (1)", rw=False)


def _count(d, name, sql):
    try:
        return run(d, name, sql, rw=False)[0][0]
    except psycopg2.Error:
        return None


def test_backup_store_recovers_after_site_loss_and_fails_back(stores):
    """The agent steps the chat failover and failback runbooks call, in their order."""
    d = stores(log_shipped(9, 10))
    wait_until(lambda: d.status("pcb")["pg_up"], 240, "pcb restoring")
    run(d, ["pc1", "pc1m"], "CREATE TABLE t(id int)",
        *[f"INSERT INTO t VALUES ({i})" for i in range(20)])
    wait_until(lambda: _count(d, "pcb", "SELECT count(*) FROM t") == 20, 20, "rows shipped")
    d.kill9("pc1")
    d.kill9("pc1m")  # Site1 lost
    d.call("pcb", "POST", "/log-shipping/remove")
    d.call("pcb", "POST", "/log-shipping/copy-now", timeout=60)
    applied = d.call("pcb", "POST", "/log-shipping/apply-all", timeout=200)
    assert applied["last_applied"] and applied["last_commit_time"]
    assert "recovered" in d.call("pcb", "POST", "/recover", timeout=120)["outcome"]
    d.call("pcb", "POST", "/mirror/install", {"mirror": "pcbm"}, timeout=300)
    assert d.status("pcb")["mirror_status"] == "SYNCHRONIZED" or wait_until(
        lambda: d.status("pcb")["mirror_status"] == "SYNCHRONIZED", 30, "pcbm SYNCHRONIZED")
    assert run(d, ["pcb", "pcbm"], "SELECT count(*) FROM t")[0][0] == 20
    run(d, ["pcb", "pcbm"], "INSERT INTO t VALUES (100)")
    # Failback: Site1 revived; pc1 restored from pcb's backup, mirror rebuilt, shipping reseeded.
    d.start("pc1")
    d.start("pc1m")
    wait_until(lambda: d.status("pc1")["bootstrapped"], 60, "pc1 agent back")
    d.call("pcb", "POST", "/backup/full", timeout=300)
    d.call("pcb", "POST", "/fence", timeout=60)
    d.call("pc1", "POST", "/restore", {"overwrite": True, "from_stanza": "pcb"}, timeout=600)
    d.call("pc1", "POST", "/mirror/install", {"mirror": "pc1m"}, timeout=300)
    assert run(d, ["pc1", "pc1m"], "SELECT count(*) FROM t")[0][0] == 21
    d.call("pc1", "POST", "/backup/full", timeout=300)
    d.call("pcb", "POST", "/log-shipping/configure", {"from": "pc1"}, timeout=600)
    run(d, ["pc1", "pc1m"], "INSERT INTO t VALUES (200)")
    wait_until(lambda: _count(d, "pcb", "SELECT count(*) FROM t WHERE id = 200") == 1, 30,
               "log shipping resumed to pcb")
    assert role(d, "pcb") == "BackupRestoring"


# ---- through `tandemctl deploy` (the whole two-site example) ---------------------------------------

def _agent_status(d, name):
    import json as _json
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=d.ca_file())
    req = urllib.request.Request(f"https://{d.address(name)}:8443/status",
                                 headers={"Authorization": f"Bearer {d.token()}"})
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return _json.loads(r.read())


def test_deploy_up_two_site_gives_synchronized_mirrors_and_a_restoring_backup_store(deploy):
    d = deploy("examples/two-site.yaml", env=TIMEOUT_ENV)
    for principal in ("sql1", "sql2", "pc1"):
        d.wait_until(lambda: _agent_status(d, principal)["mirror_status"] == "SYNCHRONIZED",
                     60, f"{principal} SYNCHRONIZED")
    assert _agent_status(d, "pcb")["role"] == "BackupRestoring"
    assert _agent_status(d, "w1")["role"] == "Witness"
    # A data-centre outage and its return: every store back in its role, mirrors SYNCHRONIZED.
    d.kill_site("Site1")
    d.revive_site("Site1")
    for principal in ("sql1", "pc1"):
        d.wait_until(lambda: _agent_status(d, principal)["role"] == "Principal" and
                     _agent_status(d, principal)["mirror_status"] == "SYNCHRONIZED",
                     90, f"{principal} back SYNCHRONIZED")


# ---- exposure: the principal keeps serving when only its mirror is lost ---------------------------

def _write_one(d: StoreDeployment, name: str, value: int, wait_s: float = 5.0) -> threading.Thread:
    """Starts one INSERT on `name` in a thread; `.acked` tells whether it was acknowledged.

    (No statement_timeout: PostgreSQL answers a cancelled synchronous-replication wait with a
    WARNING and a *successful* commit, which would look like an acknowledgement.)"""
    t = threading.Thread(daemon=True)
    t.acked = False

    def body():
        try:
            c = connect(d, name)
            with c.cursor() as cur:
                cur.execute("INSERT INTO acked(id) VALUES (%s)", (value,))
            t.acked = True
            c.close()
        except psycopg2.Error:
            pass

    t.run = body
    t.start()
    t.join(wait_s)
    return t


def _exposed(d: StoreDeployment, name: str) -> bool:
    s = d.status(name)
    return s["exposed"] and s["mirror_status"] == "SUSPENDED"


def test_principal_serves_exposed_when_its_mirror_is_lost_and_resynchronizes_4(stores):
    d = stores(mirrored(11), TIMEOUT_ENV)
    w = start_writer_on_synchronized_pair(d, 100)
    wait_until(lambda: d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 30, "mirror sees SYNCHRONIZED")
    d.kill9("sql1m")  # the mirror only (agent and PostgreSQL): the principal and witness are fine
    killed_at = time.monotonic()
    wait_until(lambda: _exposed(d, "sql1"), 30, "sql1 exposed (SUSPENDED)")
    wait_until(lambda: any(t > killed_at for _, t in w.acked), 30, "commits acknowledged without the mirror")
    before = max(t for _, t in w.acked if t <= killed_at)
    after = min(t for _, t in w.acked if t > killed_at)
    print(f"commits stalled {after - before:.2f} s after the mirror's loss (3 s partner timeout)")
    assert 'tandem_store_exposed{store="sql1"} 1' in d.call("sql1", "GET", "/metrics")
    assert d.call("w1", "GET", "/witness/status?store=sql1")["exposed"] is True
    n_exposed = len(w.acked)
    wait_until(lambda: len(w.acked) > n_exposed + 100, 30, "commits keep flowing while exposed")

    # The mirror returns (writer still running): it catches up and commits wait for it again.
    d.start("sql1m")
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED" and
               not d.status("sql1")["mirror_behind"], 90, "sql1m SYNCHRONIZED again")
    assert d.status("sql1")["synchronous"] and not d.status("sql1")["exposed"]
    assert d.call("w1", "GET", "/witness/status?store=sql1")["exposed"] is False
    assert 'tandem_store_exposed{store="sql1"} 0' in d.call("sql1", "GET", "/metrics")

    # Now the principal dies: the mirror was SYNCHRONIZED, so it takes over with every
    # acknowledged commit, those of the exposed period included.
    wait_until(lambda: d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 30, "mirror sees SYNCHRONIZED")
    kill_principal_and_check_no_acknowledged_commit_lost(d, w)


def test_mirror_that_missed_exposed_commits_is_never_promoted_and_lost_quorum_blocks_4(stores):
    d = stores(mirrored(12), TIMEOUT_ENV)
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "SYNCHRONIZED")
    run(d, "sql1", "CREATE TABLE acked(id bigint PRIMARY KEY)")
    d.kill9("sql1m")
    wait_until(lambda: _exposed(d, "sql1"), 30, "sql1 exposed")
    acked = [i for i in range(10) if _write_one(d, "sql1", i).acked]
    assert acked == list(range(10)), "an exposed principal acknowledges commits"

    # The witness goes too: no quorum, so the principal stops acknowledging at once...
    d.kill9("w1")
    wait_until(lambda: not d.status("sql1")["exposed"], 15, "sql1 waits for its mirror again")
    blocked = _write_one(d, "sql1", 100, wait_s=0)
    # ... and fences itself after the partner timeout.
    wait_until(lambda: role(d, "sql1") == "Fenced", 30, "sql1 fenced")
    blocked.join(10)
    assert not blocked.acked, "a principal without quorum acknowledged a commit"

    # The mirror and the witness return. The mirror lacks rows 0-9: the witness (which kept its
    # record across kill -9) refuses to vote for it, and it stays a mirror.
    d.start("w1")
    vote = wait_until(lambda: d.call("w1", "POST", "/witness/vote",
                                     {"store": "sql1", "candidate": "sql1m", "lost_for_s": 2}),
                      15, "witness answers")
    assert vote["granted"] is False and "may lack commits" in vote["reason"], vote
    d.start("sql1m")
    # The self-fenced principal sees its mirror and the witness: it serves again, the mirror
    # catches up, and the exposure record is cleared.
    wait_until(lambda: role(d, "sql1") == "Principal" and
               d.status("sql1")["mirror_status"] == "SYNCHRONIZED" and
               not d.status("sql1")["mirror_behind"], 90, "sql1 serving, sql1m SYNCHRONIZED")
    assert role(d, "sql1m") == "Mirror"
    assert d.call("w1", "GET", "/witness/status?store=sql1")["exposed"] is False
    assert _write_one(d, "sql1", 200).acked
    # Synchronous commit waits for the mirror's flush, not its replay: poll for the row.
    wait_until(lambda: _count(d, "sql1m", "SELECT count(*) FROM acked WHERE id = 200") == 1, 15,
               "row 200 on the mirror")
    present = {r[0] for r in run(d, "sql1m", "SELECT id FROM acked", rw=False)}
    assert set(range(10)) | {200} <= present  # 100 may be there: committed locally, never acknowledged
