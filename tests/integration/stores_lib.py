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
import urllib.request
from pathlib import Path
from typing import Any, Optional

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
    def __init__(self, name: str, stores: list[dict], env: Optional[dict] = None):
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
            stdout=log, stderr=log, env=self.env, start_new_session=True)

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
