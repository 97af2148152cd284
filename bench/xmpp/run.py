#!/usr/bin/python3
"""Tandem against Prosody and ejabberd (Debian 12 packages), same machine, same run.

    bench/xmpp/setup                      # once: installs the peers (bench only)
    TANDEM_TEST_NET=18 TANDEM_BUILD_DIR=build-h8 /usr/bin/python3 bench/xmpp/run.py \
        [--signins 300] [--rate 5000] [--dm-rate 1000] [--seconds 20] [--idle 2000] \
        [--only tandem,prosody] [--skip chat]
The load average is printed with every figure (the machine is shared).

What it does, for each server in turn (all three are up for the whole run):
  1. sign-ins: STARTTLS (TLS 1.3) + SCRAM-SHA-256 + bind + close, `--signin-concurrency` at a
     time; server CPU (+ its PostgreSQL) per sign-in, and sign-ins/s (client-bound: see output).
  2. persistent chat: 50 occupants in one room (history durable: Tandem's chat store in
     PostgreSQL, the peers' MUC archive in PostgreSQL); one occupant sends at --rate/50 messages
     per second for --seconds; every occupant (sender included) receives each message. Server +
     PostgreSQL CPU per delivered message, p50/p99 send->receive latency, archive rows written.
  2b. 1:1 messages: 25 senders each to its own receiver's full JID (receivers sent initial
     presence), --dm-rate messages/s in all for --seconds; server (+ PostgreSQL) CPU per message,
     p50/p99 send->receive latency.
  3. idle sessions: --idle signed-in, bound, idle sessions; RSS delta of the server process / N.
CPU is utime+stime from /proc (the machine is shared: wall time is not the server's cost), net of
the idle background measured for 5 s before each phase (Tandem's CMS, agent and chat timers; the
peers' own), which is printed apart.
Receivers run in --workers separate processes so one Python process is not the bottleneck.
Prints a Markdown report on stdout; details on stderr.
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from xmppclient import Session, tls_context  # noqa: E402

DOMAIN = "example.test"
TICK = os.sysconf("SC_CLK_TCK")
USERS = 50
PASSWORD = "bench-pw"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- /proc accounting -------------------------------------------------------------------------

def _stat(pid):
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid, children=False) -> float:
    f = _stat(pid)
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / TICK


def tree_cpu_s(root) -> float:
    """CPU of `root` (with its reaped children) plus its live direct children (PostgreSQL)."""
    total = cpu_s(root, children=True)
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int(_stat(int(p.name))[1]) == root:
                    total += cpu_s(int(p.name))
            except (OSError, IndexError):
                pass
    return total


def rss_kib(pid) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Target:
    """One server under test: where clients connect and which processes do its work."""

    def __init__(self, name, address, muc, server_pids, pg_pid, main_pid, archive_rows):
        self.name, self.address, self.muc = name, address, muc
        self.server_pids, self.pg_pid, self.main_pid = server_pids, pg_pid, main_pid
        self.archive_rows = archive_rows

    def cpu(self) -> dict:
        pgs = self.pg_pid if isinstance(self.pg_pid, list) else [self.pg_pid]
        return {"server": sum(cpu_s(p) for p in self.server_pids), "pg": sum(tree_cpu_s(p) for p in pgs)}


def cpu_delta(a, b):
    return {k: b[k] - a[k] for k in a}


async def idle_rates(t: Target, seconds: float = 5.0) -> dict:
    """CPU seconds per second that `t`'s processes spend while no client asks anything (Tandem:
    CMS heartbeats, the store agent's monitor, chat maintenance and compliance polls; the peers:
    their timers). Measured just before a phase and subtracted from it, so that per-operation
    figures are the marginal cost of the operations; reported apart as the idle background."""
    a, w0 = t.cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    b = t.cpu()
    wall = time.monotonic() - w0
    return {k: (b[k] - a[k]) / wall for k in a}


def marginal(a: dict, b: dict, wall: float, bg: dict) -> dict:
    """CPU between readings `a` and `b`, `wall` seconds apart, minus the idle background."""
    return {k: max(0.0, b[k] - a[k] - bg[k] * wall) for k in a}


# ---- 1. sign-ins --------------------------------------------------------------------------------

async def signins(t: Target, n: int, conc: int) -> dict:
    ctx = tls_context()
    sem = asyncio.Semaphore(conc)
    errors = []

    async def one(i):
        async with sem:
            s = Session(t.address, DOMAIN)
            try:
                await s.sign_in(ctx, f"u{i % USERS}", PASSWORD, f"s{i}")
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(repr(e))
            finally:
                await s.close()
    await asyncio.gather(*(one(i) for i in range(10)))  # warm-up (sessions, caches, pools)
    bg = await idle_rates(t)
    c0, w0, p0 = t.cpu(), time.monotonic(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, client = time.monotonic() - w0, time.process_time() - p0
    d = marginal(c0, t.cpu(), wall, bg)
    ok = n - len(errors)
    if errors:
        log(f"{t.name}: {len(errors)} sign-ins failed, first: {errors[0]}")
    return {"ok": ok, "n": n, "server_ms": 1000 * d["server"] / max(ok, 1),
            "pg_ms": 1000 * d["pg"] / max(ok, 1), "per_s": ok / wall,
            "client_ms": 1000 * client / max(ok, 1), "load": os.getloadavg()[0],
            "idle_server_ms_per_s": 1000 * bg["server"], "idle_pg_ms_per_s": 1000 * bg["pg"]}


# ---- 2. persistent chat -------------------------------------------------------------------------

BODY_RE = re.compile(rb"<body>t:(\d+):(\d+):(\d+)</body>")


async def read_deliveries(s, run_id: int, lat: list) -> None:
    """Reads `s` until its stream ends, appending the send->receive latency (ns) of every message
    of run `run_id` (body t:<run>:<n>:<send ns>) to `lat`; len(lat) is the delivery count. The
    receiving half of every benchmark client, the senders' own reflections included."""
    while True:
        chunk = await s.r.read(1 << 20)
        if not chunk:
            return
        now = time.monotonic_ns()
        s.buf += chunk
        cut = s.buf.rfind(b"</message>")
        if cut < 0:
            if len(s.buf) > (1 << 22):  # presences only (a big room joining): keep the tail
                s.buf = s.buf[-4096:]
            continue
        done, s.buf = s.buf[:cut + 10], s.buf[cut + 10:]
        for m in BODY_RE.finditer(done):
            if int(m.group(1)) == run_id:
                lat.append(now - int(m.group(3)))


