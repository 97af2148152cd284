"""tandemctl deploy: a whole topology on this machine, its lifecycle and its outage drills.

Roles that are not built yet are reported by `deploy` as "not-built", never faked: these tests
require the store agents to be healthy, and every other process to be healthy unless tandemd says
its role is not built (so they tighten by themselves as the front end, chat and edge roles land).
"""

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from lib.deployment import pid_alive, wait_until

QUICKSTART = "examples/quickstart.yaml"
TWO_SITE = "examples/two-site.yaml"


# ---- helpers ---------------------------------------------------------------------------------

def by_name(processes):
    return {p["name"]: p for p in processes}


def assert_deployment_healthy(d, processes=None, site=None):
    """Store agents healthy; every other process healthy unless its role is not built yet."""
    processes = processes if processes is not None else d.status()
    assert processes, "deploy status listed no process"
    for p in processes:
        if site and p["site"] != site:
            continue
        if p["role"] == "sqlagent":
            assert p["healthy"], f"store agent {p['name']} is {p['state']}: {p['detail']}"
        else:
            assert p["healthy"] or p["state"] == "not-built", \
                f"{p['role']} {p['name']} is {p['state']}: {p['detail']}"


def all_healthy(d, site=None):
    """wait_until predicate: every process (of `site`) healthy or not built."""
    def check():
        assert_deployment_healthy(d, site=site)
        return True
    return check


def postmaster_pid(d, store):
    f = d.state_dir / "stores" / store / "pgdata" / "postmaster.pid"
    try:
        pid = int(f.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def psql(d, store, sql):
    """Runs SQL on a store as role `tandem` (password: the deployment secret)."""
    env = {**os.environ, "PGPASSWORD": d.token(), "PGCONNECT_TIMEOUT": "5"}
    cp = subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         f"host={d.address(store)} port=5432 user=tandem dbname=postgres sslmode=prefer",
         "-c", sql], capture_output=True, text=True, env=env, timeout=30)
    assert cp.returncode == 0, f"psql on {store}: {cp.stderr.strip()}"
    return cp.stdout.strip()


def tandemd_processes_of(state_dir):
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "tandemd" in cmd and str(state_dir) in cmd:
            out.append(int(p.name))
    return out


# ---- quickstart lifecycle ----------------------------------------------------------------------

def test_quickstart_up_status_down_up_keeps_data_then_purge(deploy):
    d = deploy(QUICKSTART)

    # Every process of the topology is listed, with its record and a verdict.
    procs = by_name(d.status())
    assert {"sql1", "fe1a.example.test", "chat1a.example.test",
            "compliance-chat.example.test"} <= set(procs)
    assert procs["sql1"]["address"] == d.address("sql1")
    assert_deployment_healthy(d, list(procs.values()))
    rec = json.loads((d.state_dir / "run" / "sql1.json").read_text())
    assert {"name", "kind", "site", "role", "address", "pid", "argv", "log"} <= set(rec)
    assert rec["kind"] == "store" and rec["role"] == "sqlagent"
    assert "--store" in rec["argv"] and str(d.state_dir) in rec["argv"]

    # The state directory follows docs/architecture.md.
    token = d.ctl("deploy", "token").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert token == d.token()
    assert (d.state_dir / "secret" / "token").stat().st_mode & 0o777 == 0o600
    for name in ("ca", "sql1", "fe1a.example.test", "chat1a.example.test"):
        assert (d.state_dir / "pki" / f"{name}.pem").exists(), name
    assert (d.state_dir / "topology.yaml").read_text() == d.topology_path.read_text()

    # The store agent answers /health over TLS with the deployment CA and token.
    health = d.admin("sql1", "/health")
    assert health["ok"] is True

    # Something to find again after a restart.
    psql(d, "sql1", "CREATE TABLE IF NOT EXISTS deploy_marker (v text); "
                    "INSERT INTO deploy_marker VALUES ('kept')")

    # up again is idempotent: nothing new starts.
    again = d.ctl("deploy", "up", "--yes", json=True)
    assert again["started"] == 0 or again["started"] == len(again["not_built"]), again
    assert again["already_running"] >= 1

    # down: every process and every postmaster stops; the data stays.
    out = d.ctl("deploy", "down").stdout
    assert "stopped" in out
    assert tandemd_processes_of(d.state_dir) == []
    assert postmaster_pid(d, "sql1") is None
    assert all(not p["up"] for p in d.status())
    assert d.token() == token

    # up again, without naming the file: the deployed topology comes back with its data.
    d.ctl("deploy", "up", "--yes")
    wait_until(all_healthy(d), 60, "the quickstart healthy again after down/up")
    assert psql(d, "sql1", "SELECT v FROM deploy_marker") == "kept"
    assert d.token() == token

    # down --purge needs --yes without a terminal, and then removes everything.
    refused = d.ctl("deploy", "down", "--purge", check=False)
    assert refused.returncode == 3
    assert "--yes" in refused.stderr
    assert (d.state_dir / "secret" / "token").exists()
    d.ctl("deploy", "down", "--purge", "--yes")
    assert list(d.state_dir.iterdir()) == []
    assert tandemd_processes_of(d.state_dir) == []


