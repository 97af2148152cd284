#!/usr/bin/python3
"""Room fan-out, Tandem against Prosody and ejabberd (Debian 12 packages), same machine, same run.

Reuses bench/xmpp (its peers, raw STARTTLS + SCRAM-SHA-256 client and receiver processes) with
a room of N occupants for each N of --occupants (default 50 and 500):

  - delivered messages/s and p50/p99 send->receive latency (every occupant, the sender
    included, receives every message; sender at --deliveries/N messages per second);
  - memory per occupant: RSS growth of the server process(es) while the N occupants sign in
    and join, divided by N (a session AND a room membership each; Tandem: front end + chat
    server);
  - CPU per delivery (server, PostgreSQL) net of each one's idle background, measured for 10 s
    just before (bench/xmpp/run.py idle_rates), which is printed apart;
  - PostgreSQL cost per room message: transactions committed and rows written (pg_stat_database,
    all databases of the server's cluster), minus the idle background measured just before
    (Tandem's CMS/agent activity, the peers' none), after a wait for the statistics flush.

Storage: Tandem's history in its chat store (mgc, group commit, compliance feed; --mirrored adds
a synchronous standby), Prosody's muc_log archive and ejabberd's mod_mam archive in their
PostgreSQL 15 (bench/xmpp/peers.py). Prints a Markdown table on stdout, details on stderr.

    bench/xmpp/setup      # once
    TANDEM_TEST_NET=23 TANDEM_BUILD_DIR=build-h3 /usr/bin/python3 bench/chat_fanout/compare.py \
        [--occupants 50,500] [--deliveries 5000] [--seconds 15] [--only tandem,prosody,ejabberd]
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "xmpp"))

import run as xb  # noqa: E402  bench/xmpp/run.py
from xmppclient import Session, tls_context  # noqa: E402


def rss_total(pids):
    return sum(xb.rss_kib(p) for p in pids)


def pg_counters(t):
    """(transactions committed, rows written) over the whole cluster of `t`."""
    q = ("SELECT sum(xact_commit)::bigint || ',' || "
         "sum(tup_inserted + tup_updated + tup_deleted)::bigint FROM pg_stat_database")
    if hasattr(t, "deployment"):
        import psycopg2
        d = t.deployment
        with psycopg2.connect(host=d.address("sql1"), dbname="postgres", user="tandem",
                              password=d.token()) as c, c.cursor() as cur:
            cur.execute(q)
            txt = cur.fetchone()[0]
    else:
        txt = t.peers.sql("postgres", q)
    a, b = txt.split(",")
    return int(a), int(b)


async def room(t, occupants, deliveries, seconds, workers, name):
    msgs_per_s = deliveries / occupants
    n_msgs = max(10, int(msgs_per_s * seconds))
    run_id = int(time.time())
    ctx = mp.get_context("fork")
    ready, go, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Queue()
    others = [(f"u{i}", f"o{i}") for i in range(1, occupants)]
    procs = [ctx.Process(target=xb._receiver, args=(t.address, t.muc, name, others[w::workers],
                                                    run_id, ready, go, stop, out))
             for w in range(workers)]
    mem_pids = t.server_pids
    rss0 = rss_total(mem_pids)
    sender = Session(t.address, xb.DOMAIN)
    await sender.sign_in(tls_context(), "u0", xb.PASSWORD, "room-o0")
    sender.send(f"<presence to='{name}@{t.muc}/o0'><x xmlns='http://jabber.org/protocol/muc'>"
                f"<history maxstanzas='0'/></x></presence>")
    await sender._until(rb"status code=['\"]110['\"]", 30)
    # The sender's socket must be read while 499 others join (their presences), or the server
    # blocks on it: drain from the start.
    own = []  # the sender's own deliveries (reflections): latencies
    drainer = asyncio.ensure_future(xb.read_deliveries(sender, run_id, own))
    for p in procs:
        p.start()
    join_t0 = time.monotonic()
    for _ in procs:
        while not ready.acquire(timeout=0.5):
            await asyncio.sleep(0)
            if not all(p.is_alive() for p in procs):
                raise RuntimeError(f"{t.name}: a receiver process died while joining")
            if time.monotonic() - join_t0 > 600:
                raise RuntimeError(f"{t.name}: {occupants} occupants did not join within 600 s")
    join_s = time.monotonic() - join_t0
    await asyncio.sleep(2)
    rss1 = rss_total(mem_pids)
    # Idle background of the PostgreSQL cluster (transactions, rows) and of every process's CPU
    # (xb.idle_rates), subtracted from the run so per-message figures are marginal costs.
    b0 = pg_counters(t)
    bg_cpu = await xb.idle_rates(t, min(seconds, 10))
    b1 = pg_counters(t)
    idle_s = min(seconds, 10)
    c0, t0 = t.cpu(), time.monotonic()
    p0 = pg_counters(t)
    for i in range(n_msgs):
        sender.send(f"<message to='{name}@{t.muc}' type='groupchat' id='m{i}'>"
                    f"<body>t:{run_id}:{i}:{time.monotonic_ns()}</body></message>")
        delay = t0 + (i + 1) / msgs_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    send_wall = time.monotonic() - t0
    deadline = time.monotonic() + 60
    while len(own) < n_msgs and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    c1 = t.cpu()
    run_wall = time.monotonic() - t0
    stop.set()
    lat, count = list(own), len(own)
    for _ in procs:
        c, lt = out.get(timeout=120)
        count += c
        lat.extend(lt)
    for p in procs:
        p.join(30)
    drainer.cancel()
    sender.abort()
    await asyncio.sleep(11)  # PostgreSQL 15 flushes an idle backend's statistics within 10 s
    p1 = pg_counters(t)
    bg = [(b1[k] - b0[k]) / idle_s for k in range(2)]
    pg_wall = run_wall + 11
    tx = (p1[0] - p0[0]) - bg[0] * pg_wall
    rows = (p1[1] - p0[1]) - bg[1] * pg_wall
    d = xb.marginal(c0, c1, run_wall, bg_cpu)
    lat.sort()
    return {"occupants": occupants, "sent": n_msgs, "expected": n_msgs * occupants,
            "delivered": count, "delivered_per_s": count / run_wall,
            "offered_per_s": n_msgs * occupants / send_wall,
            "p50_ms": lat[len(lat) // 2] / 1e6 if lat else float("nan"),
            "p99_ms": lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan"),
            "server_us": 1e6 * d["server"] / max(count, 1), "pg_us": 1e6 * d["pg"] / max(count, 1),
            "kib_per_occupant": (rss1 - rss0) / occupants, "join_s": join_s,
            "pg_tx_per_msg": tx / n_msgs, "pg_rows_per_msg": rows / n_msgs,
            "pg_background_tx_per_s": bg[0],
            "idle_server_ms_per_s": 1000 * bg_cpu["server"], "idle_pg_ms_per_s": 1000 * bg_cpu["pg"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--occupants", default="50,500")
    ap.add_argument("--deliveries", type=float, default=5000, help="offered deliveries per second")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--only", default="tandem,prosody,ejabberd")
    ap.add_argument("--mirrored", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.occupants.split(",")]
    xb.USERS = max(sizes)  # bench/xmpp registers u0..u{USERS-1}
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    net = int(os.environ.get("TANDEM_TEST_NET", "23"))
    only = a.only.split(",")
    from lib.deployment import DeploymentFactory
    factory = DeploymentFactory("bench-chat-fanout")
    peers = xb.start_peers(net)
    targets, results = [], {}
    try:
        if "prosody" in only or "ejabberd" in only:
            peers.start()
            for t in xb.peer_targets(peers):
                if t.name.split()[0].lower() in only:
                    t.peers = peers
                    targets.append(t)
        if "tandem" in only:
            targets.insert(0, xb.start_tandem(factory, a.mirrored))
        for n in sizes:
            for t in targets:
                xb.log(f"{t.name}: room of {n} at {a.deliveries:g} deliveries/s")
                try:
                    r = asyncio.run(room(t, n, a.deliveries, a.seconds, a.workers, "bench"))
                    xb.log(f"  {r}")
                except Exception as e:  # noqa: BLE001 - reported, the others still measured
                    xb.log(f"  FAILED: {e!r}")
                    r = {"occupants": n, "error": repr(e)}
                results.setdefault(t.name, []).append(r)
    finally:
        try:
            factory.close()
        finally:
            peers.close()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), "
          f"{os.getloadavg()[2]:.1f} (15 min); {os.cpu_count()} CPUs\n")
    print("| server | occupants | delivered | delivered/s | p50 | p99 | server CPU/delivery "
          "| PG CPU/delivery | KiB/occupant | PG tx/msg | PG rows/msg | idle CPU server / PG |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rs in results.items():
        for r in rs:
            if "error" in r:
                print(f"| {name} | {r['occupants']} | failed: {r['error'][:80]} ||||||||||")
                continue
            print(f"| {name} | {r['occupants']} | {r['delivered']}/{r['expected']} | "
                  f"{r['delivered_per_s']:.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
                  f"{r['server_us']:.0f} µs | {r['pg_us']:.0f} µs | {r['kib_per_occupant']:.0f} | "
                  f"{r['pg_tx_per_msg']:.2f} | {r['pg_rows_per_msg']:.2f} | "
                  f"{r['idle_server_ms_per_s']:.1f} / {r['idle_pg_ms_per_s']:.1f} ms/s |")


if __name__ == "__main__":
    main()