async def _count_until_stopped(sessions, run_id, stop, out) -> None:
    """Reads every session until `stop` is set (read_deliveries), then puts (count, latencies) on
    `out` and closes the sessions. The receiving half of every worker process."""
    lat = []
    tasks = [asyncio.ensure_future(read_deliveries(s, run_id, lat)) for s in sessions]
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for tk in tasks:
        tk.cancel()
    out.put((len(lat), lat))
    for s in sessions:
        s.abort()


def _receiver(address, muc, room, users, run_id, ready, go, stop, out):
    """A worker process: signs in `users`, joins the room, counts deliveries of run `run_id`."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)

    async def main():
        ctx = tls_context()
        sessions = []
        for u, nick in users:
            s = Session(address, DOMAIN)
            await s.sign_in(ctx, u, PASSWORD, f"room-{nick}")
            s.send(f"<presence to='{room}@{muc}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>"
                   f"<history maxstanzas='0'/></x></presence>")
            await s._until(rb"status code=['\"]110['\"]", 30)
            sessions.append(s)
        ready.release()
        await _count_until_stopped(sessions, run_id, stop, out)
    asyncio.run(main())


async def chat(t: Target, rate: float, seconds: float, workers: int, room="bench") -> dict:
    occupants = 50
    msgs_per_s = rate / occupants
    n_msgs = int(msgs_per_s * seconds)
    run_id = int(time.time())
    ctx = mp.get_context("fork")
    ready, go, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Queue()
    # Occupant 0 (the sender) lives here; occupants 1..49 in the workers.
    others = [(f"u{i}", f"o{i}") for i in range(1, occupants)]
    procs = [ctx.Process(target=_receiver, args=(t.address, t.muc, room, others[w::workers], run_id,
                                                 ready, go, stop, out)) for w in range(workers)]
    sender = Session(t.address, DOMAIN)
    await sender.sign_in(tls_context(), "u0", PASSWORD, "room-o0")
    sender.send(f"<presence to='{room}@{t.muc}/o0'><x xmlns='http://jabber.org/protocol/muc'>"
                f"<history maxstanzas='0'/></x></presence>")
    await sender._until(rb"status code=['\"]110['\"]", 30)
    for p in procs:
        p.start()
    for _ in procs:
        while not ready.acquire(timeout=0.5):
            if not all(p.is_alive() for p in procs):
                raise RuntimeError(f"{t.name}: a receiver process died while joining")
    await asyncio.sleep(1)
    own = []  # the sender's own deliveries (reflections): latencies
    rows0 = t.archive_rows()
    drainer = asyncio.ensure_future(read_deliveries(sender, run_id, own))
    bg = await idle_rates(t)
    c0, t0 = t.cpu(), time.monotonic()
    for i in range(n_msgs):
        sender.send(f"<message to='{room}@{t.muc}' type='groupchat' id='m{i}'>"
                    f"<body>t:{run_id}:{i}:{time.monotonic_ns()}</body></message>")
        delay = t0 + (i + 1) / msgs_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    send_wall = time.monotonic() - t0
    # Let deliveries finish (bounded), then stop counting.
    deadline = time.monotonic() + 30
    while len(own) < n_msgs and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    c1, t1 = t.cpu(), time.monotonic()
    stop.set()
    lat, count = list(own), len(own)
    for _ in procs:
        c, l = out.get(timeout=60)
        count += c
        lat.extend(l)
    for p in procs:
        p.join(30)
    drainer.cancel()
    sender.abort()
    d = marginal(c0, c1, t1 - t0, bg)
    rows = t.archive_rows() - rows0
    lat.sort()
    return {"sent": n_msgs, "expected": n_msgs * occupants, "delivered": count,
            "offered_per_s": n_msgs * occupants / send_wall,
            "server_us": 1e6 * d["server"] / max(count, 1), "pg_us": 1e6 * d["pg"] / max(count, 1),
            "p50_ms": lat[len(lat) // 2] / 1e6 if lat else float("nan"),
            "p99_ms": lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan"),
            "archived": rows,
            "idle_server_ms_per_s": 1000 * bg["server"], "idle_pg_ms_per_s": 1000 * bg["pg"]}


# ---- 2b. 1:1 messages ---------------------------------------------------------------------------

DM_PAIRS = USERS // 2  # u0..u24 send, u25..u49 receive (one receiver each)


def _dm_receiver(address, users, run_id, ready, stop, out):
    """A worker process: signs in `users` (resource `dm`), sends initial presence, counts the
    messages of run `run_id` and their send->receive latency."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)

    async def main():
        ctx = tls_context()
        sessions = []
        for u in users:
            s = Session(address, DOMAIN)
            await s.sign_in(ctx, u, PASSWORD, "dm")
            s.send("<presence/>")
            sessions.append(s)
        await asyncio.sleep(0.5)
        for s in sessions:  # drop what sign-in and presence brought (no messages yet)
            s.buf = b""
        ready.release()
        await _count_until_stopped(sessions, run_id, stop, out)
    asyncio.run(main())


