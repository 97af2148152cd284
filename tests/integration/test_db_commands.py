"""`tandemctl db ...` against a real two-site deployment: mirror state, manual failover (what-if,
fence + promote + rejoin, and back), connections, log-shipping status, cmdlet aliases, refusals.

    TANDEM_TEST_NET=16 TANDEM_BUILD_DIR=build-h6 /usr/bin/python3 -m pytest tests/integration/test_db_commands.py
"""

import os
import subprocess

import pytest

TOPOLOGY = "examples/two-site.yaml"


@pytest.fixture(scope="module")
def d(deploy_module):
    # The db commands concern stores only: servers that fail to start do not matter here.
    dep = deploy_module(TOPOLOGY, up=False)
    dep.ctl("deploy", "up", str(dep.topology_path), "--yes", check=False, timeout=300)
    dep.wait_healthy(["sql1", "sql1m", "sql2", "sql2m", "pc1", "pc1m", "pcb", "pcbm"], timeout=120)
    dep.wait_until(lambda: _synchronized(dep, "sql2"), timeout=120, what="sql2 SYNCHRONIZED")
    return dep


def _members(d, store):
    doc = d.ctl("db", "mirror", "state", "--store", store, json=True)
    return {m["store"]: m for m in doc["members"]}


def _synchronized(d, store):
    m = _members(d, store)
    roles = sorted(x["role"] for x in m.values())
    return roles == ["Mirror", "Principal"] and all(
        x["status"] == "SYNCHRONIZED" for x in m.values())


def test_mirror_state_shows_both_members_with_role_status_and_partner(d):
    m = _members(d, "sql2")
    assert m["sql2"]["role"] == "Principal"
    assert m["sql2m"]["role"] == "Mirror"
    assert m["sql2"]["partner"] == "sql2m"
    assert m["sql2m"]["status"] == "SYNCHRONIZED"
    table = d.ctl("db", "mirror", "state", "--store", "sql2m").stdout
    assert "STORE" in table and "sql2m" in table and "SYNCHRONIZED" in table


def test_mirror_state_of_an_unknown_store_is_a_clear_error(d):
    cp = d.ctl("db", "mirror", "state", "--store", "nosuch", check=False)
    assert cp.returncode != 0
    assert "store `nosuch` is not in the topology" in cp.stderr


def test_failover_what_if_prints_the_plan_and_changes_nothing(d):
    cp = d.ctl("db", "failover", "--store", "sql2", "--what-if")
    assert "[1/3] fence the principal" in cp.stderr
    assert "would promote `sql2m`" in cp.stderr
    assert "nothing is lost: `sql2m` was SYNCHRONIZED" in cp.stderr
    assert _members(d, "sql2")["sql2"]["role"] == "Principal"


def test_failover_promotes_the_mirror_and_rejoins_the_old_principal_then_back(d):
    doc = d.ctl("db", "failover", "--store", "sql2", "--yes", json=True, timeout=300)
    assert doc["outcome"] == "done", doc
    assert [s["state"] for s in doc["steps"]] == ["done"] * 3
    d.wait_until(lambda: _members(d, "sql2")["sql2m"]["role"] == "Principal", 30, "sql2m Principal")
    d.wait_until(lambda: _synchronized(d, "sql2"), 120, "pair SYNCHRONIZED with roles swapped")
    assert _members(d, "sql2")["sql2"]["role"] == "Mirror"
    # A second failover brings the roles back.
    doc = d.ctl("db", "failover", "--store", "sql2", "--yes", json=True, timeout=300)
    assert doc["outcome"] == "done", doc
    d.wait_until(lambda: _members(d, "sql2")["sql2"]["role"] == "Principal", 30, "sql2 Principal")
    d.wait_until(lambda: _synchronized(d, "sql2"), 120, "pair SYNCHRONIZED again")


def test_connections_list_and_end_one(d):
    doc = d.ctl("db", "connections", "list", "--store", "sql2", json=True)
    assert doc["store"] == "sql2"
    assert isinstance(doc["connections"], list)
    cp = d.ctl("db", "connections", "end", "--store", "sql2", check=False)
    assert cp.returncode == 2 and "--all or --pid" in cp.stderr
    cp = d.ctl("db", "connections", "end", "--store", "sql2", "--all", check=False)
    assert cp.returncode == 3 and "--yes" in cp.stderr  # no terminal, no --yes: refused


def test_log_shipping_status_of_the_backup_store(d):
    doc = d.ctl("db", "log-shipping", "status", "--store", "pcb", json=True)
    assert doc["role"] == "BackupRestoring"
    assert doc["copy_job"] and doc["restore_job"]
    table = d.ctl("db", "log-shipping", "status", "--store", "pcb").stdout
    assert "last backed up" in table and "last restored" in table


def _cmdlet(d, *args):
    # The cmdlet must be the first word (tandemctl main), so the state dir comes from the env.
    env = {**os.environ, **d.env, "TANDEM_STATE_DIR": str(d.state_dir)}
    return subprocess.run([str(d.tandemctl), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_cmdlet_alias_get_csdatabasemirrorstate(d):
    cp = _cmdlet(d, "Get-CsDatabaseMirrorState", "-SqlServerFqdn", "sql2.example.test")
    assert cp.returncode == 0, cp.stderr
    assert "sql2m" in cp.stdout
    cp = _cmdlet(d, "invoke-csdatabasefailover", "-SqlServerFqdn", "sql2.example.test", "-WhatIf")
    assert cp.returncode == 0, cp.stderr
    assert "promote `sql2m`" in cp.stderr


def test_failover_of_an_unmirrored_store_is_refused(d):
    cp = d.ctl("db", "failover", "--store", "pcb", "--yes", check=False)
    assert cp.returncode == 3, cp.stderr
    assert "not mirrored" in cp.stderr or "not the mirror" in cp.stderr or "pcbm" in cp.stderr
