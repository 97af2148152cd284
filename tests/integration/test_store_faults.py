"""Store faults (issue #21): partitions, a restarted old principal, an agent killed during a
mirror install, fencing during a long operation, a witness whose disk went back in time, and
`/start` of a fenced store.

Real sqlagents and PostgreSQL 15 on 127.$TANDEM_TEST_NET.X.Y, each agent (and its PostgreSQL)
in a cgroup of its own so that stores can be cut from each other with iptables
(stores_lib.Partitions); the test process, the clients, reaches every store. Partner timeout 3 s.

The checker (Jepsen-style, small): a writer commits through the pair's multi-host address as the
services do, and one probe per store commits to that store alone every 100 ms; every commit
acknowledged to any of them is recorded with its time. At the end every acknowledged id must be
in the surviving principal (zero acknowledged commits lost), and the probes' acknowledgements,
in time order, must go from one store to the other at most as often as the test fails over
(never two principals accepting writes at the same time).
"""

from __future__ import annotations

import shutil
import signal
import threading
import time

import pytest

from stores_lib import (TIMEOUT_ENV, Writer, mirrored, partitions_supported, role, run,
                        stores, wait_until)  # noqa: F401 (stores: fixture)

pytestmark = [
    pytest.mark.skipif(not __import__("os").path.exists("/usr/lib/postgresql/15/bin/pg_ctl"),
                       reason="PostgreSQL 15 is not installed"),
    pytest.mark.skipif(not partitions_supported(),
                       reason="needs root, cgroup v2 and iptables' cgroup match (partitions)"),
]

PAIR = ("sql1", "sql1m")


class Checker:
    """The writer and the per-store probes of the module docstring."""

    def __init__(self, d):
        self.d = d
        wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "SYNCHRONIZED")
        wait_until(lambda: d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 30,
                   "the mirror sees itself SYNCHRONIZED")
        run(d, list(PAIR), "CREATE TABLE acked(id bigint PRIMARY KEY)")
        self.writer = Writer(d, *PAIR)
        self.probes = {n: Writer(d, n, first_id=(k + 1) * 10**9, pause_s=0.1)
                       for k, n in enumerate(PAIR)}
        for w in self.all():
            w.start()
        wait_until(lambda: len(self.writer.acked) > 50, 30, "writer running")
        self.phases: list[tuple[str, float]] = [("start", time.monotonic())]

    def mark(self, phase: str) -> None:
        """Starts a named phase: check() prints each phase's longest time without any
        acknowledged commit (the unavailability clients saw; bench/RESULTS.md)."""
        self.phases.append((phase, time.monotonic()))

    def unavailability(self) -> list[tuple[str, float]]:
        times = sorted(t for w in self.all() for _, t in w.acked)
        bounds = self.phases + [("end", time.monotonic())]
        out = []
        for (name, a), (_, b) in zip(bounds, bounds[1:]):
            inside = [a] + [t for t in times if a <= t <= b] + [b]
            out.append((name, max(y - x for x, y in zip(inside, inside[1:]))))
        return out

    def all(self):
        return [self.writer, *self.probes.values()]

    def acked_by(self, store: str, since: float = 0) -> int:
        return sum(1 for _, t in self.probes[store].acked if t >= since)

    def stop(self) -> None:
        for w in self.all():
            w.stop.set()
        for w in self.all():
            w.join(15)

    def check(self, survivor: str, principals: list[str]) -> None:
        """Nothing acknowledged is missing from `survivor`; the probes' acknowledgements went
        through `principals` in this order (each a run of one store's acknowledgements)."""
        self.stop()
        present = {r[0] for r in run(self.d, survivor, "SELECT id FROM acked")}
        acked = [i for w in self.all() for i, _ in w.acked]
        missing = [i for i in acked if i not in present]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged commits lost: {missing[:10]}"
        history = sorted((t, n) for n, w in self.probes.items() for _, t in w.acked)
        runs = [n for k, (_, n) in enumerate(history) if k == 0 or history[k - 1][1] != n]
        assert runs == principals, f"probes acknowledged on {runs}: two principals accepted writes"
        print(f"{len(acked)} acknowledged commits, none lost; principals in turn: {runs}")
        for name, gap in self.unavailability():
            print(f"  phase {name}: longest time without an acknowledged commit {gap:.2f} s")


