"""The Backup Service (issue #15, docs/backup-service.md) on examples/two-site.yaml: each front-end
pool's data copied into its partner's store by PostgreSQL logical replication.

Real processes, real PostgreSQL, real slixmpp clients. One deployment for the whole file (the
tests run in order and each leaves it healthy): the copy and its lag, sync, status, verify and
repair, then the resilience drills (partner store down, mirror failover, a site rebuilt empty)
and the storage bound.
"""

import asyncio
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psycopg2
import pytest

from lib.xmpp_clients import owner_of, slix_connect

POOL1, POOL2 = "pool1.example.test", "pool2.example.test"
COPY_STORE = {POOL1: "sql2", POOL2: "sql1"}  # where each pool's copy lives
POOL_STORE = {POOL1: "sql1", POOL2: "sql2"}
RETAINED_WAL_BOUND = 64 << 20  # bytes of WAL a caught-up slot may keep (see docs)


@pytest.fixture(scope="module")
def d(deploy_module):
    dep = deploy_module("examples/two-site.yaml")
    for pool in (POOL1, POOL2):
        wait_steady(dep, pool, timeout=120)
    return dep


# ---- helpers -----------------------------------------------------------------------------------

def store_hosts(d, store: str) -> str:
    stores = {s["name"]: s for s in d.stores()}
    s = stores[store]
    hosts = [s["address"]] + ([stores[s["mirror"]]["address"]] if s.get("mirror") else [])
    return ",".join(hosts)


def sql(d, store: str, db: str, statement: str, params=()):
    """One autocommit statement on the store's writable member; its rows (or None)."""
    c = psycopg2.connect(host=store_hosts(d, store), dbname=db, user="tandem", password=d.token(),
                         target_session_attrs="read-write", connect_timeout=3)
    c.autocommit = True
    try:
        with c.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def in_copy(d, pool: str, statement: str, params=()):
    return sql(d, COPY_STORE[pool], "rtc_backup", statement, params)


def in_pool(d, pool: str, statement: str, params=()):
    return sql(d, POOL_STORE[pool], "rtc", statement, params)


def status(d, pool: str, module: str = "UserData") -> dict:
    doc = d.ctl("backup", "status", "--pool", pool, "--module", module, json=True)
    return doc["modules"][0]


def wait_steady(d, pool: str, timeout: float = 90) -> dict:
    def steady():
        s = status(d, pool)
        assert s["export_state"] == "SteadyState" and s["import_state"] == "NormalState", s
        return s
    return d.wait_until(steady, timeout=timeout, what=f"{pool}'s copy in SteadyState", interval=0.5)


def verify(d, pool: str) -> dict:
    return d.ctl("backup", "verify", "--pool", pool, "--timeout", "60", json=True, check=False)


def jid(name: str) -> str:
    return f"{name}@example.test"


def home(d, pool: str, user: str) -> str:
    servers = {POOL1: ["fe1a.example.test", "fe1b.example.test"],
               POOL2: ["fe2a.example.test", "fe2b.example.test"]}[pool]
    return d.address(owner_of(servers, jid(user)))


def add_user(d, name: str, pool: str, password: str):
    pw = Path(d.state_dir) / f"pw-{name}"
    pw.write_text(password)
    d.ctl("user", "add", name, "--pool", pool, "--password-file", str(pw))


def pids_of_store(d, store: str) -> list[int]:
    """The store's agent and its postmaster."""
    agent = next(r for r in d.run_records() if r["name"] == store)["pid"]
    pm = Path(d.state_dir) / "stores" / store / "pgdata" / "postmaster.pid"
    return [agent, int(pm.read_text().split()[0])]


def kill9(pids: list[int]):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class RosterWriter:
    """alice (pool1) adds roster items over XMPP, one IQ at a time, in its own thread; records
    each acknowledged one (the server answered the roster set: it is committed in rtc)."""

    def __init__(self, d, prefix: str):
        self.d, self.prefix = d, prefix
        self.acked: list[tuple[str, float]] = []  # (contact, ack time)
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self):
        i = 0
        c = None
        while not self.stop.is_set():
            try:
                if c is None:
                    c = await slix_connect(f"{jid('alice')}/w{uuid.uuid4().hex[:4]}", "alice-pw",
                                           home(self.d, POOL1, "alice"), self.d.ca_file(),
                                           timeout=5, presence=False, roster=False)
                contact = f"{self.prefix}{i}@example.test"
                await asyncio.wait_for(c.update_roster(contact, name=f"n{i}"), 5)
                self.acked.append((contact, time.monotonic()))
                i += 1
            except Exception:  # noqa: BLE001 - store or server down: reconnect and go on
                self.errors += 1
                if c is not None:
                    c.abort()
                c = None
                await asyncio.sleep(0.2)
        if c is not None:
            await c.close()

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        return [c for c, _ in self.acked]