async def direct(t: Target, rate: float, seconds: float, workers: int) -> dict:
    """1:1 chat messages: DM_PAIRS senders, each to its own receiver's full JID, `rate`
    messages/s in all for `seconds`. Server (+ PostgreSQL) CPU per message, p50/p99 latency."""
    n_msgs = int(rate * seconds)
    run_id = int(time.time()) + 7
    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    receivers = [f"u{DM_PAIRS + i}" for i in range(DM_PAIRS)]
    procs = [ctx.Process(target=_dm_receiver, args=(t.address, receivers[w::workers], run_id,
                                                    ready, stop, out)) for w in range(workers)]
    for p in procs:
        p.start()
    senders = []
    tls = tls_context()
    for i in range(DM_PAIRS):
        s = Session(t.address, DOMAIN)
        await s.sign_in(tls, f"u{i}", PASSWORD, "dm-send")
        senders.append(s)
    for _ in procs:
        while not ready.acquire(timeout=0.5):
            if not all(p.is_alive() for p in procs):
                raise RuntimeError(f"{t.name}: a receiver process died while signing in")
    await asyncio.sleep(1)

    async def discard(s):  # senders' own input (nothing expected) must not pile up
        while await s.r.read(1 << 16):
            pass
    drains = [asyncio.ensure_future(discard(s)) for s in senders]
    bg = await idle_rates(t)
    c0, t0 = t.cpu(), time.monotonic()
    for i in range(n_msgs):
        k = i % DM_PAIRS
        senders[k].send(f"<message to='u{DM_PAIRS + k}@{DOMAIN}/dm' type='chat' id='d{i}'>"
                        f"<body>t:{run_id}:{i}:{time.monotonic_ns()}</body></message>")
        delay = t0 + (i + 1) / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    send_wall = time.monotonic() - t0
    await asyncio.sleep(3.0)  # let deliveries finish (receivers keep counting until `stop`)
    c1, t1 = t.cpu(), time.monotonic()
    stop.set()
    lat, count = [], 0
    for _ in procs:
        c, l = out.get(timeout=60)
        count += c
        lat.extend(l)
    for p in procs:
        p.join(30)
    for d in drains:
        d.cancel()
    for s in senders:
        s.abort()
    d = marginal(c0, c1, t1 - t0, bg)
    lat.sort()
    return {"sent": n_msgs, "delivered": count, "offered_per_s": n_msgs / send_wall,
            "idle_server_ms_per_s": 1000 * bg["server"], "idle_pg_ms_per_s": 1000 * bg["pg"],
            "server_us": 1e6 * d["server"] / max(count, 1), "pg_us": 1e6 * d["pg"] / max(count, 1),
            "p50_ms": lat[len(lat) // 2] / 1e6 if lat else float("nan"),
            "p99_ms": lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan"),
            "load": os.getloadavg()[0]}


# ---- 3. idle sessions ---------------------------------------------------------------------------

def _idler(address, users, ready, stop, out):
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)

    async def main():
        ctx = tls_context()
        sem = asyncio.Semaphore(8)
        sessions, errors = [], []

        async def one(u, res):
            async with sem:
                if len(errors) > 20:  # the server refuses sessions: stop, report what opened
                    return
                s = Session(address, DOMAIN)
                try:
                    await s.sign_in(ctx, u, PASSWORD, res)
                    sessions.append(s)
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
                    s.abort()
        await asyncio.gather(*(one(u, r) for u, r in users))
        out.put((len(sessions), errors[:3]))
        ready.release()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for s in sessions:
            s.abort()
    asyncio.run(main())


