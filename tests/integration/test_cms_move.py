"""Seed 004 steps 5-6: the CMS in Site1 is lost (`deploy kill-site Site1`, kill -9 of every
process there) and is brought up in pool2 three ways, typed as the seed types them:

  A  pool2's store holds a standby copy: Invoke-CsManagementServerFailover -BackupSqlServerFqdn
     onto pool2's principal (the mirror is refused, naming what to type instead);
  B  pool2's principal was killed first (mirror promoted): the -BackupSqlServerFqdn form is
     refused, the -MirrorSqlServerFqdn form fails over onto the mirror;
  C  pool2's store holds no CMS copy: Install-CsDatabase -Clean, Move-CsManagementServer from the
     newest export the CMS master left on the backup share, Bootstrapper /Setup; then a publish
     reaches every surviving server, and when Site1 is revived its old CMS copy does not become
     master again (fenced by epoch) and its servers follow the new master.

After each: `cms status` names pool2's servers as active master and file transfer agents, and
`cms replication-status` shows every running replica up to date (seed 5d-e, 6c-d). Between cases
Site1 is revived and the CMS failed back to pool1. The tests of this file run in order on one
two-site deployment (examples/two-site.yaml). Finally every seed CMS command line, typed as in the
seed with our names, either works or is refused with its reason.

Run: TANDEM_TEST_NET=45 /usr/bin/python3 -m pytest tests/integration/test_cms_move.py
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest

POOL1, POOL2 = "pool1.example.test", "pool2.example.test"
SETTING = "chat.chat.example.test.default_category"


@pytest.fixture(scope="module")
def d(deploy_module):
    d = deploy_module("examples/two-site.yaml")
    d.wait_healthy(running_replicas(d, ["Site1", "Site2"]), timeout=240)
    wait_cms_in(d, POOL1)
    return d


# ---- what the seed's verification steps check ------------------------------------------------

def pool_servers(d, pool):
    return [s["fqdn"] for s in d.servers() if s["pool"] == pool]


def cms_status(d):
    return d.ctl("Get-CsManagementStoreReplicationStatus", "-CentralManagementStoreStatus", json=True)


def wait_cms_in(d, pool, timeout=60):
    """Seed 5d/6c: active master and every file transfer agent are servers of `pool`."""
    members = pool_servers(d, pool)

    def ok():
        s = cms_status(d)
        return (s["active_pool"] == pool and s["active_master"] in members
                and s["file_transfer_agents"]
                and all(a in members for a in s["file_transfer_agents"])) and s
    return d.wait_until(ok, timeout, f"CMS master and file transfer agents in {pool}")


def running_replicas(d, sites):
    """Servers of these sites that run (edge servers are not built yet: `deploy status`)."""
    return [s["fqdn"] for s in d.servers() if s["site"] in sites and s["role"] != "edge"]


def wait_replicas_up_to_date(d, servers, timeout=60):
    """Seed 5e/6d: Get-CsManagementStoreReplicationStatus shows these replicas up to date."""
    def ok():
        doc = d.ctl("Get-CsManagementStoreReplicationStatus", json=True)
        by = {r["fqdn"]: r for r in doc["replicas"]}
        behind = [f for f in servers if not by[f]["up_to_date"]]
        assert not behind, f"not up to date: {behind}"
        return doc
    return d.wait_until(ok, timeout, f"replicas {servers} up to date")


def replica_of(d, fqdn):
    return d.admin(fqdn, "/cms/replica", timeout=3)


def kill_store(d, name):
    """kill -9 of a store's agent and of its PostgreSQL (postmaster and backends)."""
    pid = d.process(name).get("pid")
    if pid:
        os.kill(pid, signal.SIGKILL)
    pidfile = d.state_dir / "stores" / name / "pgdata" / "postmaster.pid"
    pm = int(pidfile.read_text().split()[0])
    kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pm)], capture_output=True, text=True)
    for p in [int(x) for x in kids.stdout.split()] + [pm]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def revive_and_fail_back(d):
    d.revive_site("Site1", timeout=300)
    d.wait_healthy(pool_servers(d, POOL1), timeout=180)
    d.ctl("cms", "failover", "--pool", POOL1, "--yes", timeout=180)
    wait_cms_in(d, POOL1)
    wait_replicas_up_to_date(d, running_replicas(d, ["Site1", "Site2"]), timeout=90)


