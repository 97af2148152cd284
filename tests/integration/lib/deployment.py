"""A whole Tandem deployment on this machine, for integration tests.

`DeploymentFactory` copies a topology file, rewrites its loopback addresses to the developer's own
network (127.<TANDEM_TEST_NET>.X.Y, so parallel runs never collide), makes a state directory under
/var/tmp that the `postgres` user can traverse, and runs `tandemctl deploy up`. Closing the
factory ALWAYS tears everything down: `deploy down --purge`, then SIGKILL of anything it started
that is still alive (run/*.json pids, postmaster.pid files, any process naming the state
directory), then removal of the directory.

The conftest.py fixtures `deploy` (per test) and `deploy_module` (per test file) hand out a
factory: `d = deploy("examples/two-site.yaml")` returns a `Deployment`.

Environment:
  TANDEM_BUILD_DIR   build directory holding bin/tandemctl and bin/tandemd (default <repo>/build)
  TANDEM_TEST_NET    second octet of every loopback address (default 0: addresses unchanged)
  TANDEM_KEEP_STATE  when set to 1, the state directory is kept after teardown (processes are
                     still stopped) so its logs can be read
"""

from __future__ import annotations

import copy
import json as jsonlib
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

REPO = Path(__file__).resolve().parents[3]
STATE_ROOT = Path("/var/tmp")
_ADDR_RE = re.compile(r"\b127\.0\.(\d{1,3})\.(\d{1,3})\b")
# Absolute share paths in example topologies point at /var/lib/tandem; a test deployment keeps
# them inside its own state directory (relative paths resolve against it, docs/architecture.md).
_SHARE_RE = re.compile(r"(share:\s*)[\"']?/var/lib/tandem/([^\s,}\"']+)[\"']?")


class DeploymentError(AssertionError):
    """A tandemctl command failed; the message carries its stdout and stderr."""


def test_net() -> int:
    n = int(os.environ.get("TANDEM_TEST_NET", "0"))
    if not 0 <= n <= 255:
        raise ValueError(f"TANDEM_TEST_NET must be 0..255, got {n}")
    return n


def build_dir() -> Path:
    return Path(os.environ.get("TANDEM_BUILD_DIR", str(REPO / "build"))).resolve()


def binaries() -> tuple[Path, Path]:
    """(tandemctl, tandemd); raises DeploymentError naming what is missing and how to build it."""
    b = build_dir()
    ctl, daemon = b / "bin" / "tandemctl", b / "bin" / "tandemd"
    missing = [str(p) for p in (ctl, daemon) if not os.access(p, os.X_OK)]
    if missing:
        raise DeploymentError(
            f"missing binaries {', '.join(missing)}: build them first "
            f"(cmake --build {b} --target tandemctl tandemd) or set TANDEM_BUILD_DIR")
    return ctl, daemon