def quiet(c: Checker, store: str, seconds: float, what: str) -> None:
    """For `seconds`, `store` acknowledges no commit to its probe."""
    t0 = time.monotonic()
    time.sleep(seconds)
    n = c.acked_by(store, since=t0)
    assert n == 0, f"{store} acknowledged {n} commits while {what}"


def exposed(d, name: str) -> bool:
    s = d.status(name)
    return s["exposed"] and s["mirror_status"] == "SUSPENDED"


def test_partitions_lose_no_acknowledged_commit_and_never_make_two_principals_21(stores):
    d = stores(mirrored(21), TIMEOUT_ENV, partitions=True)
    net, c = d.net, Checker(d)

    # 1. The witness is cut from both for 6 s: nothing changes, commits go on.
    n = len(c.writer.acked)
    c.mark("witness cut")
    net.isolate("w1", *PAIR)
    time.sleep(6)
    net.heal()
    assert len(c.writer.acked) > n + 20, "commits stopped while only the witness was cut"
    assert (role(d, "sql1"), role(d, "sql1m")) == ("Principal", "Mirror")

    # 2. The mirror is cut from both for 8 s: the principal serves exposed (the witness saw the
    # mirror as a standby), the mirror is not promoted. Healed, it catches up.
    t_cut = time.monotonic()
    c.mark("mirror cut")
    net.isolate("sql1m", "sql1", "w1")
    wait_until(lambda: exposed(d, "sql1"), 20, "sql1 exposed")
    time.sleep(max(0.0, 8 - (time.monotonic() - t_cut)))
    assert role(d, "sql1m") == "Mirror"
    net.heal()
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED" and
               not d.status("sql1")["mirror_behind"], 60, "sql1m SYNCHRONIZED again")
    wait_until(lambda: d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 30,
               "the mirror sees itself SYNCHRONIZED")

    # 3. The principal is cut from the witness only for 6 s: nothing changes.
    n = len(c.writer.acked)
    c.mark("principal cut from witness")
    net.cut("sql1", "w1")
    time.sleep(6)
    net.heal()
    assert len(c.writer.acked) > n + 20
    assert (role(d, "sql1"), role(d, "sql1m")) == ("Principal", "Mirror")

    # 4. The principal is cut from mirror and witness: the mirror takes over, the old principal
    # fences itself.
    c.mark("principal cut from mirror and witness")
    net.isolate("sql1", "sql1m", "w1")
    wait_until(lambda: role(d, "sql1m") == "Principal", 30, "failover to sql1m")
    wait_until(lambda: role(d, "sql1") == "Fenced", 30, "sql1 fenced")
    c.mark("old principal started, restarted while cut off")

    # 5. An operator starts the fenced old principal while it is still cut off: it starts, and
    # acknowledges nothing.
    out = d.call("sql1", "POST", "/start", timeout=90)
    assert "commits wait for `sql1m`" in out["outcome"], out
    quiet(c, "sql1", 6, "started by hand and cut off")

    # 6. It reaches the witness again (not the new principal): the witness, which voted for
    # sql1m, refuses it exposure.
    net.mend("sql1", "w1")
    quiet(c, "sql1", 6, "seeing only the witness that voted it out")

    # 7. Its agent and PostgreSQL are killed and restarted while the new principal is alive but
    # unreachable: it acknowledges nothing either.
    d.kill9("sql1")
    d.start("sql1")
    wait_until(lambda: d.status("sql1")["bootstrapped"], 60, "sql1 agent back")
    quiet(c, "sql1", 6, "restarted, the new principal unreachable")

    # Healed: the old principal rejoins; what it held beyond the fork (commits never
    # acknowledged) is recorded and reported, not silently discarded.
    c.mark("healed")
    net.heal()
    wait_until(lambda: role(d, "sql1") == "Mirror" and
               d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 90, "sql1 rejoined SYNCHRONIZED")
    div = d.status("sql1")["divergence"]
    assert div and div["fork_lsn"] and div["transactions"] >= 0, div
    print("divergence:", div["summary"])
    c.check("sql1m", ["sql1", "sql1m"])