def refused(cp, *needles):
    assert cp.returncode in (2, 3), f"exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
    for n in needles:
        assert n in cp.stderr, cp.stderr
    return cp.stderr


# ---- cases A and B -------------------------------------------------------------------------------

def failover_line(kind, store):
    """Seed 5b (kind "Backup") or 5c (kind "Mirror"), as typed there."""
    return ["Invoke-CSManagementServerFailover", f"-{kind}SQLServerFqdn", f"{store}.example.test",
            f"-{kind}SQLInstanceName", "rtc", "--yes"]


def fail_over_checking_the_other_form(d, wrong, right, *reason):
    """The wrong form is refused with `reason` (what to type instead); the right one fails the CMS
    over to pool2 (seed 5d-e checked); then Site1 is revived and the CMS failed back."""
    refused(d.ctl(*failover_line(*wrong), check=False), *reason)
    d.ctl(*failover_line(*right), timeout=180)
    wait_cms_in(d, POOL2)
    wait_replicas_up_to_date(d, running_replicas(d, ["Site2"]))
    revive_and_fail_back(d)


def test_case_a_failover_onto_backup_pools_principal(d):
    d.kill_site("Site1")
    plan = d.ctl("Invoke-CsManagementServerFailover", "-Whatif").stdout
    assert "sql2" in plan and POOL2 in plan
    # pool2's principal is sql2, so naming its mirror is refused with what to type instead.
    fail_over_checking_the_other_form(d, ("Mirror", "sql2m"), ("Backup", "sql2"),
                                      "-BackupSqlServerFqdn sql2.example.test -BackupSqlInstanceName rtc")


def test_case_b_failover_onto_the_mirror_after_the_principal_died(d):
    d.kill_site("Site1")
    kill_store(d, "sql2")
    d.ctl("db", "failover", "--store", "sql2", "--force", "--yes", timeout=300)
    fail_over_checking_the_other_form(d, ("Backup", "sql2"), ("Mirror", "sql2m"),
                                      "does not answer", "-MirrorSqlServerFqdn sql2m.example.test")


# ---- case C and the revived Site1 ---------------------------------------------------------------

def latest_share_export(d):
    files = list((d.state_dir / "share" / "cms").glob("cms-export-e*-v*.json"))
    key = lambda p: tuple(int(x) for x in p.stem[len("cms-export-e"):].split("-v"))  # noqa: E731
    return max(files, key=key) if files else None


def test_case_c_no_copy_install_move_bootstrap(d):
    v = d.ctl("config", "set", SETTING, "drill", json=True)["version"]
    d.wait_until(lambda: (latest_share_export(d) or Path("-e0-v0")).stem.endswith(f"-v{v}"), 30,
                 f"the CMS master's export of version {v} on the backup share")
    d.kill_site("Site1")
    # pool2's store loses its CMS copy (the case where the backup pool's back end holds none).
    dsn = f"host={d.address('sql2m')} dbname=postgres user=tandem password={d.token()}"
    subprocess.run(["psql", dsn, "-c", "DROP DATABASE IF EXISTS xds WITH (FORCE)"], check=True,
                   capture_output=True)
    export = latest_share_export(d)
    out = d.ctl("Install-CsDatabase", "-CentralManagementDatabase", "-Clean", "-SqlServerFqdn",
                "sql2m.example.test", "-SqlInstanceName", "rtc", "--yes").stdout
    assert "created a CMS database on store `sql2m`" in out
    no_force = d.ctl("cms", "move", "--from", str(export), "--yes", check=False)
    refused(no_force, "does not answer, so it cannot agree")
    moved = d.ctl("Move-CsManagementServer", "-ConfigurationFileName", str(export), "-Force",
                  timeout=180)
    assert "[6/6] Wait for a master" in moved.stderr, moved.stderr
    boot = d.ctl("Bootstrapper", "/Setup", json=True)
    assert {s["fqdn"] for s in boot["servers"]} == set(pool_servers(d, POOL2))
    status = wait_cms_in(d, POOL2)
    survivors = running_replicas(d, ["Site2"])
    wait_replicas_up_to_date(d, survivors)
    assert d.ctl("config", "get", SETTING, json=True)["value"] == "drill"
    # A publish reaches every surviving server.
    pub = d.ctl("topology", "publish", str(d.state_dir / "topology.yaml"), json=True)["version"]
    assert pub > status["current_version"]
    d.wait_until(lambda: all(replica_of(d, s)["version"] == pub for s in survivors), 30,
                 f"version {pub} on {survivors}")


