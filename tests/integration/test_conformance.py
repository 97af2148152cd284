"""XMPP conformance of the front end and the chat service (#23): RFC 6121, XEP-0030, XEP-0045,
XEP-0191, with real slixmpp clients sending raw stanzas where the library would hide the detail.

One quickstart deployment for the file. Each test signs in users of its own (created with
`tandemctl user add`), so rosters, block lists and rooms of one test never leak into another.
docs/compliance.md names the test that shows each requirement.
"""

import asyncio
import itertools
import xml.etree.ElementTree as ET

import pytest

from lib.xmpp_clients import slix_connect
from test_chat_muc import NS_ADMIN, NS_MUC, NS_OWNER, NS_SID, NS_USER, SERVICE, Chat, \
    wait_chat_serving

POOL = "pool1.example.test"
NS_ROSTER = "jabber:iq:roster"
NS_BLOCKING = "urn:xmpp:blocking"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
C = "{jabber:client}"
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def conf(deploy_module):
    d = deploy_module("examples/quickstart.yaml")
    wait_chat_serving(d)
    return d


class Peer(Chat):
    """A signed-in user with every iq it receives queued too (pushes, pings), in arrival order
    with messages and presence in `log` (for tests where the order across kinds matters)."""

    def __init__(self, client, name):
        super().__init__(client)
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        self.name = name
        self.bare = f"{name}@example.test"
        self.iqs: asyncio.Queue = asyncio.Queue()
        self.log: list = []
        client.register_handler(Callback("conf-iqs", MatchXPath(f"{C}iq"),
                                         lambda st: self.iqs.put_nowait(st)))
        for kind in ("iq", "message", "presence"):
            client.register_handler(Callback(f"conf-log-{kind}", MatchXPath(f"{C}{kind}"),
                                             lambda st: self.log.append(st.xml)))
        # Subscriptions are answered by the tests themselves, not by slixmpp.
        client.auto_authorize = None
        client.auto_subscribe = False

    def drain_all(self):
        for q in (self.msgs, self.pres, self.iqs):
            while not q.empty():
                q.get_nowait()

    async def presence_from(self, frm, typ=None, timeout=10, what=None):
        def match(p):
            return p.get("from") == frm and (typ is None or p.get("type", "available") == typ)
        return await self.stanza(self.pres, match, timeout, what or f"{typ} presence from {frm}")

    async def logged(self, pred, timeout=10, what="stanza"):
        """Waits until a stanza matching `pred` is in `log` (received at any time, even if a
        queue reader already took it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for st in self.log:
                if pred(st):
                    return st
            if loop.time() > deadline:
                raise AssertionError(f"{self.bare}: no {what} within {timeout} s")
            await asyncio.sleep(0.05)

    async def push(self, pred, timeout=10, what="iq push"):
        return await self.stanza(self.iqs, lambda q: q.get("type") == "set" and pred(q),
                                 timeout, what)

    async def marker(self, sender: "Peer", timeout=10):
        """`sender` sends a chat message to us; returns what we received before it arrived.
        Both travel the same path in order, so anything routed before the marker is in front."""
        body = f"marker-{next(_serial)}"
        seen = len(self.log)
        sender.send(f"<message to='{self.c.boundjid.full}' type='chat'><body>{body}</body></message>")
        await self.message(lambda m: m.findtext(f"{C}body") == body, timeout, body)
        return self.log[seen:]

    async def close(self):
        await self.c.close()


def new_user(d, prefix):
    name = f"{prefix}{next(_serial)}"
    doc = d.ctl("user", "add", name, "--pool", POOL, json=True)
    return name, doc["password"]


async def sign_in(d, name, password):
    fe = d.servers("frontend")[0]["address"]
    c = await slix_connect(f"{name}@{d.domain}", password, fe, d.ca_file(), roster=False)
    return Peer(c, name)


async def users(d, *prefixes):
    out = []
    for p in prefixes:
        name, pw = new_user(d, p)
        out.append(await sign_in(d, name, pw))
    return out


def play(d, scenario, *prefixes):
    """Signs in one new user per prefix, runs `scenario(*peers)`, and signs them all out."""
    async def run():
        peers = await users(d, *prefixes)
        try:
            await scenario(*peers)
        finally:
            for p in peers:
                await p.close()
    asyncio.run(run())


async def subscribe_both(a: Peer, b: Peer):
    """a and b each subscribe to the other and approve (RFC 6121 §3.1), by raw presence."""
    for x, y in ((a, b), (b, a)):
        x.send(f"<presence to='{y.bare}' type='subscribe'/>")
        await y.stanza(y.pres, lambda p: p.get("type") == "subscribe" and p.get("from") == x.bare,
                       what="subscription request")
        y.send(f"<presence to='{x.bare}' type='subscribed'/>")
        await x.stanza(x.pres, lambda p: p.get("type") == "subscribed" and p.get("from") == y.bare,
                       what="subscription approval")
    # Each now sees the other's current presence (RFC 6121 §3.1.5).
    for x, y in ((a, b), (b, a)):
        await x.logged(lambda p: p.tag == f"{C}presence" and p.get("from") == y.c.boundjid.full
                       and p.get("type") is None, what=f"presence of {y.bare}")


async def create_room(owner: Peer, room, **config):
    await owner.join(room, owner.name)
    await owner.configure(room, **({"persistentroom": 1} | config))


def codes(p):
    x = p.find(f"{{{NS_USER}}}x")
    return [s.get("code") for s in x.findall(f"{{{NS_USER}}}status")] if x is not None else []


# ---- 11: ghosts --------------------------------------------------------------------------------

def test_issue23_unavailable_and_stream_end_tell_rooms_and_directed_recipients(conf):
    """RFC 6121 §4.5.2 and §4.6.3: a broadcast unavailable presence, and the end of the stream,
    reach every entity the client sent directed presence to: rooms drop the occupant, a user
    that got directed presence sees it go."""
    async def scenario(alice, bob):
        room = f"ghost{next(_serial)}"
        await create_room(alice, room)
        await bob.join(room, "bob")
        await alice.presence_from(f"{room}@{SERVICE}/bob")
        bob.send(f"<presence to='{alice.c.boundjid.full}'><status>hi</status></presence>")
        await alice.presence_from(bob.c.boundjid.full, "available")
        # 1. Bob goes unavailable (no 'to'): the room and Alice are told.
        bob.send("<presence type='unavailable'/>")
        for frm in (f"{room}@{SERVICE}/bob", bob.c.boundjid.full):  # in either order
            await alice.logged(lambda p: p.tag == f"{C}presence" and p.get("from") == frm
                               and p.get("type") == "unavailable", what=f"unavailable from {frm}")
        # 2. Bob comes back, rejoins, then ends his stream: the room is told again.
        bob.send("<presence/>")
        bob.drain_all()
        await bob.join(room, "bob")
        await alice.presence_from(f"{room}@{SERVICE}/bob", "available")
        await bob.close()
        await alice.presence_from(f"{room}@{SERVICE}/bob", "unavailable",
                                  what="the room telling that bob's stream ended")
    play(conf, scenario, "ghosta", "ghostb")


# ---- 13: room administration through the chat service ----------------------------------------

def test_issue23_room_remove_destroys_the_live_room_and_tells_its_occupants(conf):
    """`tandemctl chat room remove` goes through the chat server's admin endpoint: the live room
    is destroyed (XEP-0045 §10.9: unavailable presence with <destroy/> to each occupant), and a
    later join creates a new room rather than finding the old one in memory."""
    async def scenario(alice, bob):
        room = f"remove{next(_serial)}"
        await create_room(alice, room, roomname="Doomed")
        await bob.join(room, "bob")
        removed = await asyncio.to_thread(
            conf.ctl, "chat", "room", "remove", "--name", room, "--yes", json=True)
        assert removed["removed"] is True, removed
        for who, nick in ((alice, alice.name), (bob, "bob")):
            p = await who.presence_from(f"{room}@{SERVICE}/{nick}", "unavailable",
                                        what=f"destroy presence to {nick}")
            assert p.find(f"{{{NS_USER}}}x/{{{NS_USER}}}destroy") is not None, ET.tostring(p)
        names = [r["name"] for r in conf.ctl("chat", "room", "list", json=True)["rooms"]]
        assert room not in names
        p = await bob.join(room, "bob")  # a new room: created by this join
        assert "201" in codes(p), ET.tostring(p)
        again = conf.ctl("chat", "room", "remove", "--name", room, "--yes", check=False)
        assert again.returncode == 0, again.stderr  # bob's new room, destroyed in turn
        gone = conf.ctl("chat", "room", "remove", "--name", room, "--yes", check=False)
        assert gone.returncode == 1 and "does not exist" in gone.stderr, gone.stderr
        # room add also goes through the service: the room is live at once, unlocked.
        added = f"added{next(_serial)}"
        doc = conf.ctl("chat", "room", "add", "--name", added, "--title", "Added", json=True)
        assert doc["created"] is True, doc
        p = await bob.join(added, "bob")
        assert "201" not in codes(p)
    play(conf, scenario, "rma", "rmb")


# ---- 6: a repeated join is a resync -------------------------------------------------------------

def test_issue23_repeated_join_resends_occupants_history_and_subject(conf):
    """XEP-0045 §17.3 (and §7.2.3-7.2.15 order): a join presence (with the MUC <x/>) from an
    occupant's full JID already in the room is answered as a join: the other occupants, the
    self-presence (110), the history, then the subject."""
    async def scenario(alice, bob):
        room = f"rejoin{next(_serial)}"
        await create_room(alice, room)
        alice.send(f"<message to='{room}@{SERVICE}' type='groupchat'><subject>topic</subject></message>")
        await alice.message(lambda m: m.findtext(f"{C}subject") == "topic", what="subject")
        alice.say(room, "before")
        await alice.reflection(room, "before")
        await bob.join(room, "bob")
        await bob.message(lambda m: m.findtext(f"{C}subject") == "topic", what="subject on join")
        seen = len(bob.log)
        bob.send(f"<presence to='{room}@{SERVICE}/bob'><x xmlns='{NS_MUC}'/></presence>")
        await bob.message(lambda m: m.findtext(f"{C}subject") == "topic", what="subject on resync")
        got = bob.log[seen:]
        order = []
        for st in got:
            frm = st.get("from", "")
            if st.tag == f"{C}presence" and frm == f"{room}@{SERVICE}/{alice.name}":
                order.append("occupant")
            elif st.tag == f"{C}presence" and frm == f"{room}@{SERVICE}/bob" and "110" in codes(st):
                order.append("self")
            elif st.tag == f"{C}message" and st.findtext(f"{C}body") == "before":
                assert st.find("{urn:xmpp:delay}delay") is not None
                order.append("history")
            elif st.tag == f"{C}message" and st.findtext(f"{C}subject") == "topic":
                order.append("subject")
        assert order == ["occupant", "self", "history", "subject"], order
    play(conf, scenario, "rja", "rjb")


# ---- 3: blocking --------------------------------------------------------------------------------

def test_issue23_blocking_hides_presence_refuses_iqs_and_unblocking_restores_presence(conf):
    """XEP-0191 §3.3: on block the contact gets unavailable presence from each of the user's
    available resources and stanzas from it (iq included) are not delivered; §3.4: on unblock it
    gets the user's current presence."""
    async def scenario(alice, bob):
        await subscribe_both(alice, bob)
        await alice.iq(alice.bare, "set",
                       f"<block xmlns='{NS_BLOCKING}'><item jid='{bob.bare}'/></block>")
        await bob.presence_from(alice.c.boundjid.full, "unavailable", what="unavailable on block")
        await bob.iq(alice.c.boundjid.full, "get", "<ping xmlns='urn:xmpp:ping'/>",
                     expect_error="service-unavailable")
        alice.send("<presence><status>busy</status></presence>")  # not for bob
        await alice.iq(alice.bare, "set",
                       f"<unblock xmlns='{NS_BLOCKING}'><item jid='{bob.bare}'/></unblock>")
        p = await bob.presence_from(alice.c.boundjid.full, what="presence on unblock")
        assert p.get("type") is None and p.findtext(f"{C}status") == "busy", ET.tostring(p)
        await bob.iq(alice.c.boundjid.full, "get", "<ping xmlns='urn:xmpp:ping'/>")
    play(conf, scenario, "bla", "blb")