def assert_every_acked_change_in_copy_once(d, acked: list[str]):
    rows = in_copy(d, POOL1, "SELECT contact, count(*) FROM roster WHERE owner = %s GROUP BY 1",
                   (jid("alice"),))
    counts = dict(rows)
    missing = [c for c in acked if c not in counts]
    assert not missing, f"{len(missing)} acknowledged roster items missing in the copy: {missing[:5]}"
    assert all(n == 1 for n in counts.values())


def assert_verify_clean(d, pool: str):
    v = verify(d, pool)
    assert isinstance(v, dict) and v["clean"], v if isinstance(v, dict) else v.stderr
    return v


# ---- the copy --------------------------------------------------------------------------------

def test_xmpp_changes_on_each_pool_appear_in_the_partners_copy_and_lag_is_measured(d):
    add_user(d, "carol", POOL1, "carol-pw")
    lags = []

    async def go():
        alice = await slix_connect(f"{jid('alice')}/copy", "alice-pw", home(d, POOL1, "alice"),
                                   d.ca_file())
        bob = await slix_connect(f"{jid('bob')}/copy", "bob-pw", home(d, POOL2, "bob"), d.ca_file())
        try:
            await alice["xep_0191"].block([jid("mallory")])
            alice.send_chat(jid("carol"), "while you were away")  # carol is offline: stored
            await bob.update_roster(jid("alice"), name="Alice", groups=["Friends"])
            # 200 roster changes, each acknowledged, each timed until it is in the copy.
            for i in range(200):
                contact = jid(f"lag{i}")
                await alice.update_roster(contact, name=f"n{i}")
                acked = time.monotonic()
                while not in_copy(d, POOL1, "SELECT 1 FROM roster WHERE owner = %s AND contact = %s",
                                  (jid("alice"), contact)):
                    await asyncio.sleep(0.005)
                lags.append(time.monotonic() - acked)
        finally:
            await alice.close()
            await bob.close()
    asyncio.run(go())

    d.wait_until(lambda: in_copy(d, POOL1, "SELECT 1 FROM blocks WHERE owner = %s AND contact = %s",
                                 (jid("alice"), jid("mallory"))), timeout=10, what="block in copy")
    d.wait_until(lambda: in_copy(d, POOL1, "SELECT stanza FROM offline WHERE owner = %s",
                                 (jid("carol"),)), timeout=10, what="offline message in copy")
    assert in_copy(d, POOL1, "SELECT name FROM users WHERE name = 'carol'") == [("carol",)]
    # SCRAM keys only: the copy has what the pool has, and no password column exists.
    assert in_copy(d, POOL1, "SELECT sha256_stored_key FROM users WHERE name = 'carol'") == \
        in_pool(d, POOL1, "SELECT sha256_stored_key FROM users WHERE name = 'carol'")
    # The other direction: bob's roster (pool2) in pool1's store.
    d.wait_until(lambda: in_copy(d, POOL2, "SELECT groups FROM roster WHERE owner = %s AND contact = %s",
                                 (jid("bob"), jid("alice"))) == [(["Friends"],)],
                 timeout=10, what="bob's roster item in pool1's store")
    lags.sort()
    print(f"lag over {len(lags)} acknowledged roster changes (poll 5 ms): "
          f"p50 {statistics.median(lags) * 1000:.1f} ms, p99 {lags[int(len(lags) * 0.99) - 1] * 1000:.1f} ms")
    # change_log is gone (replaced by logical replication): nothing grows unread.
    assert in_pool(d, POOL1, "SELECT to_regclass('public.change_log') IS NULL") == [(True,)]


def test_sync_returns_with_everything_committed_before_it_applied(d):
    for i in range(20):
        in_pool(d, POOL1, "INSERT INTO blocks (owner, contact) VALUES (%s, %s)",
                (jid("alice"), jid(f"sync{i}")))
        d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "30")
        # No wait: sync's contract is that the row is there when it returns.
        assert in_copy(d, POOL1, "SELECT 1 FROM blocks WHERE owner = %s AND contact = %s",
                       (jid("alice"), jid(f"sync{i}"))), f"sync{i} not in the copy after sync"
    in_pool(d, POOL1, "DELETE FROM blocks WHERE contact LIKE 'sync%%'")
    d.ctl("Invoke-CsBackupServiceSync", "-PoolFqdn", POOL2, "-BackupModule", "UserData")
    d.ctl("backup", "sync", "--pool", POOL1, "--module", "Cms")


