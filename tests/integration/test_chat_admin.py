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


def test_creator_chooses_the_category_in_the_configuration_form(quick):
    """Rooms created over XMPP start in `general`; the owner picks another category with the
    form field tandem#category, which must exist and let the owner create rooms in it."""
    from test_chat_muc import NS_OWNER
    quick.ctl("chat", "category", "add", "--name", "design", "--creators", "alice@example.test",
              "--members", "*")

    def form(category):
        return (f"<query xmlns='{NS_OWNER}'><x xmlns='jabber:x:data' type='submit'>"
                f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value>"
                f"</field><field var='tandem#category'><value>{category}</value></field></x></query>")

    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            # The form offers the field, with the room's current category.
            await alice.join("sketches", "alice")
            got = await alice.iq(f"sketches@{SERVICE}", "get", f"<query xmlns='{NS_OWNER}'/>")
            fields = {f.get("var"): f for f in got.iter("{jabber:x:data}field")}
            assert fields["tandem#category"].get("type") == "text-single"
            assert fields["tandem#category"].findtext("{jabber:x:data}value") == "general"
            # Unknown category: not-acceptable, the room stays locked (Bob cannot join yet).
            await alice.iq(f"sketches@{SERVICE}", "set", form("nope"), expect_error="not-acceptable")
            await bob.join("sketches", "bob", expect_error="item-not-found")
            await alice.iq(f"sketches@{SERVICE}", "set", form("design"))
            await bob.join("sketches", "bob")
            # Bob may not move his own room into `design` (he is not one of its creators).
            await bob.join("bobs", "bob")
            await bob.iq(f"bobs@{SERVICE}", "set", form("design"), expect_error="forbidden")
            await bob.iq(f"bobs@{SERVICE}", "set", form("general"))
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(scenario())
    assert quick.ctl("chat", "room", "show", "--name", "sketches", json=True)["category"] == "design"
    assert quick.ctl("chat", "room", "show", "--name", "bobs", json=True)["category"] == "general"
    quick.ctl("chat", "room", "remove", "--name", "sketches", "--yes")
    quick.ctl("chat", "category", "remove", "--name", "design")


def test_default_category_setting_and_a_creator_it_does_not_admit(quick):
    """chat.<pool>.default_category names the category XMPP-created rooms start in. A creator
    that category does not admit still gets the locked room, but it is saved only when its
    first configuration form names a category that admits them."""
    from test_chat_muc import NS_OWNER
    key = f"chat.{SERVICE}.default_category"
    for bad in ('""', "7", '["design"]'):
        cp = quick.ctl("config", "set", key, bad, check=False)
        assert cp.returncode == 2 and "must name a room category" in cp.stderr, cp.stderr
    quick.ctl("chat", "category", "add", "--name", "design", "--creators", "alice@example.test",
              "--members", "*")
    quick.ctl("config", "set", key, "design")
    push_newest_version(quick)
    quick.wait_until(lambda: quick.admin("chat1a.example.test", "/status")["chat"]
                     .get("default_category") == "design", timeout=5,
                     what="chat server follows default_category")

    def form(category=None):
        f = (f"<field var='tandem#category'><value>{category}</value></field>"
             if category else "")
        return (f"<query xmlns='{NS_OWNER}'><x xmlns='jabber:x:data' type='submit'>"
                f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value>"
                f"</field>{f}</x></query>")

    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            # Alice is among design's creators: her room starts (and stays) there.
            await alice.join("drafts", "alice")
            await alice.iq(f"drafts@{SERVICE}", "set", form())
            # Bob is not: he gets his locked room (201) but nothing is stored yet.
            await bob.join("bobs-notes", "bob")
            bob.send(f"<message to='bobs-notes@{SERVICE}' type='groupchat' id='early'>"
                     f"<body>too early</body></message>")
            err = await bob.message(lambda m: m.get("id") == "early", what="refused message")
            assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-allowed") is not None
            # An instant room is checked against design: refused, the room stays locked.
            await bob.iq(f"bobs-notes@{SERVICE}", "set", form(), expect_error="forbidden")
            await alice.join("bobs-notes", "alice", expect_error="item-not-found")
            # Naming general in the form: created there.
            await bob.iq(f"bobs-notes@{SERVICE}", "set", form("general"))
            await alice.join("bobs-notes", "alice")
            bob.say("bobs-notes", "now stored")
            await alice.reflection("bobs-notes", "now stored")
            # A room Bob leaves before it is saved is gone: Alice may create it in design.
            await bob.join("abandoned", "bob")
            bob.send(f"<presence to='abandoned@{SERVICE}/bob' type='unavailable'/>")
            await bob.stanza(bob.pres, lambda p: p.get("from") == f"abandoned@{SERVICE}/bob"
                             and p.get("type") == "unavailable", what="left the unsaved room")
            created = await alice.join("abandoned", "alice")
            codes = {s.get("code") for s in created.iter(
                "{http://jabber.org/protocol/muc#user}status")}
            assert "201" in codes, codes
            await alice.iq(f"abandoned@{SERVICE}", "set", form())
        finally:
            await alice.c.close()
            await bob.c.close()
    try:
        asyncio.run(scenario())
        assert quick.ctl("chat", "room", "show", "--name", "drafts", json=True)["category"] == "design"
        assert quick.ctl("chat", "room", "show", "--name", "bobs-notes",
                         json=True)["category"] == "general"
        assert quick.ctl("chat", "room", "show", "--name", "abandoned",
                         json=True)["category"] == "design"
    finally:
        quick.ctl("config", "set", key, "general")
        push_newest_version(quick)
        for room in ("drafts", "bobs-notes", "abandoned"):
            quick.ctl("chat", "room", "remove", "--name", room, "--yes", check=False)
        quick.ctl("chat", "category", "remove", "--name", "design", check=False)