# ---- 12: subscription pre-approval --------------------------------------------------------------

def test_issue23_subscription_pre_approval(conf):
    """RFC 6121 §3.4: 'subscribed' with no request pending is a pre-approval: the item stays
    subscription='none' with approved='true' and nothing is sent to the contact; the contact's
    later request is approved at once without reaching the user. The stream feature is
    advertised."""
    async def scenario(alice, bob):
        assert "preapproval" in alice.c.features, alice.c.features
        await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}'/>")  # pushes from now on
        alice.send(f"<presence to='{bob.bare}' type='subscribed'/>")
        push = await alice.push(lambda q: q.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item") is not None)
        item = push.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item")
        assert item.get("subscription") == "none" and item.get("approved") == "true", ET.tostring(item)
        before = await bob.marker(alice)
        assert not [p for p in before if p.tag == f"{C}presence" and p.get("from", "").startswith(alice.bare)], \
            [ET.tostring(p) for p in before]
        bob.send(f"<presence to='{alice.bare}' type='subscribe'/>")
        await bob.stanza(bob.pres, lambda p: p.get("type") == "subscribed" and p.get("from") == alice.bare,
                         what="automatic approval")
        push = await alice.push(lambda q: any(i.get("subscription") == "from" for i in q.iter(f"{{{NS_ROSTER}}}item")))
        item = push.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item")
        assert item.get("approved") is None, ET.tostring(item)
        seen = await alice.marker(bob)
        assert not [p for p in seen if p.tag == f"{C}presence" and p.get("type") == "subscribe"], \
            "the pre-approved request reached the user"
    play(conf, scenario, "pra", "prb")


# ---- 2: roster versioning -----------------------------------------------------------------------

def test_issue23_roster_versioning(conf):
    """RFC 6121 §2.6: the rosterver feature is offered, results and pushes carry 'ver', and a get
    carrying the current version is answered with an empty result."""
    async def scenario(alice, bob):
        assert "rosterver" in alice.c.features, alice.c.features
        r = await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}' ver=''/>")
        v1 = r.find(f"{{{NS_ROSTER}}}query").get("ver")
        assert v1, ET.tostring(r)
        r = await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}' ver='{v1}'/>")
        assert r.find(f"{{{NS_ROSTER}}}query") is None, ET.tostring(r)  # nothing changed
        await alice.iq(alice.bare, "set", f"<query xmlns='{NS_ROSTER}'><item jid='{bob.bare}' name='Bob'/></query>")
        push = await alice.push(lambda q: q.find(f"{{{NS_ROSTER}}}query") is not None)
        v2 = push.find(f"{{{NS_ROSTER}}}query").get("ver")
        assert v2 and v2 != v1, ET.tostring(push)
        r = await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}' ver='{v1}'/>")
        q = r.find(f"{{{NS_ROSTER}}}query")
        assert q is not None and q.get("ver") == v2, ET.tostring(r)
        assert [i.get("jid") for i in q] == [bob.bare]
        r = await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}' ver='{v2}'/>")
        assert r.find(f"{{{NS_ROSTER}}}query") is None, ET.tostring(r)
    play(conf, scenario, "rva", "rvb")