def test_status_relationship_config_and_cmdlets(d):
    s = status(d, POOL1)
    for k in ("last_exported", "last_imported", "lag_bytes", "lag_seconds", "export_reason"):
        assert k in s
    assert s["last_imported"]["position"] and s["last_exported"]["position"]
    cms = status(d, POOL1, "Cms")
    assert cms["export_state"] in ("SteadyState", "NonSteadyState"), cms
    assert status(d, POOL2, "Cms")["export_state"] == "NotInitialized"
    rel = d.ctl("backup", "relationship", "--pool", POOL1, json=True)
    assert (rel["backup_pool"], rel["backup_store"], rel["copy_database"]) == (POOL2, "sql2", "rtc_backup")
    assert "pool2.example.test" in d.ctl("Get-CsPoolBackupRelationship", "-PoolFqdn", POOL1).stdout
    assert "UserData" in d.ctl("Get-CsBackupServiceStatus", "-PoolFqdn", POOL1).stdout
    d.ctl("Set-CsBackupServiceConfiguration", "-PoolFqdn", POOL1, "-SyncInterval", "00:00:03")
    assert d.ctl("backup", "config", "show", "--pool", POOL1, json=True)["sync_interval_s"] == 3
    bad = d.ctl("backup", "config", "set", "--pool", POOL1, "--sync-interval", "0", check=False)
    assert bad.returncode != 0 and "1 to 3600" in bad.stderr
    d.ctl("backup", "config", "set", "--pool", POOL1, "--sync-interval", "2")
    help_text = d.ctl("help", "cmdlets").stdout
    for c in ("Get-CsBackupServiceStatus", "Invoke-CsBackupServiceSync", "Debug-CsInterPoolReplication",
              "Get-CsPoolBackupRelationship", "Set-CsBackupServiceConfiguration"):
        assert c in help_text
    metrics = d.admin("fe2a.example.test", "/metrics")
    text = metrics if isinstance(metrics, str) else str(metrics)
    assert 'tandem_backup_export_state{module="UserData",pool="pool1.example.test",state="SteadyState"} 1' in text


def test_status_goes_from_not_initialized_to_steady_state(d):
    # pool2's front ends run the service that keeps pool1's copy: stop them, drop the copy.
    kill9([r["pid"] for r in d.run_records() if r["name"] in ("fe2a.example.test", "fe2b.example.test")])
    sub = "tandem_backup_sql2"
    in_copy(d, POOL1, f"DROP SUBSCRIPTION {sub}")  # drops its slot on sql1 too
    sql(d, "sql2", "postgres", "DROP DATABASE rtc_backup WITH (FORCE)")
    assert status(d, POOL1)["export_state"] == "NotInitialized"
    sync = d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "5", check=False)
    assert sync.returncode != 0 and "NotInitialized" in sync.stderr
    d.ctl("backup", "repair", "--pool", POOL1, "--full")
    wait_steady(d, POOL1, timeout=30)
    assert_verify_clean(d, POOL1)
    d.revive_site("Site2")


def test_injected_difference_is_found_by_verify_and_fixed_by_repair(d):
    assert_verify_clean(d, POOL1)
    in_copy(d, POOL1, "UPDATE roster SET name = 'tampered' WHERE owner = %s AND contact = %s",
            (jid("alice"), jid("lag7")))
    in_copy(d, POOL1, "INSERT INTO blocks (owner, contact) VALUES (%s, %s)", (jid("carol"), jid("x")))
    v = verify(d, POOL1)
    assert not v["clean"]
    diffs = sorted((x["user"], x["table"], x["how"]) for x in v["differences"])
    assert diffs == [("alice", "roster", "rows differ"), ("carol", "blocks", "only in the copy")]
    d.ctl("backup", "repair", "--pool", POOL1, "--user", "alice")
    d.ctl("backup", "repair", "--pool", POOL1, "--user", "carol")
    assert_verify_clean(d, POOL1)
    assert in_copy(d, POOL1, "SELECT name FROM roster WHERE owner = %s AND contact = %s",
                   (jid("alice"), jid("lag7"))) == [("n7",)]
    assert d.ctl("Debug-CsInterPoolReplication", "-PoolFqdn", POOL1).returncode == 0


# ---- resilience ----------------------------------------------------------------------------