def test_revived_site1_is_fenced_by_epoch_and_follows_the_new_master(d):
    epoch = cms_status(d)["epoch"]
    d.revive_site("Site1", timeout=300)
    site1 = running_replicas(d, ["Site1"])
    d.wait_healthy(pool_servers(d, POOL1), timeout=180)
    # Its servers follow the new master: their replicas take the moved CMS's versions.
    wait_replicas_up_to_date(d, running_replicas(d, ["Site1", "Site2"]), timeout=120)
    assert all(replica_of(d, s)["epoch"] == epoch for s in site1)
    # The old copy on sql1 is only the standby now, brought up to date by pool2's master.
    def standby_synced():
        s = cms_status(d)
        return (s["standby"]["store"] == "sql1" and s["standby"]["version"] == s["current_version"]
                and s) or None
    s = d.wait_until(standby_synced, 60, "sql1 synced as the standby")
    assert s["active_pool"] == POOL2 and s["active_master"] in pool_servers(d, POOL2)
    v = d.ctl("config", "set", SETTING, "after-revive", json=True)["version"]
    d.wait_until(lambda: all(replica_of(d, f)["version"] == v for f in pool_servers(d, POOL1)),
                 30, f"version {v} on pool1's revived servers")
    assert cms_status(d)["active_master"] in pool_servers(d, POOL2)


# ---- every seed CMS command line ----------------------------------------------------------------

SEED_LINES = [
    # (seed step, the line as typed (our names), None when it works / a reason when refused)
    ("1", ["Invoke-CsManagementServerFailover", "-Whatif"], None),
    ("3", ["Get-CsManagementStoreReplicationStatus", "-CentralManagementStoreStatus"], None),
    ("5a", ["Get-CsDatabaseMirrorState", "-DatabaseType", "Centralmgmt", "-PoolFqdn", POOL2], None),
    ("5b", ["Invoke-CSManagementServerFailover", "-BackupSQLServerFqdn", "sql2.example.test",
            "-BackupSQLInstanceName", "rtc"], "does not answer"),
    ("5c", ["Invoke-CSManagementServerFailover", "-MirrorSQLServerFqdn", "sql2m.example.test",
            "-MirrorSQLInstanceName", "rtc"], None),
    ("5d", ["Get-CsManagementStoreReplicationStatus", "-CentralManagementStoreStatus"], None),
    ("5e", ["Get-CsManagementStoreReplicationStatus"], None),
    ("6a", ["Install-CsDatabase", "-CentralManagementDatabase", "-Clean", "-SqlServerFqdn",
            "sql2m.example.test", "-SqlInstanceName", "rtc"], "holds the ACTIVE CMS"),
    ("6b", ["Move-CsManagementServer", "-ConfigurationFileName", "c:\\CsConfigurationFile.zip",
            "-LisConfigurationFileName", "c:\\CsLisConfigurationFile.zip", "-Force"],
     "no Location Information Service"),
    ("6c", ["Get-CsManagementStoreReplicationStatus", "-CentralManagementStoreStatus"], None),
    ("6d", ["Get-CsManagementStoreReplicationStatus"], None),
    ("6e", ["Bootstrapper", "/Setup"], None),
]


@pytest.mark.parametrize("step,line,reason", SEED_LINES, ids=[s[0] + "-" + s[1][0] for s in SEED_LINES])
def test_seed_cms_command_line_works_or_is_refused_with_a_reason(d, step, line, reason):
    cp = d.ctl(*line, check=False, timeout=180)
    if reason is None:
        assert cp.returncode == 0, f"step {step}: exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
    else:
        assert cp.returncode != 0 and reason in cp.stderr, f"step {step}: {cp.stderr}"
        assert cp.stderr.startswith("error: "), cp.stderr