# ---- 4: the account's service discovery -----------------------------------------------------------

def test_issue23_account_disco_info_lists_features_and_disco_items_answers(conf):
    """XEP-0030 §3.1: every entity answers disco#info with at least the disco#info feature, and
    disco#items with a result (empty here) rather than an error; asked by the user and by
    another user."""
    async def scenario(alice, bob):
        for asker in (alice, bob):
            r = await asker.iq(alice.bare, "get", f"<query xmlns='{NS_INFO}'/>")
            q = r.find(f"{{{NS_INFO}}}query")
            feats = [f.get("var") for f in q.findall(f"{{{NS_INFO}}}feature")]
            assert NS_INFO in feats, ET.tostring(r)
            assert q.find(f"{{{NS_INFO}}}identity").get("category") == "account"
            r = await asker.iq(alice.bare, "get", f"<query xmlns='{NS_ITEMS}'/>")
            assert r.find(f"{{{NS_ITEMS}}}query") is not None, ET.tostring(r)
    play(conf, scenario, "dia", "dib")


# ---- 8: presence probes from clients -------------------------------------------------------------

def test_issue23_client_probe_is_answered_with_the_contacts_presence(conf):
    """RFC 6121 §4.3: a probe a client sends is processed by its server like one of its own: the
    contact's server answers with the contact's current presence (the user is subscribed), or
    with unavailable presence once the contact has no resource left (§4.3.2)."""
    async def scenario(alice, bob):
        await subscribe_both(alice, bob)
        bob.send("<presence><status>probing-test</status></presence>")
        await alice.logged(lambda p: p.findtext(f"{C}status") == "probing-test", what="status")
        alice.drain_all()
        alice.send(f"<presence to='{bob.bare}' type='probe'/>")
        p = await alice.presence_from(bob.c.boundjid.full, what="answer to the probe")
        assert p.findtext(f"{C}status") == "probing-test", ET.tostring(p)
        # §4.3.2 (SHOULD): with no resource available the answer is unavailable, from the bare JID.
        await bob.close()
        await alice.presence_from(bob.c.boundjid.full, "unavailable")
        alice.send(f"<presence to='{bob.bare}' type='probe'/>")
        await alice.presence_from(bob.bare, "unavailable", what="unavailable answer to the probe")
    play(conf, scenario, "pba", "pbb")


