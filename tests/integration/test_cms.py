"""The central management store end to end: publish, settings, replicas, master takeover, CMS
store loss and CMS failover, with real tandemd processes, real PostgreSQL and real kill -9.

Run: TANDEM_TEST_NET=12 /usr/bin/python3 -m pytest tests/integration/test_cms.py
"""

import copy
import json
import os
import signal
import subprocess
import time

import pytest
import yaml

TOPOLOGY = {
    "domain": "example.test",
    "sites": [{"name": "Site1"}, {"name": "Site2"}],
    "stores": [
        {"name": "sql1", "site": "Site1", "address": "127.0.1.10"},
        {"name": "sql2", "site": "Site2", "address": "127.0.2.10"},
    ],
    "pools": [
        {"fqdn": "pool1.example.test", "role": "frontend", "site": "Site1", "store": "sql1",
         "backup_pool": "pool2.example.test", "cms": True,
         "servers": [{"fqdn": "fe1a.example.test", "address": "127.0.1.1"},
                     {"fqdn": "fe1b.example.test", "address": "127.0.1.2"}]},
        {"fqdn": "pool2.example.test", "role": "frontend", "site": "Site2", "store": "sql2",
         "backup_pool": "pool1.example.test",
         "servers": [{"fqdn": "fe2a.example.test", "address": "127.0.2.1"}]},
    ],
    "users": [{"name": "alice", "pool": "pool1.example.test", "password": "alice-pw"}],
}

SERVERS = ["fe1a.example.test", "fe1b.example.test", "fe2a.example.test"]


def replica_version(d, fqdn):
    try:
        return d.admin(fqdn, "/cms/replica", timeout=2)["version"]
    except Exception:  # noqa: BLE001 - a server that does not answer holds nothing we can see
        return None


def current_version(d):
    return d.ctl("cms", "status", json=True)["current_version"]


def wait_replicas(d, version, servers, timeout):
    d.wait_until(lambda: all(replica_version(d, s) == version for s in servers), timeout,
                 f"replicas {servers} at CMS version {version}", interval=0.05)


def write_topology(d, tmp_dir, mutate):
    topo = copy.deepcopy(d.topology)
    mutate(topo)
    path = os.path.join(tmp_dir, f"topology-{time.monotonic_ns()}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(topo, f)
    return path


@pytest.fixture
def cms(deploy):
    d = deploy(TOPOLOGY)
    d.wait_healthy(SERVERS, timeout=90)
    d.wait_until(lambda: d.ctl("cms", "status", json=True)["active_master"], 30, "a CMS master")
    wait_replicas(d, current_version(d), SERVERS, 10)
    return d


def test_publish_reaches_every_replica_within_two_seconds(cms, tmp_path):
    d = cms
    path = write_topology(d, str(tmp_path), lambda t: t["users"].append(
        {"name": "carol", "pool": "pool2.example.test", "password": "carol-pw"}))
    diff = d.ctl("topology", "diff", path).stdout
    assert "carol" in diff
    before = current_version(d)
    start = time.monotonic()
    out = d.ctl("topology", "publish", path, json=True)
    assert out["version"] == before + 1
    wait_replicas(d, before + 1, SERVERS, 2.0)
    print(f"publish -> all replicas: {time.monotonic() - start:.2f} s")

    # `topology show` without a file shows what is published now.
    shown = d.ctl("topology", "show", json=True)
    assert "carol" in {u["name"] for u in shown["users"]}
    table = d.ctl("topology", "show").stdout
    assert f"CMS version {before + 1}" in table and "fe2a.example.test" in table

    status = d.ctl("cms", "replication-status", json=True)
    assert status["master_reachable"] is True
    assert {r["fqdn"] for r in status["replicas"]} == set(SERVERS)
    d.wait_until(lambda: all(r["up_to_date"] for r in
                             d.ctl("cms", "replication-status", json=True)["replicas"]),
                 5, "replication-status all up to date")
    st = d.ctl("cms", "status", json=True)
    assert st["active_master"] in ("fe1a.example.test", "fe1b.example.test")
    assert set(st["file_transfer_agents"]) == {"fe1a.example.test", "fe1b.example.test"}
    # The cmdlet names answer the same (the cmdlet must be the first word: state dir by env).
    cp = subprocess.run([str(d.tandemctl), "Get-CsManagementStoreReplicationStatus",
                         "-CentralManagementStoreStatus", "--json"], capture_output=True,
                        text=True, env={**os.environ, **d.env, "TANDEM_STATE_DIR": str(d.state_dir)},
                        timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["current_version"] == before + 1

    # A setting: a new version that reaches every replica, and appears in /metrics.
    d.ctl("config", "set", "users.bob", '{"pool": "pool2.example.test"}')
    wait_replicas(d, before + 2, SERVERS, 2.0)
    metrics = d.admin("fe2a.example.test", "/metrics")
    assert f"tandem_cms_replica_version {before + 2}" in metrics
    assert "tandem_cms_replica_age_seconds" in metrics
    hist = d.ctl("config", "history", json=True)
    assert hist[0]["kind"] == "setting" and "users.bob" in hist[0]["summary"]


def test_invalid_publishes_and_settings_write_nothing(cms, tmp_path):
    d = cms
    before = current_version(d)
    bad = write_topology(d, str(tmp_path), lambda t: t["pools"][0].update(cms=False))
    cp = d.ctl("topology", "publish", bad, check=False)
    assert cp.returncode != 0
    assert bad in cp.stdout  # every problem as FILE:LINE: sentence
    cp = d.ctl("config", "set", "colour", "blue", check=False)
    assert cp.returncode == 2 and "unknown setting `colour`" in cp.stderr
    cp = d.ctl("config", "set", "users.bob", '{"pool": "nowhere.example.test"}', check=False)
    assert cp.returncode == 2 and "not a front-end pool" in cp.stderr
    cp = d.ctl("config", "set", "users.bob", '{"pool": "pool2.example.test"}', "--what-if")
    assert "would write version" in cp.stdout
    assert current_version(d) == before


def test_concurrent_publishes_one_wins_others_retry(cms, tmp_path):
    d = cms
    before = current_version(d)
    paths = [write_topology(d, str(tmp_path), lambda t, i=i: t["users"].append(
        {"name": f"user{i}", "pool": "pool1.example.test", "password": "pw"})) for i in range(4)]
    procs = [subprocess.Popen([str(d.tandemctl), "--state-dir", str(d.state_dir), "topology",
                               "publish", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, **d.env}) for p in paths]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]
    ok = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] != 0]
    assert ok, results
    for rc, _, err in refused:
        assert rc == 3 and "retry" in err, (rc, err)
    assert current_version(d) == before + len(ok)


