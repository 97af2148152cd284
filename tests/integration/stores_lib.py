"""Agents started directly (tandemd --role sqlagent), for tests/integration/test_stores.py and
bench/store_failover.

`StoreDeployment` makes a state directory under /var/tmp (token, CA and one certificate per
store, made with the openssl CLI like `deploy up` does), writes the topology with addresses on
127.$TANDEM_TEST_NET.X.Y, starts one agent per store, and always kills what it started (agents
by pid, PostgreSQL by postmaster.pid) on close().
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import psycopg2
import pytest
import yaml

# build_dir and wait_until are the deployment library's (wait_until is re-exported for
# test_stores.py and bench/store_failover).
from lib.deployment import build_dir, wait_until  # noqa: F401


def test_net() -> int:
    return int(os.environ.get("TANDEM_TEST_NET", "13"))


def tandemd() -> Path:
    b = build_dir()
    if os.access(b / "bin" / "tandemd", os.X_OK):
        return b / "bin" / "tandemd"
    raise AssertionError(f"no tandemd in {b}/bin: build it (cmake --build {b} --target tandemd)")


def addr(x: int, y: int) -> str:
    return f"127.{test_net()}.{x}.{y}"


class StoreDeployment:
    def __init__(self, name: str, stores: list[dict], env: Optional[dict] = None,
                 partitions: bool = False):
        self.dir = Path(f"/var/tmp/tandem-h3-{name}-{os.getpid()}")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(mode=0o755, parents=True)
        os.chmod(self.dir, 0o755)
        self.stores = {s["name"]: s for s in stores}
        self.env = {**os.environ, **(env or {})}
        self.procs: dict[str, subprocess.Popen] = {}
        topo = {
            "domain": "example.test",
            "sites": [{"name": "Site1"}, {"name": "Site2"}],
            "stores": stores,
            "pools": [],
        }
        self.topology = self.dir / "topology.yaml"
        self.topology.write_text(yaml.safe_dump(topo, sort_keys=False))
        (self.dir / "secret").mkdir(mode=0o700)
        self.token = os.urandom(32).hex()
        (self.dir / "secret" / "token").write_text(self.token + "\n")
        self._make_pki()
        self.ctx = ssl.create_default_context(cafile=str(self.dir / "pki" / "ca.pem"))
        # Each agent (and the PostgreSQL it starts) in a cgroup of its own, so that packets
        # between two stores can be dropped (partitions), see Partitions.
        self.net: Optional[Partitions] = Partitions({n: s['address'] for n, s in self.stores.items()}) if partitions else None

    def _make_pki(self) -> None:
        pki = self.dir / "pki"
        pki.mkdir()
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=pki)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=test CA")
        for s in self.stores.values():
            n = s["name"]
            ext = pki / f"{n}.ext"
            ext.write_text(f"subjectAltName=DNS:{n},IP:{s['address']}\n"
                           "extendedKeyUsage=serverAuth,clientAuth\n")
            run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{n}.key", "-out", f"{n}.csr", "-subj", f"/CN={n}")
            run("openssl", "x509", "-req", "-in", f"{n}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{n}.pem", "-days", "30", "-extfile", str(ext))

    # ---- processes ---------------------------------------------------------------------------
    def start(self, name: str) -> None:
        log = open(self.dir / f"agent-{name}.out", "ab")
        self.procs[name] = subprocess.Popen(
            [str(tandemd()), "--role", "sqlagent", "--topology", str(self.topology),
             "--state-dir", str(self.dir), "--store", name, "--log-level", "debug"],
            stdout=log, stderr=log, env=self.env, start_new_session=True,
            preexec_fn=self.net.joiner(name) if self.net else None)

    def start_all(self) -> None:
        for n in self.stores:
            self.start(n)

    def postmaster_pid(self, name: str) -> Optional[int]:
        f = self.dir / "stores" / name / "pgdata" / "postmaster.pid"
        try:
            return int(f.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill9(self, name: str, postgres: bool = True) -> None:
        """kill -9 of the agent and (with postgres) its postmaster and backends."""
        p = self.procs.get(name)
        if p and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        if postgres:
            pm = self.postmaster_pid(name)
            if pm:
                # The postmaster's children die with it only on their next check; kill the group.
                for pid in self._children(pm) + [pm]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    @staticmethod
    def _children(ppid: int) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(ppid)], capture_output=True, text=True)
        return [int(x) for x in out.stdout.split()]

    def close(self) -> None:
        for n in list(self.procs):
            self.kill9(n, postgres=True)
        for n in self.stores:
            self.kill9(n, postgres=True)
        if self.net:
            self.net.close()
        if os.environ.get("TANDEM_KEEP_STATE") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- admin API ---------------------------------------------------------------------------
    def call(self, name: str, method: str, path: str, body: Optional[dict] = None,
             timeout: float = 10) -> Any:
        url = f"https://{self.stores[name]['address']}:8443{path}"
        data = json.dumps(body or {}).encode() if method != "GET" else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                raw = r.read().decode()
                return json.loads(raw) if raw.startswith(("{", "[")) else raw
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path} on {name}: HTTP {e.code}: {e.read().decode()}") from None

    def status(self, name: str) -> dict:
        return self.call(name, "GET", "/status", timeout=5)

    def dsn(self, *names: str, db: str = "postgres", rw: bool = True) -> str:
        hosts = ",".join(self.stores[n]["address"] for n in names)
        ports = ",".join("5432" for _ in names)
        tsa = "read-write" if rw else "any"
        return (f"host={hosts} port={ports} dbname={db} user=tandem password={self.token} "
                f"target_session_attrs={tsa} connect_timeout=2")

    def log_tail(self, name: str, n: int = 40) -> str:
        out = []
        for f in (self.dir / "stores" / name / "agent.log", self.dir / "stores" / name / "postgres.log",
                  self.dir / f"agent-{name}.out"):
            if f.exists():
                out.append(f"--- {f}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-n:]))
        return "\n".join(out)


class Partitions:
    """Network partitions between stores on loopback.

    Every store's agent runs in its own cgroup (v2, /sys/fs/cgroup/unified/<group>/<store>), and
    PostgreSQL, pg_ctl and pg_basebackup, started by the agent, inherit it. `cut(a, b)` drops
    every packet a process of a's group sends to b's address and every packet of b's group to
    a's (iptables `-m cgroup --path` in a chain of our own, jumped to from OUTPUT): connections
    between them cannot start, and established ones stall (their sends are dropped). Source
    addresses cannot be used: on loopback every connection leaves from 127.0.0.1. The test
    process itself (the clients) is in no group: it still reaches every store."""

    def __init__(self, addresses: dict[str, str]):
        self.group = f"tandem-n{test_net()}-{os.getpid()}"
        self.root = Path("/sys/fs/cgroup/unified") / self.group
        self.chain = f"TN{test_net()}P{os.getpid()}"[:28]
        self.cuts: set[tuple[str, str]] = set()
        self.addresses = addresses
        for s in addresses:
            (self.root / s).mkdir(parents=True, exist_ok=True)
        self._ipt("-N", self.chain)
        self._ipt("-I", "OUTPUT", "-j", self.chain)

    @staticmethod
    def _ipt(*args: str) -> None:
        subprocess.run(["iptables", "-w", *args], check=True, capture_output=True)

    def joiner(self, store: str):
        procs = self.root / store / "cgroup.procs"
        return lambda: procs.write_text(str(os.getpid()))

    def cut(self, a: str, b: str) -> None:
        for x, y in ((a, b), (b, a)):
            if (x, y) in self.cuts:
                continue
            self._ipt("-A", self.chain, "-m", "cgroup", "--path", f"{self.group}/{x}",
                      "-d", self.addresses[y], "-j", "DROP")
            self.cuts.add((x, y))

    def isolate(self, store: str, *others: str) -> None:
        for o in others:
            self.cut(store, o)

    def mend(self, a: str, b: str) -> None:
        """Undoes cut(a, b) only."""
        for x, y in ((a, b), (b, a)):
            if (x, y) in self.cuts:
                self._ipt("-D", self.chain, "-m", "cgroup", "--path", f"{self.group}/{x}",
                          "-d", self.addresses[y], "-j", "DROP")
                self.cuts.discard((x, y))

    def signal_all(self, store: str, sig: int = signal.SIGKILL) -> None:
        """Sends `sig` to every process of the store's group: SIGKILL as a host crash would (a
        pg_basebackup under way included), SIGSTOP/SIGCONT as a host that hangs and resumes."""
        for pid in (self.root / store / "cgroup.procs").read_text().split():
            try:
                os.kill(int(pid), sig)
            except ProcessLookupError:
                pass

    def heal(self) -> None:
        self._ipt("-F", self.chain)
        self.cuts.clear()

    def close(self) -> None:
        subprocess.run(["iptables", "-w", "-D", "OUTPUT", "-j", self.chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-F", self.chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-X", self.chain], capture_output=True)
        for _ in range(50):  # a guard may still be stopping a PostgreSQL: bounded wait
            for g in self.root.glob("*"):
                try:
                    g.rmdir()
                except OSError:
                    pass
            try:
                self.root.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def partitions_supported() -> bool:
    """iptables with the cgroup match and a writable cgroup v2 hierarchy (root only)."""
    if os.geteuid() != 0 or not Path("/sys/fs/cgroup/unified/cgroup.procs").exists():
        return False
    r = subprocess.run(["iptables", "-m", "cgroup", "-h"], capture_output=True, text=True)
    return r.returncode == 0 and "--path" in r.stdout


# ---- the mirrored pair, its writers and checks (test_stores.py, test_store_faults.py) ------------

TIMEOUT_ENV = {"TANDEM_PARTNER_TIMEOUT_S": "3"}


def mirrored(x: int) -> list[dict]:
    return [
        {"name": "sql1", "site": "Site1", "address": addr(x, 10), "mirror": "sql1m", "witness": "w1"},
        {"name": "sql1m", "site": "Site1", "address": addr(x, 11)},
        {"name": "w1", "site": "Site1", "address": addr(x, 12), "witness_only": True},
    ]


@pytest.fixture
def stores(request):
    made: list[StoreDeployment] = []
    failed_before = request.session.testsfailed

    def make(topology: list[dict], env=None, partitions: bool = False) -> StoreDeployment:
        d = StoreDeployment(request.node.name[:40], topology, env, partitions=partitions)
        made.append(d)
        d.start_all()
        return d

    yield make
    for d in made:
        if request.session.testsfailed > failed_before:  # the call phase failed: show the logs
            for n in d.stores:
                print(d.log_tail(n))
        d.close()


def connect(d: StoreDeployment, *names: str, rw: bool = True):
    c = psycopg2.connect(d.dsn(*names, rw=rw))
    c.autocommit = True
    return c


def run(d: StoreDeployment, names, *statements: str, rw: bool = True):
    """Runs each statement in its own autocommit transaction; returns the last one's rows.

    (psycopg2's `with connection` opens a transaction even in autocommit mode, so tests do not
    use it: a commit must be acknowledged exactly where the test says.)"""
    c = connect(d, *([names] if isinstance(names, str) else names), rw=rw)
    try:
        rows = None
        with c.cursor() as cur:
            for st in statements:
                cur.execute(st)
                rows = cur.fetchall() if cur.description else None
        return rows
    finally:
        c.close()


def role(d: StoreDeployment, name: str) -> str:
    return d.status(name)["role"]


class Writer(threading.Thread):
    """Commits one row per transaction into `acked` through the multi-host DSN of `names`;
    records every acknowledged id and when it was acknowledged; reconnects after any error.
    Writers sharing the table take ids from different `first_id`s; `pause_s` spaces commits
    (a probe of one store every 100 ms)."""

    def __init__(self, d: StoreDeployment, *names: str, first_id: int = 0, pause_s: float = 0):
        super().__init__(daemon=True)
        self.d, self.names = d, names
        self.acked: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.next_id = first_id
        self.pause_s = pause_s

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.d, *self.names)
                i = self.next_id
                self.next_id += 1
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked(id) VALUES (%s)", (i,))
                self.acked.append((i, time.monotonic()))
                if self.pause_s:
                    time.sleep(self.pause_s)
            except psycopg2.Error:
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                time.sleep(0.05)


def start_writer_on_synchronized_pair(d: StoreDeployment, min_acked: int) -> Writer:
    """Waits for sql1 SYNCHRONIZED, creates the table `acked` and starts a Writer on the pair;
    returns once it has more than `min_acked` acknowledged commits."""
    wait_until(lambda: d.status("sql1")["mirror_status"] == "SYNCHRONIZED", 120, "SYNCHRONIZED")
    run(d, ["sql1", "sql1m"], "CREATE TABLE acked(id bigint PRIMARY KEY)")
    w = Writer(d, "sql1", "sql1m")
    w.start()
    wait_until(lambda: len(w.acked) > min_acked, 30, "writer running")
    return w


def kill_principal_and_check_no_acknowledged_commit_lost(d: StoreDeployment, w: Writer) -> float:
    """kill -9 of sql1 (agent and PostgreSQL) under the writer's load: sql1m takes over and
    acknowledges commits again, and holds every commit acknowledged before. Stops the writer;
    returns the time of the kill (commits in flight at the kill count as before it)."""
    d.kill9("sql1")
    killed_at = time.monotonic()
    wait_until(lambda: role(d, "sql1m") == "Principal", 30, "automatic failover to sql1m")
    wait_until(lambda: any(t > killed_at for _, t in w.acked), 30, "commits acknowledged again")
    w.stop.set()
    w.join(10)
    present = {r[0] for r in run(d, "sql1m", "SELECT id FROM acked")}
    missing = [i for i, _ in w.acked if i not in present]
    assert not missing, f"{len(missing)} acknowledged commits lost: {missing[:10]}"
    return killed_at