def idle(t: Target, n: int, workers: int) -> dict:
    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    users = [(f"u{i % USERS}", f"idle{i}") for i in range(n)]
    rss0 = rss_kib(t.main_pid)
    procs = [ctx.Process(target=_idler, args=(t.address, users[w::workers], ready, stop, out))
             for w in range(workers)]
    for p in procs:
        p.start()
    opened, errs = 0, []
    for _ in procs:
        c, e = out.get(timeout=1800)
        opened += c
        errs += e
    for _ in procs:
        ready.acquire(timeout=60)
    time.sleep(3)
    rss1 = rss_kib(t.main_pid)
    stop.set()
    for p in procs:
        p.join(60)
    if errs:
        log(f"{t.name}: idle sessions failed: {errs}")
    return {"opened": opened, "n": n, "rss0_mib": rss0 / 1024, "rss1_mib": rss1 / 1024,
            "per_session_kib": (rss1 - rss0) / max(opened, 1), "load": os.getloadavg()[0]}


# ---- the three servers ---------------------------------------------------------------------------

def tandem_topology(mirrored: bool) -> dict:
    import yaml
    topo = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())
    if mirrored:
        # quickstart's one store with a synchronous mirror (as two-site's pc1, without the log
        # shipping and the second site): every chat commit waits for the standby's flush.
        topo["stores"][0]["mirror"] = "sql1m"
        topo["stores"].append({"name": "sql1m", "site": "Site1", "address": "127.0.1.11"})
    topo["users"] = [{"name": f"u{i}", "pool": topo["pools"][0]["fqdn"], "password": PASSWORD}
                     for i in range(USERS)]
    topo["rooms"] = [{"name": "bench", "category": "general"}]
    return topo