# ---- 1: configuration change notification ---------------------------------------------------------

def test_issue23_configuration_change_notifies_occupants_with_status_104(conf):
    """XEP-0045 §10.2.1: after the owner's form changes the room, every occupant gets a groupchat
    message from the room with status 104; the owner sees its iq result first (as in the
    XEP's examples)."""
    async def scenario(alice, bob):
        room = f"config{next(_serial)}"
        await create_room(alice, room)
        await bob.join(room, "bob")
        seen = len(alice.log)
        await alice.configure(room, roomname="Renamed")
        for who in (alice, bob):
            m = await who.message(lambda m: m.get("from") == f"{room}@{SERVICE}" and "104" in codes(m),
                                  what="status 104")
            assert m.get("type") == "groupchat"
        kinds = [st.tag for st in alice.log[seen:]
                 if st.tag == f"{C}iq" or (st.tag == f"{C}message" and "104" in codes(st))]
        assert kinds == [f"{C}iq", f"{C}message"], kinds
    play(conf, scenario, "cfa", "cfb")


# ---- 5: subject with a thread or a body ------------------------------------------------------------

def test_issue23_subject_with_thread_or_body_is_a_message_not_a_subject_change(conf):
    """XEP-0045 §8.1: only a groupchat message with a <subject/> and neither <body/> nor
    <thread/> changes the subject; the others are ordinary messages, thread kept, archived."""
    async def scenario(alice):
        room = f"subject{next(_serial)}"
        await create_room(alice, room)
        alice.send(f"<message to='{room}@{SERVICE}' type='groupchat'><subject>real</subject></message>")
        await alice.message(lambda m: m.findtext(f"{C}subject") == "real", what="subject change")
        alice.send(f"<message to='{room}@{SERVICE}' type='groupchat'><subject>s2</subject>"
                   f"<thread>t-1</thread></message>")
        m = await alice.message(lambda m: m.findtext(f"{C}thread") == "t-1", what="threaded message")
        assert m.find(f"{{{NS_SID}}}stanza-id") is not None, ET.tostring(m)  # archived
        alice.send(f"<message to='{room}@{SERVICE}' type='groupchat'><subject>s3</subject>"
                   f"<body>with body</body></message>")
        await alice.reflection(room, "with body")
        r = await alice.iq(f"{room}@{SERVICE}", "get", f"<query xmlns='{NS_INFO}'/>")
        subj = [f.findtext(f"{{{NS_DATA}}}value") for f in r.iter(f"{{{NS_DATA}}}field")
                if f.get("var") == "muc#roominfo_subject"]
        assert subj == ["real"], subj
    play(conf, scenario, "sja")


