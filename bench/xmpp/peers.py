"""Private instances of the peer servers (Prosody, ejabberd) and their PostgreSQL, for bench/xmpp.

Everything lives under one directory in /var/tmp (traversable by the `postgres`, `prosody` and
`ejabberd` users), listens on 127.<net>.9.x only, and runs as its own user:
  PostgreSQL 15  127.<net>.9.10:5432  throwaway cluster (user postgres), databases prosody, ejabberd
  Prosody        127.<net>.9.1:5222   storage = "sql" (PostgreSQL), mod_muc_mam, no mod_limits
  ejabberd       127.<net>.9.2:5222   default_db: sql (pg.sql schema), mod_mam, shaper none
Both: TLS required (STARTTLS), SCRAM-SHA-256 stored credentials, in-band registration open (the
benchmark registers its users), MUC rooms persistent with history archived (MAM) in PostgreSQL.
`Peers.close()` stops all of it (ejabberdctl stop, SIGTERM/SIGKILL by pid, pg_ctl stop).
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DOMAIN = "example.test"


def sh(argv, user=None, check=True, **kw):
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv]
    cp = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and cp.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited {cp.returncode}: {cp.stdout[-800:]} {cp.stderr[-800:]}")
    return cp


def wait_port(host, port, timeout=60):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


PROSODY_CFG = """
pidfile = "{dir}/prosody/prosody.pid"
data_path = "{dir}/prosody/data"
log = {{ warn = "{dir}/prosody/prosody.log" }}
network_backend = "epoll"
interfaces = {{ "{addr}" }}
c2s_ports = {{ 5222 }}
c2s_direct_tls_ports = {{ }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "register" }}
modules_disabled = {{ "s2s", "limits", "offline", "c2s_bidi" }}
allow_registration = true
min_seconds_between_registrations = 0
registration_throttle_max = 1000000
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
password_hash = "SHA-256"
storage = "sql"
sql = {{ driver = "PostgreSQL", database = "prosody", username = "prosody", password = "bench",
        host = "{pg}", port = 5432 }}
ssl = {{ key = "{dir}/pki/peer.key", certificate = "{dir}/pki/peer.pem" }}
tls_profile = "modern"
VirtualHost "{domain}"
Component "conference.{domain}" "muc"
  modules_enabled = {{ "muc_mam" }}
  muc_room_locking = false
  muc_room_default_persistent = true
  muc_room_default_public = true
  muc_log_by_default = true
  muc_log_all_rooms = true
  muc_room_default_history_length = 20
"""

EJABBERD_CFG = """
hosts: ["{domain}"]
loglevel: warning
certfiles: ["{dir}/pki/peer.bundle"]
listen:
  - port: 5222
    ip: "{addr}"
    module: ejabberd_c2s
    starttls_required: true
    protocol_options: ["no_sslv3", "no_tlsv1", "no_tlsv1_1", "no_tlsv1_2"]
    shaper: none
    max_stanza_size: 262144
    backlog: 4096
sql_type: pgsql
sql_server: "{pg}"
sql_port: 5432
sql_database: ejabberd
sql_username: ejabberd
sql_password: bench
sql_pool_size: 10
new_sql_schema: false
default_db: sql
auth_method: sql
registration_timeout: infinity
auth_password_format: scram
auth_scram_hash: sha256
shaper:
  normal: 1000000000
  fast: 1000000000
shaper_rules:
  max_user_sessions: 100000
  max_user_offline_messages: 5000
  c2s_shaper: none
  s2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  register:
    allow: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_register:
    access: register
    ip_access: all
  mod_mam:
    db_type: sql
    default: always
  mod_muc:
    host: "conference.{domain}"
    db_type: sql
    access: all
    access_create: all
    access_persistent: all
    max_users: 10000
    max_user_conferences: 100000
    default_room_options:
      max_users: 10000   # the room's own limit; ejabberd's default is 200
      persistent: true
      public: true
      mam: true
      logging: false