def rewrite_topology_text(text: str, net: Optional[int] = None) -> str:
    """127.0.X.Y -> 127.<net>.X.Y everywhere; /var/lib/tandem/... share paths -> relative."""
    n = test_net() if net is None else net
    text = _ADDR_RE.sub(lambda m: f"127.{n}.{m.group(1)}.{m.group(2)}", text)
    return _SHARE_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}", text)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.2) -> Any:
    """Polls `predicate` until it returns something truthy (returned) or `timeout` seconds pass.

    Exceptions from the predicate count as "not yet"; the last one is named in the failure.
    Raises AssertionError("timed out after Ns waiting for <what>; last: ...").
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - the predicate may fail until the system is ready
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an unreaped zombie holds no resources)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state is the field after the ")" that closes the command name.
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X", "")


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Deployment:
    """One deployed topology: its state directory, topology, and helpers to drive it."""

    def __init__(self, state_dir: Path, topology_path: Path, env: dict[str, str]):
        self.state_dir = Path(state_dir)
        self.topology_path = Path(topology_path)
        self.topology: dict = yaml.safe_load(self.topology_path.read_text()) or {}
        self.env = dict(env)
        self.tandemctl, self.tandemd = binaries()
        self._pids_seen: set[int] = set()

    # ---- the topology ----------------------------------------------------------------------
    @property
    def domain(self) -> str:
        return self.topology.get("domain", "")

    def stores(self, site: Optional[str] = None) -> list[dict]:
        return [s for s in self.topology.get("stores", []) or []
                if site is None or s.get("site") == site]

    def pools(self, role: Optional[str] = None) -> list[dict]:
        return [p for p in self.topology.get("pools", []) or []
                if role is None or p.get("role") == role]

    def servers(self, role: Optional[str] = None, site: Optional[str] = None) -> list[dict]:
        """Every server (dict with fqdn, address, site, role, pool), optionally filtered."""
        out = []
        for p in self.pools(role):
            for s in p.get("servers", []) or []:
                s = dict(s)
                s.setdefault("site", p.get("site"))
                s["role"], s["pool"] = p.get("role"), p.get("fqdn")
                if site is None or s["site"] == site:
                    out.append(s)
        return out

    def address(self, name: str) -> str:
        """The address of a server FQDN or a store name (KeyError naming it when unknown)."""
        for s in self.stores():
            if s.get("name") == name:
                return s["address"]
        for s in self.servers():
            if s.get("fqdn") == name:
                return s["address"]
        raise KeyError(f"`{name}` is neither a store nor a server of {self.topology_path}")

    def user(self, name: str) -> dict:
        for u in self.topology.get("users", []) or []:
            if u.get("name") == name:
                return u
        raise KeyError(f"user `{name}` is not in {self.topology_path}")

    def jid(self, user: str) -> str:
        return f"{user}@{self.domain}"

    # ---- secrets -----------------------------------------------------------------------------
    def token(self) -> str:
        return (self.state_dir / "secret" / "token").read_text().strip()

    def ca_file(self) -> str:
        return str(self.state_dir / "pki" / "ca.pem")

    def cert_files(self, name: str) -> tuple[str, str]:
        """(cert, key) issued by deploy for a server FQDN or store name."""
        return (str(self.state_dir / "pki" / f"{name}.pem"),
                str(self.state_dir / "pki" / f"{name}.key"))

    # ---- tandemctl -----------------------------------------------------------------------------
    def ctl(self, *args: str, check: bool = True, json: bool = False, timeout: float = 120,
            input: Optional[str] = None):
        """Runs `tandemctl --state-dir <dir> ARGS` (plus `--json` when json=True).

        Returns the CompletedProcess, or the parsed JSON document when json=True. With
        check=True a non-zero exit raises DeploymentError carrying the command, stdout and stderr.
        """
        argv = [str(self.tandemctl), "--state-dir", str(self.state_dir), *map(str, args)]
        if json:
            argv.append("--json")
        env = {**os.environ, **self.env}
        try:
            # stdin is never a terminal here, so destructive verbs need --yes, as in scripts.
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                                input=input or "")
        except subprocess.TimeoutExpired as e:
            raise DeploymentError(
                f"`{' '.join(argv[1:])}` did not finish within {timeout:g} s\n"
                f"--- stdout\n{e.stdout or ''}\n--- stderr\n{e.stderr or ''}") from None
        self._remember_pids()
        if check and cp.returncode != 0:
            raise DeploymentError(
                f"`{' '.join(argv[1:])}` exited {cp.returncode}\n"
                f"--- stdout\n{cp.stdout}\n--- stderr\n{cp.stderr}")
        if json:
            if cp.returncode != 0 and not cp.stdout.strip():
                return cp
            try:
                return jsonlib.loads(cp.stdout)
            except ValueError as e:
                raise DeploymentError(
                    f"`{' '.join(argv[1:])}` printed no JSON document ({e})\n"
                    f"--- stdout\n{cp.stdout}\n--- stderr\n{cp.stderr}") from None
        return cp

    def status(self) -> list[dict]:
        """`deploy status --json` processes (name, kind, site, role, address, pid, health, state)."""
        doc = self.ctl("deploy", "status", json=True, check=False)
        if isinstance(doc, subprocess.CompletedProcess):
            raise DeploymentError(f"deploy status exited {doc.returncode}: {doc.stderr}")
        return doc.get("processes", []) if isinstance(doc, dict) else doc

    def process(self, name: str) -> dict:
        for p in self.status():
            if p.get("name") == name:
                return p
        raise KeyError(f"`{name}` is not a process of this deployment")

    def kill_site(self, site: str):
        return self.ctl("deploy", "kill-site", site)

    def revive_site(self, site: str, timeout: float = 180):
        return self.ctl("deploy", "revive-site", site, timeout=timeout)

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 30, what: str = "condition",
                   interval: float = 0.2) -> Any:
        return wait_until(predicate, timeout, what, interval)

    def wait_healthy(self, names: list[str], timeout: float = 60) -> None:
        """Waits until `deploy status` reports every named process healthy."""
        def ok():
            st = {p["name"]: p for p in self.status()}
            bad = {n: st.get(n, {}).get("state", "absent") for n in names
                   if not st.get(n, {}).get("healthy")}
            if bad:
                raise AssertionError(f"not healthy: {bad}")
            return True
        self.wait_until(ok, timeout, f"{', '.join(names)} healthy")

    # ---- admin API -----------------------------------------------------------------------------
    def admin(self, name: str, path: str, method: str = "GET", body: Any = None,
              timeout: float = 10, port: int = 8443) -> Any:
        """Calls the admin API of a server FQDN or store name (HTTPS, deployment CA, token).

        Returns the parsed JSON (or text for non-JSON bodies). HTTP errors raise
        urllib.error.HTTPError whose .read() is the error document.
        """
        ctx = ssl.create_default_context(cafile=self.ca_file())
        data = None if body is None else jsonlib.dumps(body).encode()
        req = urllib.request.Request(
            f"https://{self.address(name)}:{port}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token()}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            raw = resp.read().decode()
            if resp.headers.get_content_type() == "application/json":
                return jsonlib.loads(raw) if raw else None
            return raw

    # ---- files -----------------------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        if any(s.get("name") == name for s in self.stores()):
            return self.state_dir / "stores" / name / "agent.log"
        return self.state_dir / "servers" / name / "server.log"

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.state_dir.glob("*/*/*.log")):
            try:
                tail = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {log.relative_to(self.state_dir)}\n" + "\n".join(tail))
        return "\n".join(out)

    def run_records(self) -> list[dict]:
        recs = []
        for f in sorted((self.state_dir / "run").glob("*.json")):
            try:
                recs.append(jsonlib.loads(f.read_text()))
            except (OSError, ValueError):
                pass
        return recs

    def _remember_pids(self) -> None:
        """Keeps every pid this deployment has started, so teardown finds them after --purge."""
        for r in self.run_records():
            if isinstance(r.get("pid"), int) and r["pid"] > 0:
                self._pids_seen.add(r["pid"])
        for pidfile in self.state_dir.glob("stores/*/pgdata/postmaster.pid"):
            try:
                self._pids_seen.add(int(pidfile.read_text().split("\n", 1)[0]))
            except (OSError, ValueError):
                pass


class DeploymentFactory:
    """Creates deployments and tears every one of them down on close()."""

    def __init__(self, label: str = "t"):
        self.label = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:40]
        self.deployments: list[Deployment] = []
        self.failed = False  # set by conftest when the test failed: log tails are printed

    def __call__(self, topology: Any, env: Optional[dict[str, str]] = None, up: bool = True,
                 up_args: tuple[str, ...] = (), timeout: float = 300) -> Deployment:
        """Deploys `topology` (a path relative to the repository or absolute, or a dict).

        up=False prepares the rewritten topology and state directory without `deploy up`
        (tests of deploy itself). Raises DeploymentError when `deploy up` fails, after printing
        the tails of the logs; teardown still runs.
        """
        binaries()
        if isinstance(topology, dict):
            text = yaml.safe_dump(topology, sort_keys=False)
            base = "inline"
        else:
            src = Path(topology)
            if not src.is_absolute():
                src = REPO / src
            text = src.read_text()
            base = src.stem
        n = test_net()
        # Short on purpose: PostgreSQL's Unix socket path (<dir>/stores/<store>/run/.s.PGSQL.5432)
        # must stay under 108 bytes, so the test name goes into the topology copy, not the path.
        state = Path(tempfile.mkdtemp(prefix=f"tandem{n}-", dir=STATE_ROOT))
        os.chmod(state, 0o755)
        topo_path = Path(str(state) + ".yaml")
        topo_path.write_text(f"# {self.label}: {base}\n" + rewrite_topology_text(text, n))
        d = Deployment(state, topo_path, env or {})
        self.deployments.append(d)
        if up:
            cp = d.ctl("deploy", "up", str(topo_path), "--yes", *up_args, check=False,
                       timeout=timeout)
            if cp.returncode != 0:
                raise DeploymentError(
                    f"`tandemctl deploy up {topo_path}` exited {cp.returncode}\n"
                    f"--- stdout\n{cp.stdout}\n--- stderr\n{cp.stderr}\n{d.log_tails()}")
        return d

    def close(self) -> None:
        errors = []
        for d in reversed(self.deployments):
            try:
                teardown(d, print_logs=self.failed)
            except Exception as e:  # noqa: BLE001 - tear down the others anyway
                errors.append(f"{d.state_dir}: {e}")
        self.deployments.clear()
        if errors:
            raise AssertionError("teardown left something behind: " + "; ".join(errors))


def _processes_naming(text: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid() and text in _cmdline(int(p.name)):
            pids.append(int(p.name))
    return pids


def teardown(d: Deployment, print_logs: bool = False) -> None:
    """deploy down --purge, then SIGKILL whatever it started that survived, then rm the dir."""
    d._remember_pids()
    if print_logs:
        print(f"\n=== logs of {d.state_dir}\n{d.log_tails(30)}")
    keep = os.environ.get("TANDEM_KEEP_STATE") == "1"
    if (d.state_dir / "run").exists() or (d.state_dir / "secret").exists():
        args = ("deploy", "down", "--yes") if keep else ("deploy", "down", "--purge", "--yes")
        try:
            cp = d.ctl(*args, check=False, timeout=120)
            if cp.returncode != 0:
                print(f"teardown: `deploy down` exited {cp.returncode}: {cp.stderr.strip()}")
        except DeploymentError as e:
            print(f"teardown: {e}")
    # Whatever is still alive: pids recorded by deploy, postmasters, anything naming the dir.
    # A recorded pid is only killed while its command line still looks like ours (pids recycle).
    candidates = {p for p in d._pids_seen
                  if any(w in _cmdline(p) for w in ("tandemd", "postgres", "pgbackrest"))}
    candidates |= set(_processes_naming(str(d.state_dir)))
    for pid in candidates:
        if pid_alive(pid):
            print(f"teardown: killing leftover pid {pid}: {_cmdline(pid)[:160]}")
            _kill(pid)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in candidates) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not keep:
        shutil.rmtree(d.state_dir, ignore_errors=True)
        try:
            d.topology_path.unlink()
        except OSError:
            pass
    left = [p for p in candidates if pid_alive(p)]
    if left:
        raise AssertionError(f"processes {left} survived SIGKILL")


def copy_topology(d: Deployment) -> dict:
    """A deep copy of the deployment's (rewritten) topology, to derive variants in tests."""
    return copy.deepcopy(d.topology)