# ---- 7: member list ----------------------------------------------------------------------------

def test_issue23_members_may_read_the_member_list_of_a_non_anonymous_room(conf):
    """XEP-0045 §9.5: in a non-anonymous room a member may retrieve the member list."""
    async def scenario(alice, bob):
        room = f"members{next(_serial)}"
        await create_room(alice, room)
        await alice.iq(f"{room}@{SERVICE}", "set",
                       f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{bob.bare}'/></query>")
        await bob.join(room, "bob")
        r = await bob.iq(f"{room}@{SERVICE}", "get",
                         f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>")
        jids = [i.get("jid") for i in r.iter(f"{{{NS_ADMIN}}}item")]
        assert jids == [bob.bare], ET.tostring(r)
        # The owner list stays for admins and owners.
        await bob.iq(f"{room}@{SERVICE}", "get",
                     f"<query xmlns='{NS_ADMIN}'><item affiliation='owner'/></query>",
                     expect_error="forbidden")
    play(conf, scenario, "mla", "mlb")


# ---- 9: password-protected rooms -----------------------------------------------------------------

def test_issue23_unsupported_room_options_are_refused_not_ignored(conf):
    """XEP-0045 §10.2: a form asking for a password-protected room (not supported) is refused
    with not-acceptable, and the room is left as it was."""
    async def scenario(alice, bob):
        room = f"secret{next(_serial)}"
        await create_room(alice, room)
        r = await alice.iq(
            f"{room}@{SERVICE}", "set",
            f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_DATA}' type='submit'>"
            f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            f"<field var='muc#roomconfig_roomname'><value>Changed</value></field>"
            f"<field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field>"
            f"<field var='muc#roomconfig_roomsecret'><value>s3cret</value></field>"
            f"</x></query>", expect_error="not-acceptable")
        assert "passwordprotectedroom" in (r.findtext(f".//{{{NS_STANZAS}}}text") or ""), ET.tostring(r)
        r = await bob.iq(f"{room}@{SERVICE}", "get", f"<query xmlns='{NS_INFO}'/>")
        ident = r.find(f"{{{NS_INFO}}}query/{{{NS_INFO}}}identity")
        assert ident.get("name") != "Changed"  # nothing of the refused form was applied
        feats = [f.get("var") for f in r.iter(f"{{{NS_INFO}}}feature")]
        assert "muc_unsecured" in feats and "muc_passwordprotected" not in feats
        await bob.join(room, "bob")
    play(conf, scenario, "pwa", "pwb")


# ---- 10: registration and the reserved nickname --------------------------------------------------

def test_issue23_registration_reserves_a_nickname_named_on_the_x_roomuser_item_node(conf):
    """XEP-0045 §7.10: a user registers with a room (form muc#register_roomnick), becomes a member
    and reserves the nickname, which nobody else may join under or register; §7.12: the
    x-roomuser-item node answers with the reserved nickname, or an empty query before, never
    the room's own disco#info."""
    async def scenario(alice, bob, carol):
        room = f"reserve{next(_serial)}"
        jid = f"{room}@{SERVICE}"
        await create_room(alice, room)
        node = f"<query xmlns='{NS_INFO}' node='x-roomuser-item'/>"
        r = await bob.iq(jid, "get", node)
        q = r.find(f"{{{NS_INFO}}}query")
        assert q is not None and q.get("node") == "x-roomuser-item" and list(q) == [], ET.tostring(r)
        r = await bob.iq(jid, "get", "<query xmlns='jabber:iq:register'/>")
        assert "muc#register_roomnick" in {f.get("var") for f in r.iter(f"{{{NS_DATA}}}field")}
        form = ("<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
                "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>"
                "<field var='muc#register_roomnick'><value>{}</value></field></x></query>")
        await bob.iq(jid, "set", form.format("bobby"))
        r = await bob.iq(jid, "get", "<query xmlns='jabber:iq:register'/>")
        assert r.find("{jabber:iq:register}query/{jabber:iq:register}registered") is not None
        assert r.findtext("{jabber:iq:register}query/{jabber:iq:register}username") == "bobby"
        r = await bob.iq(jid, "get", node)
        ident = r.find(f"{{{NS_INFO}}}query/{{{NS_INFO}}}identity")
        assert ident is not None and ident.get("name") == "bobby", ET.tostring(r)
        r = await alice.iq(jid, "get", f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>")
        assert [i.get("jid") for i in r.iter(f"{{{NS_ADMIN}}}item")] == [bob.bare], ET.tostring(r)
        await carol.join(room, "bobby", expect_error="conflict")
        await carol.iq(jid, "set", form.format("bobby"), expect_error="conflict")
        await bob.join(room, "bobby")
    play(conf, scenario, "rna", "rnb", "rnc")


# ---- requirements that already held, shown here for docs/compliance.md ---------------------------

def test_roster_blocking_and_routing_refusals(conf):
    """RFC 6121 §2.1.5 (one item per roster set, not the user's own JID) and §2.1.2.2 (no empty
    group name); XEP-0191 §3.1-3.5 (feature, block push, <blocked/> on outbound stanzas,
    unblock-all); XEP-0030 §3.1 for the server; RFC 6120 §10.5.3.1 and §10.5.4 (no such user,
    no such resource)."""
    async def scenario(alice, bob):
        await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}'/>")
        two = f"<item jid='{bob.bare}'/><item jid='x@{conf.domain}'/>"
        await alice.iq(alice.bare, "set", f"<query xmlns='{NS_ROSTER}'>{two}</query>",
                       expect_error="bad-request")
        await alice.iq(alice.bare, "set", f"<query xmlns='{NS_ROSTER}'><item jid='{alice.bare}'/></query>",
                       expect_error="bad-request")
        await alice.iq(alice.bare, "set",
                       f"<query xmlns='{NS_ROSTER}'><item jid='{bob.bare}'><group></group></item></query>",
                       expect_error="not-acceptable")
        for entity in (conf.domain, alice.bare):  # XEP-0030 §3.2: no nodes here
            await bob.iq(entity, "get", f"<query xmlns='{NS_INFO}' node='nope'/>",
                         expect_error="item-not-found")
        r = await alice.iq(conf.domain, "get", f"<query xmlns='{NS_INFO}'/>")
        assert r.find(f"{{{NS_INFO}}}query/{{{NS_INFO}}}identity").get("category") == "server"
        feats = {f.get("var") for f in r.iter(f"{{{NS_INFO}}}feature")}
        assert {NS_INFO, NS_BLOCKING, "urn:xmpp:carbons:2", "urn:xmpp:sm:3"} <= feats, feats
        await alice.iq(alice.bare, "set", f"<block xmlns='{NS_BLOCKING}'><item jid='{bob.bare}'/></block>")
        await alice.push(lambda q: q.find(f"{{{NS_BLOCKING}}}block/{{{NS_BLOCKING}}}item") is not None,
                         what="block push")
        alice.send(f"<message to='{bob.bare}' type='chat' id='blk'><body>hi</body></message>")
        err = await alice.message(lambda m: m.get("type") == "error" and m.get("id") == "blk",
                                  what="blocked error")
        assert err.find(f"{C}error/{{{NS_STANZAS}}}not-acceptable") is not None, ET.tostring(err)
        assert err.find(f"{C}error/{{urn:xmpp:blocking:errors}}blocked") is not None, ET.tostring(err)
        await alice.iq(alice.bare, "set", f"<unblock xmlns='{NS_BLOCKING}'/>")  # all
        r = await alice.iq(alice.bare, "get", f"<blocklist xmlns='{NS_BLOCKING}'/>")
        assert list(r.find(f"{{{NS_BLOCKING}}}blocklist")) == [], ET.tostring(r)
        await bob.iq(f"{alice.bare}/no-such-resource", "get", "<ping xmlns='urn:xmpp:ping'/>",
                     expect_error="service-unavailable")
        await bob.iq(f"nosuchuser@{conf.domain}", "get", "<ping xmlns='urn:xmpp:ping'/>",
                     expect_error="service-unavailable")
    play(conf, scenario, "rfa", "rfb")


def test_room_refusals_status_codes_and_archive_queries(conf):
    """XEP-0045 §7.2.4/§7.2.12 (status 100 and 170 on join), §7.2.9 (room full), §7.4 (groupchat
    from a non-occupant), §7.5 (private message to no such nick), §8.1 (subject by a participant),
    §10.2 (form for owners only); XEP-0030 §3.2 (unknown node); XEP-0313 §4.1.1 (form), §6
    (feature), §4.3 (unknown RSM id)."""
    async def scenario(alice, bob):
        room = f"refuse{next(_serial)}"
        p = await alice.join(room, alice.name)
        await alice.configure(room, persistentroom=1)
        assert {"100", "170"} <= set(codes(p)), codes(p)
        jid = f"{room}@{SERVICE}"
        bob.send(f"<message to='{jid}' type='groupchat' id='nj'><body>x</body></message>")
        err = await bob.message(lambda m: m.get("id") == "nj", what="non-occupant error")
        assert err.find(f"{C}error/{{{NS_STANZAS}}}not-acceptable") is not None, ET.tostring(err)
        await bob.iq(jid, "get", f"<query xmlns='{NS_OWNER}'/>", expect_error="forbidden")
        await bob.iq(jid, "get", f"<query xmlns='{NS_INFO}' node='no-such-node'/>",
                     expect_error="item-not-found")
        r = await bob.iq(jid, "get", f"<query xmlns='{NS_INFO}'/>")
        assert "urn:xmpp:mam:2" in {f.get("var") for f in r.iter(f"{{{NS_INFO}}}feature")}
        r = await bob.iq(jid, "get", "<query xmlns='urn:xmpp:mam:2'/>")
        fields = {f.get("var") for f in r.iter(f"{{{NS_DATA}}}field")}
        assert {"FORM_TYPE", "with", "start", "end"} <= fields, fields
        await bob.iq(jid, "set", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
                     "<after>no-such-id</after></set></query>", expect_error="item-not-found")
        await bob.join(room, "bob")
        bob.send(f"<message to='{jid}' type='groupchat' id='subj'><subject>mine</subject></message>")
        err = await bob.message(lambda m: m.get("id") == "subj" and m.get("type") == "error",
                                what="subject refusal")
        assert err.find(f"{C}error/{{{NS_STANZAS}}}forbidden") is not None, ET.tostring(err)
        bob.send(f"<message to='{jid}/nobody' type='chat' id='pm'><body>x</body></message>")
        err = await bob.message(lambda m: m.get("id") == "pm", what="private message error")
        assert err.find(f"{C}error/{{{NS_STANZAS}}}item-not-found") is not None, ET.tostring(err)
        bob.send(f"<presence to='{jid}/bob' type='unavailable'/>")
        await alice.presence_from(f"{jid}/bob", "unavailable")
        await alice.configure(room, maxusers=1)
        bob.drain_all()
        await bob.join(room, "bob", expect_error="service-unavailable")
    play(conf, scenario, "rra", "rrb")


def test_pending_request_redelivered_and_roster_remove_cancels_both_ways(conf):
    """RFC 6121 §3.1.3: a subscription request for a user with no session waits and is delivered
    at the user's next available presence; §2.5.2: removing the item cancels the subscription in
    both directions (the contact gets unsubscribe and unsubscribed, and its item follows)."""
    name, pw = new_user(conf, "pda")

    async def scenario(bob):
        bob.send(f"<presence to='{name}@{conf.domain}' type='subscribe'/>")
        await bob.marker(bob)  # the request was routed (and stored: nobody is online)
        alice = await sign_in(conf, name, pw)
        try:
            await alice.logged(lambda p: p.tag == f"{C}presence" and p.get("type") == "subscribe"
                               and p.get("from") == bob.bare, what="the stored request")
            await bob.iq(bob.bare, "get", f"<query xmlns='{NS_ROSTER}'/>")
            alice.send(f"<presence to='{bob.bare}' type='subscribed'/>")
            alice.send(f"<presence to='{bob.bare}' type='subscribe'/>")
            await bob.stanza(bob.pres, lambda p: p.get("type") == "subscribe", what="alice's request")
            bob.send(f"<presence to='{alice.bare}' type='subscribed'/>")
            await alice.stanza(alice.pres, lambda p: p.get("type") == "subscribed", what="approval")
            await bob.push(lambda q: any(i.get("subscription") == "both"
                                         for i in q.iter(f"{{{NS_ROSTER}}}item")), what="both")
            await alice.iq(alice.bare, "get", f"<query xmlns='{NS_ROSTER}'/>")
            await alice.iq(alice.bare, "set", f"<query xmlns='{NS_ROSTER}'><item jid='{bob.bare}' "
                           f"subscription='remove'/></query>")
            for t in ("unsubscribe", "unsubscribed"):
                await bob.logged(lambda p: p.tag == f"{C}presence" and p.get("type") == t
                                 and p.get("from") == alice.bare, what=t)
            await bob.push(lambda q: any(i.get("subscription") == "none"
                                         for i in q.iter(f"{{{NS_ROSTER}}}item")), what="none")
        finally:
            await alice.close()
    play(conf, scenario, "pdb")


def test_instant_room_cancelled_creation_and_members_only_removals(conf):
    """XEP-0045 §10.1.2 (an empty form makes an instant room), §10.1.3 (cancelling the initial
    form destroys the room), §10.2 with §9.4 (a room made members-only removes non-members with
    322), §9.3-9.4 (a member whose membership is revoked leaves with 321)."""
    async def scenario(alice, bob, carol):
        instant = f"instant{next(_serial)}"
        await alice.join(instant, alice.name)
        await alice.iq(f"{instant}@{SERVICE}", "set",
                       f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_DATA}' type='submit'/></query>")
        await bob.join(instant, "bob")  # unlocked
        cancelled = f"cancel{next(_serial)}"
        await alice.join(cancelled, alice.name)
        await alice.iq(f"{cancelled}@{SERVICE}", "set",
                       f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_DATA}' type='cancel'/></query>")
        await bob.iq(f"{cancelled}@{SERVICE}", "get", f"<query xmlns='{NS_INFO}'/>",
                     expect_error="item-not-found")
        await alice.iq(f"{instant}@{SERVICE}", "set",
                       f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{carol.bare}'/></query>")
        await carol.join(instant, "carol")
        await alice.configure(instant, membersonly=1)
        gone = await bob.presence_from(f"{instant}@{SERVICE}/bob", "unavailable", what="322")
        assert "322" in codes(gone), codes(gone)
        await alice.iq(f"{instant}@{SERVICE}", "set",
                       f"<query xmlns='{NS_ADMIN}'><item affiliation='none' jid='{carol.bare}'/></query>")
        gone = await carol.presence_from(f"{instant}@{SERVICE}/carol", "unavailable", what="321")
        assert "321" in codes(gone), codes(gone)
    play(conf, scenario, "ira", "irb", "irc")