"""


class Peers:
    def __init__(self, net: int, root: Path):
        self.net, self.dir = net, Path(root)
        self.pg = f"127.{net}.9.10"
        self.addr = {"prosody": f"127.{net}.9.1", "ejabberd": f"127.{net}.9.2"}
        self.procs: dict[str, subprocess.Popen] = {}
        self.node = f"ejabberd{net}@localhost"

    # ---- PostgreSQL -------------------------------------------------------------------------
    def start_pg(self):
        d = self.dir / "pg"
        d.mkdir(mode=0o700)
        shutil.chown(d, "postgres", "postgres")
        sh([str(PG_BIN / "initdb"), "-D", str(d), "-A", "trust", "-U", "postgres", "-E", "UTF8"],
           user="postgres")
        with open(d / "postgresql.conf", "a") as f:
            # The same durability settings Tandem's stores use (fsync on, synchronous_commit on).
            f.write(f"listen_addresses = '{self.pg}'\nport = 5432\nunix_socket_directories = '{d}'\n"
                    "max_connections = 200\nshared_buffers = 256MB\n")
        sh([str(PG_BIN / "pg_ctl"), "-D", str(d), "-l", str(d / "log"), "-w", "start"], user="postgres")
        psql = ["/usr/bin/psql", "-h", self.pg, "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        for db in ("prosody", "ejabberd"):
            sh(psql + ["-c", f"CREATE ROLE {db} LOGIN PASSWORD 'bench'"])
            sh(psql + ["-c", f"CREATE DATABASE {db} OWNER {db}"])
        sh(["/usr/bin/psql", "-h", self.pg, "-U", "ejabberd", "-d", "ejabberd", "-q", "-v",
            "ON_ERROR_STOP=1", "-f", "/usr/share/ejabberd/sql/pg.sql"])

    def postmaster_pid(self) -> int:
        return int((self.dir / "pg" / "postmaster.pid").read_text().split()[0])

    def sql(self, db, query) -> str:
        return sh(["/usr/bin/psql", "-h", self.pg, "-U", "postgres", "-d", db, "-tAc", query]).stdout.strip()

    # ---- certificates -----------------------------------------------------------------------
    def make_pki(self, key_type: str):
        pki = self.dir / "pki"
        pki.mkdir(parents=True)
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key_type == "ec" \
            else ["-newkey", "rsa:2048"]
        sh(["openssl", "req", "-x509", "-nodes", *newkey, "-days", "30", "-subj", f"/CN={DOMAIN}",
            "-addext", f"subjectAltName=DNS:{DOMAIN},DNS:conference.{DOMAIN}",
            "-keyout", str(pki / "peer.key"), "-out", str(pki / "peer.pem")])
        (pki / "peer.bundle").write_text((pki / "peer.pem").read_text() + (pki / "peer.key").read_text())
        for f in pki.iterdir():
            f.chmod(0o644)

    # ---- Prosody ----------------------------------------------------------------------------
    def start_prosody(self):
        d = self.dir / "prosody"
        (d / "data").mkdir(parents=True)
        cfg = d / "prosody.cfg.lua"
        cfg.write_text(PROSODY_CFG.format(dir=self.dir, addr=self.addr["prosody"], pg=self.pg, domain=DOMAIN))
        shutil.chown(d, "prosody", "prosody")
        shutil.chown(d / "data", "prosody", "prosody")
        log = open(d / "stdout.log", "w")
        self.procs["prosody"] = subprocess.Popen(
            ["setpriv", "--reuid=prosody", "--regid=prosody", "--init-groups", "prosody",
             "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.addr["prosody"], 5222)

    # ---- ejabberd ---------------------------------------------------------------------------
    def _ejctl(self, *args, check=True, timeout=120):
        d = self.dir / "ejabberd"
        # As the ejabberd user directly: ejabberdctl run by root goes through su, which leaves
        # beam.smp a soft limit of 1024 descriptors (setpriv keeps ours).
        return sh(["setpriv", "--reuid=ejabberd", "--regid=ejabberd", "--init-groups",
                   "env", "HOME=/var/lib/ejabberd", "ejabberdctl", "--config", str(d / "ejabberd.yml"), "--ctl-config",
                   str(d / "ejabberdctl.cfg"), "--logs", str(d / "logs"), "--spool", str(d / "spool"),
                   "--node", self.node, *args], check=check, timeout=timeout)

    def start_ejabberd(self):
        d = self.dir / "ejabberd"
        for sub in ("logs", "spool"):
            (d / sub).mkdir(parents=True)
            shutil.chown(d / sub, "ejabberd", "ejabberd")
        (d / "ejabberd.yml").write_text(
            EJABBERD_CFG.format(dir=self.dir, addr=self.addr["ejabberd"], pg=self.pg, domain=DOMAIN))
        (d / "ejabberdctl.cfg").write_text("POLL=true\nERL_MAX_PORTS=65536\nERL_PROCESSES=1000000\n")
        shutil.chown(d, "ejabberd", "ejabberd")
        self._ejctl("start")
        deadline = time.monotonic() + 120
        while True:
            err = d / "logs" / "error.log"
            if err.exists() and "critical" in err.read_text():
                raise RuntimeError(f"ejabberd did not start: {err.read_text()[-600:]}")
            try:
                wait_port(self.addr["ejabberd"], 5222, 2)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise

    @staticmethod
    def _epmd_pids() -> set:
        out = subprocess.run(["pgrep", "-x", "epmd"], capture_output=True, text=True).stdout.split()
        return {int(p) for p in out}

    def ejabberd_pid(self) -> int:
        out = subprocess.run(["pgrep", "-u", "ejabberd", "-f", f"beam.*{self.node}"],
                             capture_output=True, text=True).stdout.split()
        if not out:
            raise RuntimeError("ejabberd's beam.smp is not running")
        return int(out[0])

    def prosody_pid(self) -> int:
        return self.procs["prosody"].pid

    def start(self, key_type="ec"):
        self.epmd_before = self._epmd_pids()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.dir.chmod(0o755)
        self.make_pki(key_type)
        self.start_pg()
        self.start_prosody()
        self.start_ejabberd()

    def close(self):
        d = self.dir / "ejabberd"
        if (d / "ejabberd.yml").exists():
            try:
                self._ejctl("stop", check=False, timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:
                pid = self.ejabberd_pid()
                os.kill(pid, signal.SIGKILL)
            except (RuntimeError, ProcessLookupError):
                pass
        # ejabberd starts the Erlang port mapper daemon: stop the one it started (by pid).
        for pid in self._epmd_pids() - getattr(self, "epmd_before", self._epmd_pids()):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        p = self.procs.get("prosody")
        if p and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if (self.dir / "pg" / "postmaster.pid").exists():
            sh([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "pg"), "-m", "immediate", "stop"],
               user="postgres", check=False)