def test_partner_store_down_is_error_state_then_the_copy_catches_up_exactly_once(d):
    w = RosterWriter(d, "down").start()
    d.wait_until(lambda: len(w.acked) >= 20, timeout=30, what="writer going")
    kill9(pids_of_store(d, "sql2"))  # pool2's store and its agent (its mirror has no witness)
    outage = time.monotonic()
    s = d.wait_until(lambda: (lambda s: s if s["export_state"] == "ErrorState" else None)(
        status(d, POOL1)), timeout=30, what="ErrorState while sql2 is down")
    assert "`sql2` does not answer" in s["export_reason"], s
    sync = d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "3", check=False)
    assert sync.returncode != 0 and "sql2" in sync.stderr, sync.stderr
    n = len(w.acked)
    d.wait_until(lambda: len(w.acked) >= n + 50, timeout=60,
                 what="pool1's users keep writing while the copy is down")
    time.sleep(max(0.0, 30 - (time.monotonic() - outage)))  # a 30 s outage under load
    d.revive_site("Site2")
    wait_steady(d, POOL1, timeout=90)
    acked = w.finish()
    d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "60")
    assert_every_acked_change_in_copy_once(d, acked)
    assert_verify_clean(d, POOL1)
    assert_verify_clean(d, POOL2)


def test_mirror_failover_of_the_pools_store_resynchronises_the_copy(d):
    resyncs = d.ctl("backup", "status", "--pool", POOL1, json=True)["modules"][0]["full_copies"]
    w = RosterWriter(d, "mf").start()
    d.wait_until(lambda: len(w.acked) >= 20, timeout=30, what="writer going")
    kill9(pids_of_store(d, "sql1"))  # principal + agent: the witness and sql1m fail over
    d.wait_until(lambda: sql(d, "sql1", "postgres", "SELECT host(inet_server_addr())")
                 == [(d.address("sql1m"),)], timeout=60, what="sql1m promoted", interval=1)
    n = len(w.acked)
    d.wait_until(lambda: len(w.acked) >= n + 30, timeout=60, what="writes after the failover")

    def resynced():
        s = d.ctl("backup", "status", "--pool", POOL1, json=True)["modules"][0]
        assert s["full_copies"] > resyncs, s
        assert s["export_state"] == "SteadyState", s
        return s
    s = d.wait_until(resynced, timeout=90, what="full copy after the mirror failover", interval=1)
    assert "missing" in s["last_full_copy"]["reason"], s
    acked = w.finish()
    d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "60")
    assert_every_acked_change_in_copy_once(d, acked)
    assert_verify_clean(d, POOL1)
    d.revive_site("Site1")  # sql1 rejoins as the mirror
    wait_steady(d, POOL2, timeout=90)


def test_partner_site_rebuilt_empty_gets_a_full_copy_and_a_rebuilt_pool_is_not_copied_blindly(d):
    d.ctl("deploy", "revive-site", "Site2", "--purge", timeout=300)
    # pool1's copy in the rebuilt sql2: made again from scratch, then streaming.
    wait_steady(d, POOL1, timeout=120)
    assert_verify_clean(d, POOL1)
    assert in_copy(d, POOL1, "SELECT 1 FROM users WHERE name = 'carol'")
    # pool2's copy in sql1 may be the only data of pool2's users: not overwritten on its own.
    def refused():
        s = status(d, POOL2)
        assert s["export_state"] == "ErrorState" and "rebuilt" in s["export_reason"], s
        return s
    s = d.wait_until(refused, timeout=60, what="refusal to overwrite pool2's copy")
    assert "backup repair --pool pool2.example.test --full" in s["export_reason"]
    d.ctl("backup", "repair", "--pool", POOL2, "--full")
    wait_steady(d, POOL2, timeout=60)
    assert_verify_clean(d, POOL2)


def test_retained_wal_returns_under_the_bound_after_100000_changes(d):
    owner = jid("bulk")
    for _ in range(20):  # 20 transactions of 5,000 offline messages: 100,000 changes
        in_pool(d, POOL1, "INSERT INTO offline (owner, stanza) SELECT %s, 'm' || g"
                " FROM generate_series(1, 5000) g", (owner,))
    d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "120")
    assert in_copy(d, POOL1, "SELECT count(*) FROM offline WHERE owner = %s", (owner,)) == [(100000,)]
    in_pool(d, POOL1, "DELETE FROM offline WHERE owner = %s", (owner,))
    d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "120")
    assert in_copy(d, POOL1, "SELECT count(*) FROM offline WHERE owner = %s", (owner,)) == [(0,)]
    # The slot's restart position moves at the next running-transactions record (<= 15 s).
    in_pool(d, POOL1, "CHECKPOINT")
    def bounded():
        b = in_pool(d, POOL1, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)"
                    " FROM pg_replication_slots WHERE slot_name = 'tandem_backup_sql2'")[0][0]
        assert b < RETAINED_WAL_BOUND, b
        return b
    b = d.wait_until(bounded, timeout=60, what="retained WAL under the bound", interval=1)
    print(f"retained WAL after 100,000 changes and a sync: {b} bytes (bound {RETAINED_WAL_BOUND})")