def start_tandem(factory, mirrored=False) -> Target:
    import psycopg2
    d = factory(tandem_topology(mirrored))
    from test_chat_muc import wait_chat_serving
    wait_chat_serving(d)
    procs = {p["name"]: p for p in d.status()}
    log("tandem processes:", {n: (p.get("kind"), p.get("pid")) for n, p in procs.items()})
    fe = procs["fe1a.example.test"]["pid"]
    # Every Tandem server process (front end, chat server, compliance server); not the store
    # agent (management only, the peers have none) — its CPU is printed apart on stderr.
    servers = [p["pid"] for p in procs.values() if p.get("kind") == "server" and p.get("pid")]
    stores = ["sql1", "sql1m"] if mirrored else ["sql1"]
    pg_pid = [int(next(d.state_dir.glob(f"stores/{s}/**/postmaster.pid")).read_text().split()[0])
              for s in stores]
    chat_pool = next(p for p in d.pools("chat"))["fqdn"]

    def rows():
        with psycopg2.connect(host=d.address("sql1"), dbname="mgc", user="tandem",
                              password=d.token()) as c, c.cursor() as cur:
            cur.execute("SELECT count(*) FROM messages")
            return cur.fetchone()[0]
    t = Target("Tandem (mirrored)" if mirrored else "Tandem", d.address("fe1a.example.test"), chat_pool, servers, pg_pid, fe, rows)
    t.deployment = d
    return t


async def register_all(address):
    ctx = tls_context()
    for i in range(USERS):
        s = Session(address, DOMAIN)
        await s.connect_tls(ctx)
        await s.register(f"u{i}", PASSWORD)
        await s.close()


def start_peers(net) -> tuple:
    from peers import Peers
    p = Peers(net, Path(f"/var/tmp/tandem{net}-peers"))
    return p


def peer_targets(p) -> list:
    for name in ("prosody", "ejabberd"):
        asyncio.run(register_all(p.addr[name]))
    pros = Target("Prosody 0.12.3", p.addr["prosody"], f"conference.{DOMAIN}", [p.prosody_pid()],
                  p.postmaster_pid(), p.prosody_pid(),
                  lambda: int(p.sql("prosody", "SELECT count(*) FROM prosodyarchive WHERE store='muc_log'") or 0))
    ej = Target("ejabberd 23.01", p.addr["ejabberd"], f"conference.{DOMAIN}", [p.ejabberd_pid()],
                p.postmaster_pid(), p.ejabberd_pid(),
                lambda: int(p.sql("ejabberd", "SELECT count(*) FROM archive WHERE kind='groupchat'") or 0))
    return [pros, ej]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--signins", type=int, default=300)
    ap.add_argument("--signin-concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=5000, help="offered room deliveries per second")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--dm-rate", type=float, default=1000, help="1:1 messages per second")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--only", default="tandem,prosody,ejabberd")
    ap.add_argument("--mirrored", action="store_true",
                    help="Tandem's store with a synchronous mirror (its PostgreSQL CPU counted too)")
    ap.add_argument("--skip", default="", help="comma list of phases to skip: signin,chat,dm,idle")
    a = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    net = int(os.environ.get("TANDEM_TEST_NET", "18"))
    only, skip = a.only.split(","), a.skip.split(",")
    from lib.deployment import DeploymentFactory
    factory = DeploymentFactory("bench-xmpp")
    peers = start_peers(net)
    targets, results = [], {}
    try:
        if "prosody" in only or "ejabberd" in only:
            peers.start()
            targets += [t for t in peer_targets(peers) if t.name.split()[0].lower() in only]
        if "tandem" in only:
            targets.insert(0, start_tandem(factory, a.mirrored))
        for t in targets:
            results[t.name] = {}
        if "signin" not in skip:
            for t in targets:
                log(f"{t.name}: sign-ins")
                results[t.name]["signin"] = r = asyncio.run(signins(t, a.signins, a.signin_concurrency))
                log(f"  {r}")
        if "chat" not in skip:
            for t in targets:
                log(f"{t.name}: room of 50 at {a.rate:g} deliveries/s")
                try:
                    results[t.name]["chat"] = r = asyncio.run(chat(t, a.rate, a.seconds, a.workers))
                    log(f"  {r}")
                except Exception as e:  # noqa: BLE001 - reported, other servers still measured
                    log(f"  FAILED: {e!r}")
                    results[t.name]["chat_error"] = repr(e)
        if "dm" not in skip:
            for t in targets:
                log(f"{t.name}: 1:1 messages at {a.dm_rate:g}/s")
                try:
                    results[t.name]["dm"] = r = asyncio.run(direct(t, a.dm_rate, a.seconds, a.workers))
                    log(f"  {r}")
                except Exception as e:  # noqa: BLE001 - reported, other servers still measured
                    log(f"  FAILED: {e!r}")
                    results[t.name]["dm_error"] = repr(e)
        if "idle" not in skip:
            for t in targets:
                log(f"{t.name}: {a.idle} idle sessions")
                results[t.name]["idle"] = r = idle(t, a.idle, a.workers)
                log(f"  {r}")
    finally:
        try:
            factory.close()
        finally:
            peers.close()
    print(report(results, a))


