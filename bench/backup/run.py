#!/usr/bin/python3
"""The Backup Service's replication lag, CPU per change, initial copy and catch-up time.

Deploys examples/two-site.yaml and measures pool1 -> pool2 (the copy of pool1's `rtc` in sql2's
`rtc_backup`, docs/backup-service.md):

1. lag at each rate: a writer commits one offline message per transaction on pool1's store at a
   fixed rate (several connections above 500/s) and records each commit's acknowledgement time;
   a reader polls the copy every 2 ms and records when each id appears there. lag = seen - ack
   (p50, p99, max). CPU per change = CPU time of the copy's side (every process of sql2 and
   sql2m, plus the walsender of the slot on sql1) during the run / changes.
2. initial copy: USERS users with ITEMS roster items each are generated in pool1's rtc, then
   `backup repair --pool pool1 --full` (one-transaction full copy) is timed.
3. catch-up: sql2's PostgreSQL is stopped (SIGSTOP of its postmaster's process group) for OUTAGE s
   while 100 changes/s are written; time from resuming it to `backup sync` returning.

    TANDEM_TEST_NET=44 TANDEM_BUILD_DIR=build /usr/bin/python3 bench/backup/run.py \
        --rates 100,1000 --seconds 10 --users 20000 --items 50 --outage 60
"""

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

import psycopg2  # noqa: E402

from lib.deployment import DeploymentFactory  # noqa: E402
from test_backup import POOL1, store_hosts, wait_steady  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def connect(d, store, db):
    c = psycopg2.connect(host=store_hosts(d, store), dbname=db, user="tandem", password=d.token(),
                         target_session_attrs="read-write", connect_timeout=3)
    c.autocommit = True
    return c


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime + stime
        except (OSError, IndexError):
            pass
    return total / TICKS


def store_pids(d, store):
    pm = Path(d.state_dir) / "stores" / store / "pgdata" / "postmaster.pid"
    leader = int(pm.read_text().split()[0])
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == leader] + [leader]


def _ppid(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def walsender_pid(d):
    c = connect(d, "sql1", "rtc")
    with c.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_replication WHERE application_name = 'tandem_backup_sql2'")
        rows = cur.fetchall()
    c.close()
    return [rows[0][0]] if rows else []


def write(d, owner, rate, seconds, acked, stop=None):
    """Commits rate*seconds offline messages for `owner`, paced; acked[id] = ack time."""
    threads = max(1, rate // 400)
    per = rate / threads
    total = int(rate * seconds)

    def body(k):
        c = connect(d, "sql1", "rtc")
        cur = c.cursor()
        start = time.monotonic()
        for i in range(k, total, threads):
            if stop is not None and stop.is_set():
                break
            due = start + (i // threads) / per
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            cur.execute("INSERT INTO offline (owner, stanza) VALUES (%s, 'x') RETURNING id", (owner,))
            acked[cur.fetchone()[0]] = time.monotonic()
        c.close()
    ts = [threading.Thread(target=body, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    return ts


def read(d, owner, seen, stop):
    c = connect(d, "sql2", "rtc_backup")
    cur = c.cursor()
    last = 0
    while not stop.is_set():
        cur.execute("SELECT id FROM offline WHERE owner = %s AND id > %s", (owner, last))
        now = time.monotonic()
        for (i,) in cur.fetchall():
            seen.setdefault(i, now)
            last = max(last, i)
        time.sleep(0.002)
    c.close()


def lag_run(d, rate, seconds):
    owner = f"bench{rate}@example.test"
    acked, seen, stop = {}, {}, threading.Event()
    reader = threading.Thread(target=read, args=(d, owner, seen, stop))
    reader.start()
    pids = store_pids(d, "sql2") + store_pids(d, "sql2m") + walsender_pid(d)
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    for t in write(d, owner, rate, seconds, acked):
        t.join()
    d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "120")
    time.sleep(0.1)
    stop.set()
    reader.join()
    cpu = cpu_seconds(pids) - cpu0
    elapsed = time.monotonic() - t0
    lags = sorted(seen[i] - acked[i] for i in acked if i in seen)
    missing = len([i for i in acked if i not in seen])
    return {"rate": rate, "changes": len(acked), "achieved": len(acked) / seconds,
            "p50": statistics.median(lags) * 1000, "p99": lags[int(len(lags) * 0.99) - 1] * 1000,
            "max": lags[-1] * 1000, "cpu_ms_per_change": cpu * 1000 / len(acked),
            "missing": missing, "elapsed": elapsed}


def initial_copy(d, users, items):
    c = connect(d, "sql1", "rtc")
    cur = c.cursor()
    cur.execute("INSERT INTO users SELECT 'u' || g, 'pool1.example.test', 's', 4096, 'k', 'k',"
                " 's', 4096, 'k', 'k', now() FROM generate_series(1, %s) g ON CONFLICT DO NOTHING",
                (users,))
    cur.execute("INSERT INTO roster (owner, contact, name, subscription) SELECT 'u' || u ||"
                " '@example.test', 'c' || i || '@example.test', 'n', 'both'"
                " FROM generate_series(1, %s) u, generate_series(1, %s) i ON CONFLICT DO NOTHING",
                (users, items))
    cur.execute("SELECT count(*) FROM roster")
    rows = cur.fetchone()[0]
    c.close()
    t0 = time.monotonic()
    d.ctl("backup", "repair", "--pool", POOL1, "--full", timeout=1800)
    return {"users": users, "roster_rows": rows, "seconds": time.monotonic() - t0}


def catch_up(d, outage):
    pm = Path(d.state_dir) / "stores" / "sql2" / "pgdata" / "postmaster.pid"
    leader = int(pm.read_text().split()[0])
    pids = store_pids(d, "sql2")
    acked, stop = {}, threading.Event()
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        ws = write(d, "catchup@example.test", 100, outage, acked, stop)
        for t in ws:
            t.join()
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    t0 = time.monotonic()
    d.ctl("backup", "sync", "--pool", POOL1, "--timeout", "600", timeout=700)
    return {"outage": outage, "changes": len(acked), "seconds": time.monotonic() - t0,
            "leader": leader}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,1000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--outage", type=float, default=60)
    a = ap.parse_args()
    factory = DeploymentFactory("bench-backup")
    try:
        d = factory(str(HERE.parents[1] / "examples" / "two-site.yaml"))
        wait_steady(d, POOL1, timeout=120)
        print("| rate (changes/s) | achieved | changes | lag p50 | lag p99 | lag max | CPU per change | missing |")
        print("|---|---|---|---|---|---|---|---|")
        for rate in [int(r) for r in a.rates.split(",")]:
            r = lag_run(d, rate, a.seconds)
            print(f"| {rate} | {r['achieved']:.0f} | {r['changes']} | {r['p50']:.1f} ms | "
                  f"{r['p99']:.1f} ms | {r['max']:.1f} ms | {r['cpu_ms_per_change']:.3f} ms | "
                  f"{r['missing']} |", flush=True)
        if a.outage > 0:
            c = catch_up(d, a.outage)
            print(f"\ncatch-up after a {c['outage']:.0f} s outage of sql2 at 100 changes/s "
                  f"({c['changes']} changes): {c['seconds']:.2f} s", flush=True)
        if a.users > 0:
            ic = initial_copy(d, a.users, a.items)
            print(f"\ninitial (full) copy of {ic['users']} users, {ic['roster_rows']} roster rows: "
                  f"{ic['seconds']:.1f} s", flush=True)
    finally:
        factory.close()


if __name__ == "__main__":
    main()