def test_agent_killed_during_a_mirror_install_and_fencing_during_a_long_operation_21(stores):
    d = stores(mirrored(22), TIMEOUT_ENV, partitions=True)
    net, c = d.net, Checker(d)
    new_copy = d.dir / "stores" / "sql1m" / "pgdata.new"
    results: list = []

    def install():
        try:
            results.append(d.call("sql1", "POST", "/mirror/install", {"mirror": "sql1m"}, timeout=300))
        except Exception as e:  # noqa: BLE001 - the install is expected to fail here
            results.append(e)

    # The mirror is stopped; the principal serves exposed, then reinstalls it.
    d.call("sql1m", "POST", "/stop", timeout=60)
    wait_until(lambda: exposed(d, "sql1"), 20, "sql1 exposed")
    t = threading.Thread(target=install, daemon=True)
    t.start()
    # 1. The mirror's agent is killed while it copies the principal (its data already wiped).
    wait_until(new_copy.exists, 60, "base backup under way on sql1m", interval=0.02)
    net.cut("sql1m", "sql1")  # holds the copy where it is
    d.kill9("sql1m")
    net.signal_all("sql1m")  # and the pg_basebackup it started
    net.heal()
    t.join(60)
    assert not t.is_alive() and isinstance(results[-1], Exception), results
    d.start("sql1m")  # it comes back as a mirror and copies the principal again by itself
    wait_until(lambda: role(d, "sql1m") == "Mirror" and d.status("sql1m")["pg_up"], 120,
               "sql1m a mirror again")

    # 2. Install again; while it runs (the mirror's host hangs mid-copy, so the principal's
    # install waits for it), the principal loses its mirror and the witness: it is fenced
    # although the install holds the operation lock.
    d.call("sql1m", "POST", "/stop", timeout=60)
    t = threading.Thread(target=install, daemon=True)
    t.start()
    wait_until(new_copy.exists, 60, "base backup under way on sql1m", interval=0.02)
    net.signal_all("sql1m", signal.SIGSTOP)
    net.isolate("sql1", "sql1m", "w1")
    wait_until(lambda: role(d, "sql1") == "Fenced", 30, "sql1 fenced during the install")
    assert t.is_alive(), "the install ended before the fence: not a fence during an operation"
    quiet(c, "sql1", 3, "fenced")
    net.heal()
    net.signal_all("sql1m", signal.SIGCONT)
    t.join(200)

    # 3. `/start` of the fenced principal: it waits for its mirror, which copies it and streams.
    d.call("sql1", "POST", "/start", timeout=90)
    wait_until(lambda: role(d, "sql1m") == "Mirror" and
               d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "sql1m SYNCHRONIZED")
    c.check("sql1", ["sql1"])


def test_witness_reverted_to_before_its_vote_grants_no_second_principal_21(stores):
    d = stores(mirrored(23), TIMEOUT_ENV, partitions=True)
    net, c = d.net, Checker(d)
    w_dir = d.dir / "stores" / "w1"
    snapshot = d.dir / "w1-before-vote"
    shutil.copytree(w_dir, snapshot)

    # The principal dies; the witness votes for the mirror, which takes over.
    d.kill9("sql1")
    wait_until(lambda: role(d, "sql1m") == "Principal", 30, "failover to sql1m")
    assert d.call("w1", "GET", "/witness/status?store=sql1")["voted_for"] == "sql1m"

    # The witness is killed and its disk goes back to before the vote. It comes back where it
    # sees the old principal but not the new one; the old principal is started, cut from the
    # new one.
    d.kill9("w1")
    shutil.rmtree(w_dir)
    shutil.copytree(snapshot, w_dir)
    net.cut("w1", "sql1m")
    net.cut("sql1", "sql1m")
    d.start("w1")
    d.start("sql1")
    wait_until(lambda: d.status("sql1")["bootstrapped"], 60, "sql1 agent back")
    # The witness cannot tell whether sql1m was promoted: no exposure, sql1 acknowledges
    # nothing. sql1m, cut from both, fences itself.
    quiet(c, "sql1", 8, "confirmed by nobody")
    wait_until(lambda: role(d, "sql1m") == "Fenced", 30, "sql1m fenced (lost quorum)")
    log = (d.dir / "stores" / "sql1" / "agent.log").read_text(errors="replace")
    assert "cannot tell whether `sql1m` was promoted" in log

    # Healed: sql1m (newer timeline) serves again, sql1 rejoins it; nothing acknowledged lost.
    net.heal()
    wait_until(lambda: role(d, "sql1") == "Mirror" and role(d, "sql1m") == "Principal" and
               d.status("sql1m")["mirror_status"] == "SYNCHRONIZED", 120, "sql1 rejoined sql1m")
    c.check("sql1m", ["sql1", "sql1m"])
