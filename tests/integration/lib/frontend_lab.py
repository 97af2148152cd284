"""The front-end lab shared by tests/integration/test_frontend*.py: two front-end pools of two
servers each, a PostgreSQL store per pool and a chat pool, started by hand (xmpp_clients.FrontendLab),
and the helpers those tests share. The `lab` fixture (conftest.py) starts one per test module."""

from __future__ import annotations

import asyncio
import json

from lib.xmpp_clients import DOMAIN, FrontendLab, addr, owner_of, wait_until

POOL1, POOL2 = "pool1.example.test", "pool2.example.test"
CHAT = "chat.example.test"
USERS = [
    {"name": "alice", "pool": POOL1, "password": "alice-pw"},
    {"name": "bob", "pool": POOL1, "password": "bob-pw"},
    {"name": "erin", "pool": POOL1, "password": "erin-pw"},
    {"name": "carol", "pool": POOL2, "password": "carol-pw"},
    {"name": "dave", "pool": POOL2, "password": "dave-pw"},
]
PASSWORDS = {u["name"]: u["password"] for u in USERS}


def make_lab(label: str, block: int = 0) -> FrontendLab:
    """`block` shifts every address (127.N.(1+block).x), so two labs can run side by side."""
    s1, s2 = 1 + block, 2 + block
    pools = {
        POOL1: {"store": "sql1", "site": "Site1",
                "servers": {"fe1a.example.test": addr(s1, 1), "fe1b.example.test": addr(s1, 2)}},
        POOL2: {"store": "sql2", "site": "Site2",
                "servers": {"fe2a.example.test": addr(s2, 1), "fe2b.example.test": addr(s2, 2)}},
    }
    chat = {"fqdn": CHAT, "role": "chat", "site": "Site1", "store": "sql1",
            "frontend_pool": POOL1,
            "servers": [{"fqdn": "chat1a.example.test", "address": addr(s1, 30)},
                        {"fqdn": "chat1b.example.test", "address": addr(s1, 31)}],
            "active_servers": ["chat1a.example.test", "chat1b.example.test"]}
    lab = FrontendLab(label, pools, USERS, {"sql1": addr(s1, 10), "sql2": addr(s2, 10)}, chat=chat)
    try:
        lab.start_store("sql1")
        lab.start_store("sql2")
        for fqdn in lab.servers():
            lab.start_server(fqdn, wait=False)
        for fqdn in lab.servers():
            lab.wait_serving(fqdn)
        # Every server sees every peer before clients arrive.
        for fqdn in lab.servers():
            wait_until(lambda f=fqdn: all(lab.admin(f, "/status")["links"].values()), 20,
                       f"{fqdn} links up")
    except BaseException:
        lab.close()
        raise
    return lab


def home(lab: FrontendLab, user: str) -> str:
    """Address of the server that owns `user` (all servers healthy)."""
    pool = next(u["pool"] for u in USERS if u["name"] == user)
    return lab.servers()[owner_of(list(lab.pools[pool]["servers"]), f"{user}@{DOMAIN}")]


def jid(user: str, resource: str = "") -> str:
    return f"{user}@{DOMAIN}" + (f"/{resource}" if resource else "")


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def metric(lab, server, name) -> float:
    text = lab.admin(server, "/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.split()[-1])
    return total


def non_owner(lab: FrontendLab, user: str) -> tuple[str, str]:
    """(owner fqdn, another server of the user's pool): all servers healthy."""
    pool = next(u["pool"] for u in USERS if u["name"] == user)
    servers = list(lab.pools[pool]["servers"])
    owner = owner_of(servers, jid(user))
    return owner, next(f for f in servers if f != owner)


def set_redirect_mode(lab: FrontendLab, pool: str, mode: str) -> None:
    r = lab.ctl("config", "set", f"frontend.{pool}.redirect", json.dumps(mode), check=False)
    if r.returncode != 0 and "nothing was published" in r.stderr:
        lab.ctl("topology", "publish", str(lab.topology))
        r = lab.ctl("config", "set", f"frontend.{pool}.redirect", json.dumps(mode))
    assert r.returncode == 0, r.stderr
    for fqdn in lab.pools[pool]["servers"]:
        wait_until(lambda f=fqdn: lab.admin(f, "/status")["redirect_mode"] == mode, 20,
                   f"{fqdn} to use redirect mode {mode}")