def test_connect_info_names_front_ends_ca_and_a_demo_user(deploy):
    d = deploy(QUICKSTART)
    info = d.ctl("deploy", "connect-info", json=True)
    assert info["domain"] == "example.test"
    assert info["ca_file"] == d.ca_file()
    assert [f["address"] for f in info["frontends"]] == [d.address("fe1a.example.test")]
    assert info["frontends"][0]["port"] == 5222
    assert info["user"] == {"jid": "alice@example.test", "password": "alice-pw",
                            "pool": "pool1.example.test"}
    assert "alice@example.test" in info["example"]
    text = d.ctl("deploy", "connect-info").stdout
    assert d.address("fe1a.example.test") in text and "alice-pw" in text


# ---- two sites: a data-centre outage ----------------------------------------------------------

def test_two_site_kill_site_then_revive_site(deploy):
    d = deploy(TWO_SITE)
    before = by_name(d.status())
    assert_deployment_healthy(d, list(before.values()))
    site1 = [p for p in before.values() if p["site"] == "Site1"]
    site2 = [p for p in before.values() if p["site"] == "Site2"]
    site1_stores = [s["name"] for s in d.stores("Site1")]
    assert postmaster_pid(d, "sql1"), "the principal sql1 runs no PostgreSQL before the outage"

    # Unknown sites are refused with a sentence, and nothing is killed.
    bad = d.ctl("deploy", "kill-site", "Site9", check=False)
    assert bad.returncode == 2
    assert "Site9" in bad.stderr and "Site1" in bad.stderr
    bad = d.ctl("deploy", "revive-site", "Site9", check=False)
    assert bad.returncode == 2 and "Site9" in bad.stderr

    # The outage: every process of Site1 at once, PostgreSQL included.
    killed = d.ctl("deploy", "kill-site", "Site1", json=True)
    up_before = {p["name"] for p in site1 if p["up"]}
    assert set(killed["killed"]) == up_before
    after = by_name(d.status())
    for p in site1:
        assert not after[p["name"]]["up"], f"{p['name']} survived kill-site"
    for s in site1_stores:
        assert postmaster_pid(d, s) is None, f"the PostgreSQL of {s} survived kill-site"
    # Site2 does not notice (its store agents at least stay healthy).
    for p in site2:
        if p["role"] == "sqlagent":
            assert after[p["name"]]["healthy"], f"{p['name']}: {after[p['name']]['detail']}"

    # Revive: the site's processes come back and become healthy.
    d.revive_site("Site1")
    wait_until(all_healthy(d, site="Site1"), 90, "Site1 healthy after revive-site")
    revived = by_name(d.status())
    for p in site1:
        if p["up"]:
            assert revived[p["name"]]["pid"] != p["pid"], f"{p['name']} was not restarted"


# ---- bad inputs --------------------------------------------------------------------------------

def test_nothing_deployed_is_a_clear_error(deploy):
    d = deploy(QUICKSTART, up=False)
    for args in (("deploy", "status"), ("deploy", "down", "--yes"), ("deploy", "token"),
                 ("deploy", "kill-site", "Site1"), ("deploy", "revive-site", "Site1"),
                 ("deploy", "connect-info"), ("deploy", "up", "--yes")):
        cp = d.ctl(*args, check=False)
        assert cp.returncode != 0, args
        assert cp.stderr.startswith("error: "), (args, cp.stderr)
        assert "nothing is deployed" in cp.stderr or "no deployment" in cp.stderr, \
            (args, cp.stderr)


def test_invalid_topology_is_refused_before_anything_starts(deploy, tmp_path):
    d = deploy(QUICKSTART, up=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(d.topology_path.read_text().replace("site: Site1", "site: Nowhere", 1))
    cp = d.ctl("deploy", "up", str(bad), "--yes", check=False)
    assert cp.returncode == 2, cp.stderr
    assert "Nowhere" in cp.stderr and "topology validate" in cp.stderr
    assert not (d.state_dir / "run").exists() or not list((d.state_dir / "run").iterdir())
    missing = d.ctl("deploy", "up", str(tmp_path / "absent.yaml"), "--yes", check=False)
    assert missing.returncode != 0 and "absent.yaml" in missing.stderr


def test_a_taken_port_is_refused_naming_address_and_port(deploy):
    d = deploy(QUICKSTART, up=False)
    address = d.address("sql1")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, 8443))
        s.listen(1)
        cp = d.ctl("deploy", "up", str(d.topology_path), "--yes", check=False)
    assert cp.returncode == 3, cp.stderr
    assert f"{address}:8443" in cp.stderr and "sql1" in cp.stderr
    assert tandemd_processes_of(d.state_dir) == []


def test_a_different_topology_is_refused_while_one_runs(deploy, tmp_path):
    d = deploy(QUICKSTART)
    other = tmp_path / "other.yaml"
    other.write_text(d.topology_path.read_text().replace("- {name: bob", "- {name: carol", 1))
    cp = d.ctl("deploy", "up", str(other), "--yes", check=False)
    assert cp.returncode == 3, cp.stderr
    assert "deploy down" in cp.stderr
