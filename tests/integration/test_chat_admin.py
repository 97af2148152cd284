"""tandemctl chat: active servers, pool state, categories, rooms, cmdlets (issue #7).

Two-site deployment: the chat pool's primary store is in Site1, chat2a sits in Site2 (not
low-latency to Site1), so making it active is refused while the pool is Normal.
"""

import asyncio
import json
import os
import subprocess

import pytest

from test_chat_muc import SERVICE, push_newest_version, sign_in, wait_chat_serving


def cmdlet(d, *args, json_out=False):
    """Runs a cmdlet line as an operator types it: the cmdlet first, the state dir from the
    environment."""
    cp = subprocess.run([str(d.tandemctl), *args, *(["--json"] if json_out else [])],
                        capture_output=True, text=True, timeout=60,
                        env={**os.environ, **d.env, "TANDEM_STATE_DIR": str(d.state_dir)})
    assert cp.returncode == 0, f"{args[0]} exited {cp.returncode}: {cp.stderr}"
    return json.loads(cp.stdout) if json_out else cp


@pytest.fixture(scope="module")
def quick(deploy_module):
    d = deploy_module("examples/quickstart.yaml")
    wait_chat_serving(d)
    return d


def test_active_servers_refuse_servers_outside_the_pool(quick):
    cp = quick.ctl("chat", "active-servers", "set", "--pool", SERVICE, "--servers",
                   "fe1a.example.test", check=False)
    assert cp.returncode == 3, cp.stderr
    assert "is not a server of chat pool" in cp.stderr
    shown = quick.ctl("chat", "active-servers", "show", "--pool", SERVICE, json=True)
    assert shown["active_servers"] == ["chat1a.example.test"]


def test_clearing_active_servers_stops_service_and_setting_them_back_restores_it(quick):
    what_if = quick.ctl("chat", "active-servers", "set", "--pool", SERVICE, "--servers", "",
                        "--what-if", json=True)
    assert what_if["active_servers"] == [] and what_if["what_if"]
    assert quick.admin("chat1a.example.test", "/status")["chat"]["active"]
    quick.ctl("chat", "active-servers", "set", "--pool", SERVICE, "--servers", "")
    push_newest_version(quick)  # no-op once the CMS master's file transfer agent runs
    quick.wait_until(lambda: not quick.admin("chat1a.example.test", "/status")["chat"]["active"],
                     timeout=5, what="chat server inactive within 2 s of the change")
    st = quick.admin("chat1a.example.test", "/status")["chat"]
    assert "not on the active server list" in st["reason"]
    # Cmdlet alias puts it back.
    cmdlet(quick, "Set-CsPersistentChatActiveServer", "-Identity", f"PersistentChatServer:{SERVICE}",
              "-ActiveServers", '@{Replace="chat1a.example.test"}')
    push_newest_version(quick)
    wait_chat_serving(quick, timeout=30)


def test_state_show_and_what_if(quick):
    doc = quick.ctl("chat", "state", "show", "--pool", SERVICE, json=True)
    assert doc["state"] == "Normal"
    doc = cmdlet(quick, "Set-CsPersistentChatState", "-Identity", f"service:{SERVICE}",
                 "-PoolState", "FailedOver", "-WhatIf", json_out=True)
    assert doc["what_if"] and doc["previous_state"] == "Normal"
    assert quick.ctl("chat", "state", "show", "--pool", SERVICE, json=True)["state"] == "Normal"


def test_categories_gate_room_creation_and_rooms_are_admin_managed(quick):
    quick.ctl("chat", "category", "add", "--name", "eng", "--creators", "alice@example.test",
              "--members", "alice@example.test")
    cats = {c["name"]: c for c in quick.ctl("chat", "category", "list", json=True)["categories"]}
    assert cats["eng"]["members"] == ["alice@example.test"]
    quick.ctl("chat", "room", "add", "--name", "standup", "--category", "eng")
    again = quick.ctl("chat", "room", "add", "--name", "standup", "--category", "eng", json=True)
    assert again["created"] is False
    room = quick.ctl("chat", "room", "show", "--name", "standup", json=True)
    assert room["category"] == "eng"
    refused = quick.ctl("chat", "category", "remove", "--name", "eng", check=False)
    assert refused.returncode == 3 and "still holds 1 room" in refused.stderr

    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            await alice.join("standup", "alice")
            await bob.join("standup", "bob", expect_error="forbidden")
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(scenario())
    quick.ctl("chat", "room", "remove", "--name", "standup", "--yes")
    quick.ctl("chat", "category", "remove", "--name", "eng")
    names = [r["name"] for r in quick.ctl("chat", "room", "list", json=True)["rooms"]]
    assert "standup" not in names and "ops" in names
