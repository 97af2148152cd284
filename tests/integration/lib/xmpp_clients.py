"""Real XMPP clients for integration tests and benchmarks, plus a hand-started front-end lab.

Clients (asyncio; every wait is bounded):

    c = await slix_connect("alice@example.test", "alice-pw", address, ca_file)   # slixmpp
    await c.send_chat("bob@example.test", "hi"); m = await c.next_message(5)
    a = await aio_connect("bob@example.test", "bob-pw", address, ca_file)       # aioxmpp

Both connect to the given address only (slixmpp's DNS lookups are switched off: see
/work/shared/notes/xmpp-testing.md) and verify the server against the deployment CA.

`FrontendLab` starts PostgreSQL stores and `tandemd --role frontend` servers by hand, for the
front-end tests (tests/integration/test_frontend*.py) and bench/frontend*: a state dir under
/var/tmp, token, CA and certificates (openssl CLI), addresses on 127.$TANDEM_TEST_NET.X.Y, and it
always kills what it started on close().
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from lib import deployment
from lib.deployment import build_dir  # noqa: F401 - part of this module's interface

REPO = Path(__file__).resolve().parents[3]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DOMAIN = "example.test"


def test_net() -> int:
    return int(os.environ.get("TANDEM_TEST_NET", "14"))


def addr(x: int, y: int) -> str:
    return f"127.{test_net()}.{x}.{y}"


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """lib.deployment.wait_until, polling every 0.1 s by default."""
    return deployment.wait_until(pred, timeout, what, interval)


# ---------------------------------------------------------------------------------------------
# slixmpp

import slixmpp  # noqa: E402
from slixmpp.xmlstream import ET  # noqa: E402


def _fast_pbkdf2() -> None:
    """slixmpp's SCRAM uses a pure-Python PBKDF2 (~10 ms a login); use hashlib's instead."""
    try:
        from slixmpp.util.sasl import mechanisms
    except ImportError:
        return

    def hi(hashname, text, salt, iterations):
        return hashlib.pbkdf2_hmac(hashname, text, salt, iterations)

    scram = getattr(mechanisms, "SCRAM", None)
    if scram is not None and hasattr(scram, "Hi"):
        scram.Hi = lambda self, text, salt, iterations: hi(self.hash_name, text, salt, iterations)


class SlixClient(slixmpp.ClientXMPP):
    """slixmpp with the DNS trap fixed, the deployment CA, and queues of what arrives."""

    def __init__(self, jid: str, password: str, ca_file: Optional[str], mechanism: Optional[str] = None,
                 plugins: tuple[str, ...] = ("xep_0030", "xep_0199", "xep_0198", "xep_0280",
                                              "xep_0191")):
        kwargs = {"sasl_mech": mechanism} if mechanism else {}
        super().__init__(jid, password, **kwargs)
        if ca_file:
            self.ca_certs = ca_file
        for p in plugins:
            self.register_plugin(p)
        if "xep_0198" in plugins:
            self["xep_0198"].allow_resume = True
        self.messages: asyncio.Queue = asyncio.Queue()
        self.presences: asyncio.Queue = asyncio.Queue()
        self.subscriptions: asyncio.Queue = asyncio.Queue()
        self.carbons: asyncio.Queue = asyncio.Queue()
        self.stream_errors: asyncio.Queue = asyncio.Queue()
        self.started = asyncio.Event()
        self.resumed = asyncio.Event()
        self.failed = asyncio.Event()
        self.ended = asyncio.Event()
        self.redirects: list[str] = []
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("session_resumed", lambda *_: self.resumed.set())
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.add_event_handler("presence_available", lambda p: self.presences.put_nowait(p))
        self.add_event_handler("presence_unavailable", lambda p: self.presences.put_nowait(p))
        self.add_event_handler("presence_subscribe", lambda p: self.subscriptions.put_nowait(p))
        self.add_event_handler("presence_subscribed", lambda p: self.subscriptions.put_nowait(p))
        self.add_event_handler("carbon_received", lambda m: self.carbons.put_nowait(("received", m)))
        self.add_event_handler("carbon_sent", lambda m: self.carbons.put_nowait(("sent", m)))
        self.add_event_handler("failed_auth", lambda *_: self.failed.set())
        self.add_event_handler("stream_error", self._on_stream_error)
        self.add_event_handler("disconnected", lambda *_: self.ended.set())

    async def _pick_dns_answer(self, domain, port=None):  # noqa: D401 - slixmpp hook
        return None  # connect straight to self.address (xmpp-testing.md: DNS trap)

    def connect(self, address=None, *args, **kwargs):
        # slixmpp 1.8.3's see-other-host handler stores the new host in self.address, then its
        # reconnect() calls connect() without an address, which resets it to the JID's domain
        # (a DNS lookup): keep whatever address we were pinned to or redirected to.
        if address is None and getattr(self, "address", None) and self.address[0] != self.boundjid.host:
            address = self.address
        return super().connect(address, *args, **kwargs)

    def _on_stream_error(self, err):
        self.stream_errors.put_nowait(err)
        if err["condition"] == "see-other-host":
            self.redirects.append(err["see_other_host"])

    async def _on_start(self, _event):
        self.started.set()

    async def next_message(self, timeout: float = 5, body: bool = True):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.boundjid}: no message within {timeout} s")
            try:
                m = await asyncio.wait_for(self.messages.get(), left)
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.boundjid}: no message within {timeout} s") from None
            if not body or m["body"]:
                return m

    async def next_from(self, queue: asyncio.Queue, timeout: float = 5, what: str = "event",
                        pred: Callable[[Any], bool] = lambda _: True):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.boundjid}: no {what} within {timeout} s")
            try:
                item = await asyncio.wait_for(queue.get(), left)
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.boundjid}: no {what} within {timeout} s") from None
            if pred(item):
                return item

    def send_chat(self, to: str, body: str, mtype: str = "chat") -> None:
        self.send_message(mto=to, mbody=body, mtype=mtype)

    async def roster_get(self, timeout: float = 5):
        await asyncio.wait_for(self.get_roster(), timeout)
        return self.client_roster

    async def close(self, timeout: float = 5) -> None:
        if self.ended.is_set():
            return
        self.disconnect()
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
        except asyncio.TimeoutError:
            self.abort()


async def slix_connect(jid: str, password: str, address: str, ca_file: Optional[str],
                       port: int = 5222, mechanism: Optional[str] = None, direct_tls: bool = False,
                       timeout: float = 10, presence: bool = True, roster: bool = True,
                       expect_failure: bool = False, **kw) -> SlixClient:
    _fast_pbkdf2()
    c = SlixClient(jid, password, ca_file, mechanism, **kw)
    c.connect(address=(address, port), use_ssl=direct_tls, force_starttls=not direct_tls)
    done, _ = await asyncio.wait(
        [asyncio.ensure_future(c.started.wait()), asyncio.ensure_future(c.failed.wait())],
        timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if expect_failure:
        return c
    if not c.started.is_set():
        c.abort()
        raise AssertionError(f"{jid} did not sign in at {address}:{port} within {timeout} s"
                             f" (auth failed: {c.failed.is_set()})")
    if roster:
        await c.roster_get(timeout)
    if presence:
        c.send_presence()
    return c


# ---------------------------------------------------------------------------------------------
# aioxmpp

def _aio():
    import aioxmpp  # noqa: F401 - imported lazily: it is slow to import
    import aioxmpp.connector
    import aioxmpp.security_layer
    import OpenSSL.SSL
    return aioxmpp, OpenSSL.SSL


class AioClient:
    """An aioxmpp PresenceManagedClient pinned to one address, trusting the deployment CA."""

    def __init__(self, jid: str, password: str, address: str, ca_file: str, port: int = 5222):
        aioxmpp, SSL = _aio()
        self.aioxmpp = aioxmpp

        def ctx_factory():
            ctx = SSL.Context(SSL.SSLv23_METHOD)
            ctx.set_options(SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3)
            ctx.load_verify_locations(ca_file)
            ctx.set_verify(SSL.VERIFY_PEER, aioxmpp.security_layer.default_verify_callback)
            return ctx

        security = aioxmpp.make_security_layer(password, ssl_context_factory=ctx_factory)
        self.jid = aioxmpp.JID.fromstr(jid)
        self.client = aioxmpp.PresenceManagedClient(
            self.jid, security,
            override_peer=[(address, port, aioxmpp.connector.STARTTLSConnector())],
            logger=logging.getLogger(f"aioxmpp.{jid}"))
        self.client.resumption_timeout = 60
        self.messages: asyncio.Queue = asyncio.Queue()
        self.client.stream.register_message_callback(
            aioxmpp.MessageType.CHAT, None, lambda m: self.messages.put_nowait(m))
        self.client.stream.register_message_callback(
            aioxmpp.MessageType.NORMAL, None, lambda m: self.messages.put_nowait(m))
        self.established = asyncio.Event()
        self.client.on_stream_established.connect(lambda: self.established.set())

    async def start(self, timeout: float = 10) -> "AioClient":
        self.client.presence = self.aioxmpp.PresenceState(True)
        try:
            await asyncio.wait_for(self.established.wait(), timeout)
        except asyncio.TimeoutError:
            self.client.stop()
            raise AssertionError(f"aioxmpp {self.jid} did not sign in within {timeout} s") from None
        return self

    async def send_chat(self, to: str, body: str) -> None:
        aioxmpp = self.aioxmpp
        msg = aioxmpp.Message(to=aioxmpp.JID.fromstr(to), type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = body
        await self.client.send(msg)

    async def next_message(self, timeout: float = 5):
        try:
            while True:
                m = await asyncio.wait_for(self.messages.get(), timeout)
                if m.body:
                    return m
        except asyncio.TimeoutError:
            raise AssertionError(f"aioxmpp {self.jid}: no message within {timeout} s") from None

    async def close(self, timeout: float = 5) -> None:
        stopped = asyncio.Event()
        self.client.on_stopped.connect(lambda: stopped.set())
        self.client.on_failure.connect(lambda _e: stopped.set())
        if not self.client.running:
            return
        self.client.stop()
        try:
            await asyncio.wait_for(stopped.wait(), timeout)
        except asyncio.TimeoutError:
            pass


async def aio_connect(jid: str, password: str, address: str, ca_file: str, port: int = 5222,
                      timeout: float = 10) -> AioClient:
    return await AioClient(jid, password, address, ca_file, port).start(timeout)


# ---------------------------------------------------------------------------------------------
# Raw sockets (hostile input)

def raw_tls_session(address: str, ca_file: str, port: int = 5223, timeout: float = 5) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = False
    s = socket.create_connection((address, port), timeout=timeout)
    return ctx.wrap_socket(s, server_hostname=DOMAIN)


def read_until_closed(sock, timeout: float = 5, limit: int = 1 << 20,
                      until: tuple[bytes, ...] = ()) -> bytes:
    """Reads until the peer closes, `timeout` passes, `limit` bytes arrived, or (when given)
    any of `until` appears."""
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while (time.monotonic() < deadline and len(out) < limit
           and not any(n in out for n in until)):
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionError):
            break
        if not chunk:
            break
        out += chunk
    return out


# ---------------------------------------------------------------------------------------------
# A hand-started front-end lab: PostgreSQL stores + tandemd front ends.

class FrontendLab:
    """pools: {"pool1.example.test": {"store": "sql1", "site": "Site1", "servers": {"fe1a...": "127.N.1.1"}}}"""

    def __init__(self, label: str, pools: dict, users: list[dict], stores: dict[str, str],
                 chat: Optional[dict] = None):
        self.dir = Path(f"/var/tmp/tandem-h4-{label}-{os.getpid()}")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(mode=0o755, parents=True)
        os.chmod(self.dir, 0o755)
        self.pools = pools
        self.stores = stores  # name -> address
        self.users = users
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_started: list[str] = []
        sites = sorted({p["site"] for p in pools.values()})
        topo: dict = {
            "domain": DOMAIN,
            "sites": [{"name": s} for s in sites],
            "stores": [{"name": n, "site": self._store_site(n), "address": a} for n, a in stores.items()],
            "pools": [],
            "users": users,
        }
        pool_names = list(pools)
        for i, (fqdn, p) in enumerate(pools.items()):
            entry = {"fqdn": fqdn, "role": "frontend", "site": p["site"], "store": p["store"],
                     "servers": [{"fqdn": s, "address": a} for s, a in p["servers"].items()]}
            if i == 0:
                entry["cms"] = True
            if len(pool_names) == 2:
                entry["backup_pool"] = pool_names[1 - i]
            topo["pools"].append(entry)
        if chat:
            topo["pools"].append(chat)
        self.topology_doc = topo
        self.topology = self.dir / "topology.yaml"
        self.topology.write_text(yaml.safe_dump(topo, sort_keys=False))
        (self.dir / "secret").mkdir(mode=0o700)
        self.token = os.urandom(32).hex()
        (self.dir / "secret" / "token").write_text(self.token + "\n")
        self.ca_file = str(self.dir / "pki" / "ca.pem")
        self._make_pki()

    def _store_site(self, store: str) -> str:
        for p in self.pools.values():
            if p["store"] == store:
                return p["site"]
        return next(iter(self.pools.values()))["site"]

    def servers(self) -> dict[str, str]:
        out = {}
        for p in self.pools.values():
            out.update(p["servers"])
        return out

    def pool_of_server(self, fqdn: str) -> str:
        for name, p in self.pools.items():
            if fqdn in p["servers"]:
                return name
        raise KeyError(fqdn)

    def _make_pki(self) -> None:
        pki = self.dir / "pki"
        pki.mkdir()
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=pki)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=test CA")
        for n, a in self.servers().items():
            ext = pki / f"{n}.ext"
            ext.write_text(f"subjectAltName=DNS:{n},DNS:{DOMAIN},IP:{a}\n"
                           "extendedKeyUsage=serverAuth,clientAuth\n")
            run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{n}.key", "-out", f"{n}.csr", "-subj", f"/CN={n}")
            run("openssl", "x509", "-req", "-in", f"{n}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{n}.pem", "-days", "30", "-extfile", str(ext))

    # ---- PostgreSQL ----------------------------------------------------------------------------
    def start_store(self, name: str) -> None:
        address = self.stores[name]
        d = self.dir / "stores" / name
        d.mkdir(parents=True, mode=0o755)
        shutil.chown(d, "postgres", "postgres")
        data = d / "pgdata"
        pg = lambda *a: subprocess.run(["runuser", "-u", "postgres", "--", *a], check=True,  # noqa: E731
                                       capture_output=True, text=True)
        pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=peer",
           "--auth-host=scram-sha-256", "-E", "UTF8")
        with open(data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '{address}'\nport = 5432\nunix_socket_directories = '{d}'\n"
                    "fsync = on\nsynchronous_commit = on\nmax_connections = 200\n")
        with open(data / "pg_hba.conf", "a") as f:
            f.write("host all tandem 127.0.0.0/8 scram-sha-256\n")
        pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(d / "postgres.log"), "-w", "-t", "60",
           "start")
        self.pg_started.append(name)
        pg(str(PG_BIN / "psql"), "-h", str(d), "-U", "postgres", "-d", "postgres", "-c",
           f"CREATE ROLE tandem SUPERUSER LOGIN PASSWORD '{self.token}'")

    # ---- front ends --------------------------------------------------------------------------
    def tandemd(self) -> str:
        b = build_dir() / "bin" / "tandemd"
        assert os.access(b, os.X_OK), f"no tandemd in {build_dir()}/bin (set TANDEM_BUILD_DIR)"
        return str(b)

    def start_server(self, fqdn: str, wait: bool = True) -> None:
        logdir = self.dir / "servers" / fqdn
        logdir.mkdir(parents=True, exist_ok=True)
        log = open(logdir / "server.log", "ab")
        # TANDEM_GDB=<fqdn>: run that server under gdb and log a backtrace if it crashes.
        gdb = ["gdb", "-batch", "-ex", "run", "-ex", "thread apply all bt 25", "--args"] \
            if os.environ.get("TANDEM_GDB") == fqdn else []
        self.procs[fqdn] = subprocess.Popen(
            [*gdb, self.tandemd(), "--role", "frontend", "--topology", str(self.topology), "--state-dir",
             str(self.dir), "--server", fqdn, "--log-level", os.environ.get("TANDEM_LOG", "info")],
            stdout=log, stderr=log, start_new_session=True)
        if wait:
            self.wait_serving(fqdn)

    def wait_serving(self, fqdn: str, timeout: float = 60) -> None:
        def up():
            p = self.procs[fqdn]
            if p.poll() is not None:
                raise AssertionError(f"{fqdn} exited {p.returncode}:\n{self.log_tail(fqdn)}")
            return self.admin(fqdn, "/health").get("ok")
        wait_until(up, timeout, f"{fqdn} to serve")

    def kill9(self, fqdn: str) -> None:
        p = self.procs.get(fqdn)
        if p and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()

    def admin(self, fqdn: str, path: str, timeout: float = 5) -> Any:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        req = urllib.request.Request(f"https://{self.servers()[fqdn]}:8443{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            body = r.read().decode()
        return body if path == "/metrics" else json.loads(body)

    def log_tail(self, fqdn: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "servers" / fqdn / "server.log").read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        ctl = build_dir() / "bin" / "tandemctl"
        r = subprocess.run([str(ctl), "--state-dir", str(self.dir), *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"tandemctl {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def close(self) -> None:
        for fqdn in list(self.procs):
            self.kill9(fqdn)
        for name in self.pg_started:
            data = self.dir / "stores" / name / "pgdata"
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(data),
                            "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True)
        if not os.environ.get("TANDEM_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def owner_of(servers: list[str], key: str) -> str:
    """The ring owner as src/common/hash_ring.cc computes it (64 points per member), for tests
    that must know an owner up front."""
    if not servers:
        return ""
    points = []
    for m in sorted(servers):
        for i in range(64):
            points.append((_fnv1a(f"{m}#{i}"), m))
    points.sort()
    h = _fnv1a(key)
    for p, m in points:
        if p >= h:
            return m
    return points[0][1]


def _fnv1a(data: str) -> int:
    """HashRing::stableHash: FNV-1a 64 then the splitmix64 finaliser."""
    m = 0xFFFFFFFFFFFFFFFF
    h = 1469598103934665603  # as written in hash_ring.cc (not the textbook FNV offset)
    for b in data.encode():
        h ^= b
        h = (h * 0x100000001b3) & m
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & m
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & m
    h ^= h >> 31
    return h