def report(results, a) -> str:
    names = list(results)
    out = [f"load average at the end: {os.getloadavg()[0]:.1f}", ""]

    def row(label, fn):
        cells = []
        for n in names:
            try:
                cells.append(fn(results[n]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("—")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("| | " + " | ".join(names) + " |")
    out.append("|---|" + "---|" * len(names))
    row("sign-in: server CPU", lambda r: f"{r['signin']['server_ms']:.2f} ms")
    row("sign-in: PostgreSQL CPU", lambda r: f"{r['signin']['pg_ms']:.2f} ms")
    row("sign-ins/s (client-bound)", lambda r: f"{r['signin']['per_s']:.0f} ({r['signin']['ok']}/{r['signin']['n']})")
    row("sign-in: load average", lambda r: f"{r['signin']['load']:.1f}")
    row("sign-in: client CPU", lambda r: f"{r['signin']['client_ms']:.2f} ms")
    row("room: offered deliveries/s", lambda r: f"{r['chat']['offered_per_s']:.0f}")
    row("room: delivered / expected", lambda r: f"{r['chat']['delivered']}/{r['chat']['expected']}")
    row("room: server CPU per delivery", lambda r: f"{r['chat']['server_us']:.1f} µs")
    row("room: PostgreSQL CPU per delivery", lambda r: f"{r['chat']['pg_us']:.1f} µs")
    row("room: total CPU per delivery", lambda r: f"{r['chat']['server_us'] + r['chat']['pg_us']:.1f} µs")
    row("room: p50 latency", lambda r: f"{r['chat']['p50_ms']:.1f} ms")
    row("room: p99 latency", lambda r: f"{r['chat']['p99_ms']:.1f} ms")
    row("room: rows archived / messages sent", lambda r: f"{r['chat']['archived']}/{r['chat']['sent']}")
    row("1:1: offered messages/s", lambda r: f"{r['dm']['offered_per_s']:.0f}")
    row("1:1: delivered / sent", lambda r: f"{r['dm']['delivered']}/{r['dm']['sent']}")
    row("1:1: server CPU per message", lambda r: f"{r['dm']['server_us']:.1f} µs")
    row("1:1: PostgreSQL CPU per message", lambda r: f"{r['dm']['pg_us']:.1f} µs")
    row("1:1: p50 latency", lambda r: f"{r['dm']['p50_ms']:.1f} ms")
    row("1:1: p99 latency", lambda r: f"{r['dm']['p99_ms']:.1f} ms")
    row("1:1: load average", lambda r: f"{r['dm']['load']:.1f}")
    row("idle background CPU, server / PostgreSQL (subtracted above)",
        lambda r: f"{r['dm']['idle_server_ms_per_s']:.1f} / {r['dm']['idle_pg_ms_per_s']:.1f} ms/s")
    row("idle sessions opened", lambda r: f"{r['idle']['opened']}/{r['idle']['n']}")
    row("RSS per idle session", lambda r: f"{r['idle']['per_session_kib']:.1f} KiB")
    row("idle: load average", lambda r: f"{r['idle']['load']:.1f}")
    row("RSS before → after", lambda r: f"{r['idle']['rss0_mib']:.0f} → {r['idle']['rss1_mib']:.0f} MiB")
    for n in names:
        if "dm_error" in results[n]:
            out.append(f"\n{n}: 1:1 benchmark failed: {results[n]['dm_error']}")
        if "chat_error" in results[n]:
            out.append(f"\n{n}: room benchmark failed: {results[n]['chat_error']}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