def test_master_killed_another_server_takes_over(cms, tmp_path):
    d = cms
    old = d.ctl("cms", "status", json=True)["active_master"]
    os.kill(d.process(old)["pid"], signal.SIGKILL)
    d.wait_until(lambda: d.ctl("cms", "status", json=True)["active_master"] not in (None, old),
                 15, "another CMS master")
    new = d.ctl("cms", "status", json=True)["active_master"]
    assert new in ("fe1a.example.test", "fe1b.example.test") and new != old
    path = write_topology(d, str(tmp_path), lambda t: t["users"].append(
        {"name": "dave", "pool": "pool1.example.test", "password": "pw"}))
    v = d.ctl("topology", "publish", path, json=True)["version"]
    alive = [s for s in SERVERS if s != old]
    wait_replicas(d, v, alive, 2.0)


def test_cms_site_lost_servers_keep_running_then_failover_and_revive(cms):
    d = cms
    v = current_version(d)
    d.kill_site("Site1")  # the CMS store and both CMS pool servers die at once
    # fe2a keeps running on its replica.
    assert replica_version(d, "fe2a.example.test") == v
    assert d.admin("fe2a.example.test", "/health")["ok"] is True
    cp = d.ctl("cms", "replication-status", check=False)
    assert cp.returncode == 1
    assert "CMS master unreachable" in cp.stderr
    assert "fe2a.example.test" in cp.stdout

    plan = d.ctl("cms", "failover", "--what-if", json=True)
    assert plan["to_store"] == "sql2" and plan["from_reachable"] is False
    done = d.ctl("cms", "failover", "--yes", json=True)
    assert done["master"] == "fe2a.example.test"
    wait_replicas(d, done["version"], ["fe2a.example.test"], 3)
    d.ctl("config", "set", "users.bob", '{"pool": "pool2.example.test"}')

    d.revive_site("Site1")
    d.wait_healthy(SERVERS, timeout=120)
    latest = current_version(d)
    wait_replicas(d, latest, SERVERS, 15)
    st = d.ctl("cms", "status", json=True)
    assert st["active_store"] == "sql2"
    d.wait_until(lambda: d.ctl("cms", "status", json=True)["standby"]["version"] == latest, 15,
                 "the old CMS store caught up as standby")
