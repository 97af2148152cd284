"""Persistent chat: rooms, messages, history and MAM with real slixmpp and aioxmpp clients (#7).

A quickstart deployment (one front end, one chat server, one store). Alice and Bob sign in at the
front end; the chat server serves chat.example.test as an XEP-0114 component behind it.
"""

import asyncio
import itertools
import xml.etree.ElementTree as ET

import pytest

from lib.xmpp_clients import slix_connect

NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = "http://jabber.org/protocol/muc#user"
NS_OWNER = "http://jabber.org/protocol/muc#owner"
NS_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_SID = "urn:xmpp:sid:0"
SERVICE = "chat.example.test"
_ids = itertools.count(1)


# ---- helpers (chat section; generic client code is lib/xmpp_clients.py) ------------------------

class Chat:
    """One signed-in user, with raw-XML helpers for MUC and MAM."""

    def __init__(self, client):
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        self.c = client
        self.jid = str(client.boundjid)
        # slixmpp's own "message" event skips messages without a body (subjects, MAM results,
        # errors) and errors never reach "presence_available": take every stanza raw.
        self.msgs: asyncio.Queue = asyncio.Queue()
        self.pres: asyncio.Queue = asyncio.Queue()
        client.register_handler(Callback("chat-msgs", MatchXPath("{jabber:client}message"),
                                         lambda st: self.msgs.put_nowait(st)))
        client.register_handler(Callback("chat-pres", MatchXPath("{jabber:client}presence"),
                                         lambda st: self.pres.put_nowait(st)))

    def drain(self):
        while not self.msgs.empty():
            self.msgs.get_nowait()

    def send(self, xml: str):
        self.c.send_raw(xml)

    async def stanza(self, queue, pred, timeout=10, what="stanza"):
        item = await self.c.next_from(queue, timeout=timeout, what=what, pred=lambda s: pred(s.xml))
        return item.xml

    async def message(self, pred, timeout=10, what="message"):
        return await self.stanza(self.msgs, pred, timeout, what)

    async def join(self, room, nick, history=None, expect_error=None, timeout=10):
        h = "" if history is None else f"<history maxstanzas='{history}'/>"
        self.send(f"<presence to='{room}@{SERVICE}/{nick}'><x xmlns='{NS_MUC}'>{h}</x></presence>")
        full = f"{room}@{SERVICE}/{nick}"

        def mine(p):
            if p.get("type") == "error":  # a refused nickname is answered from the bare room
                return p.get("from") in (full, f"{room}@{SERVICE}")
            if p.get("from") != full:
                return False
            x = p.find(f"{{{NS_USER}}}x")
            return x is not None and any(s.get("code") == "110" for s in x.findall(f"{{{NS_USER}}}status"))

        p = await self.stanza(self.pres, mine, timeout, f"self-presence in {room}")
        if expect_error:
            assert p.get("type") == "error", f"{self.jid} joined {room} but expected {expect_error}"
            assert p.find(f".//{{urn:ietf:params:xml:ns:xmpp-stanzas}}{expect_error}") is not None, \
                ET.tostring(p)
            return p
        assert p.get("type") != "error", ET.tostring(p)
        return p

    async def iq(self, to, typ, payload, timeout=10, expect_error=None):
        iq_id = f"q{next(_ids)}"
        fut = asyncio.get_running_loop().create_future()
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        name = f"iq-{iq_id}"

        def on_iq(stanza):
            if stanza["id"] == iq_id and not fut.done():
                fut.set_result(stanza.xml)
        self.c.register_handler(Callback(name, MatchXPath("{jabber:client}iq"), on_iq))
        try:
            self.send(f"<iq type='{typ}' id='{iq_id}' to='{to}'>{payload}</iq>")
            r = await asyncio.wait_for(fut, timeout)
        finally:
            self.c.remove_handler(name)
        if expect_error:
            assert r.get("type") == "error", ET.tostring(r)
            assert r.find(f".//{{urn:ietf:params:xml:ns:xmpp-stanzas}}{expect_error}") is not None, \
                ET.tostring(r)
        else:
            assert r.get("type") == "result", ET.tostring(r)
        return r

    async def configure(self, room, **fields):
        vals = "".join(f"<field var='muc#roomconfig_{k}'><value>{v}</value></field>"
                       for k, v in fields.items())
        await self.iq(f"{room}@{SERVICE}", "set",
                      f"<query xmlns='{NS_OWNER}'><x xmlns='jabber:x:data' type='submit'>"
                      f"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value>"
                      f"</field>{vals}</x></query>")

    def say(self, room, body, origin=None):
        o = f"<origin-id xmlns='{NS_SID}' id='{origin}'/>" if origin else ""
        self.send(f"<message to='{room}@{SERVICE}' type='groupchat'><body>{body}</body>{o}</message>")

    async def reflection(self, room, body, timeout=10):
        return await self.message(
            lambda m: m.get("type") == "groupchat" and m.get("from", "").startswith(f"{room}@")
            and (m.findtext("{jabber:client}body") == body), timeout, f"reflection of {body!r}")

    async def mam(self, room, max_=None, after=None, before=None, timeout=15):
        """One MAM page: (bodies, stanza ids, fin element)."""
        qid = f"mam{next(_ids)}"
        rsm = ""
        if max_ is not None or after or before is not None:
            rsm = f"<set xmlns='{NS_RSM}'>"
            if max_ is not None:
                rsm += f"<max>{max_}</max>"
            if after:
                rsm += f"<after>{after}</after>"
            if before is not None:
                rsm += f"<before>{before}</before>"
            rsm += "</set>"
        fin_iq = await self.iq(f"{room}@{SERVICE}", "set",
                               f"<query xmlns='{NS_MAM}' queryid='{qid}'>{rsm}</query>", timeout)
        # Results arrive before the iq result on the same stream, so they are queued already.
        got = []
        while not self.msgs.empty():
            r = self.msgs.get_nowait().xml.find(f"{{{NS_MAM}}}result")
            if r is not None and r.get("queryid") == qid:
                got.append(r)
        bodies, ids = [], []
        for r in got:
            fwd = r.find("{urn:xmpp:forward:0}forwarded")
            msg = fwd.find("{jabber:client}message")
            bodies.append(msg.findtext("{jabber:client}body"))
            ids.append(r.get("id"))
        return bodies, ids, fin_iq.find(f"{{{NS_MAM}}}fin")


async def sign_in(d, user):
    fe = d.servers("frontend")[0]["address"]
    c = await slix_connect(d.jid(user), d.user(user)["password"], fe, d.ca_file(), roster=False)
    return Chat(c)


def wait_chat_serving(d, timeout=60):
    def attached():
        s = d.admin("chat1a.example.test", "/status")
        chat = s.get("chat", {})
        return chat.get("schema_ready") and any(f["attached"] for f in chat.get("frontends", []))
    d.wait_until(attached, timeout=timeout, what="chat server attached to the front end")


def push_newest_version(d):
    """Pushes the CMS's newest version to every server's replica, as the master's file transfer
    agent does. Used only when no agent pushed it within 3 s (the front end does not run the
    CMS master yet)."""
    import psycopg2
    store = next(p for p in d.pools("frontend") if p.get("cms"))["store"]
    with psycopg2.connect(host=d.address(store), dbname="xds", user="tandem",
                          password=d.token()) as conn, conn.cursor() as cur:
        cur.execute("SELECT version, epoch, to_char(created_at AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), author, kind, summary, document "
                    "FROM cms_versions ORDER BY epoch DESC, version DESC LIMIT 1")
        v, e, at, author, kind, summary, doc = cur.fetchone()
    body = {"version": v, "epoch": e, "created_at": at, "author": author, "kind": kind,
            "summary": summary, "document": doc}
    for s in d.servers():
        try:
            d.admin(s["fqdn"], "/cms/replica", method="PUT", body=body)
        except Exception:  # noqa: BLE001 - a server without a replica route
            pass



@pytest.fixture(scope="module")
def quick(deploy_module):
    d = deploy_module("examples/quickstart.yaml")
    wait_chat_serving(d)
    return d


# ---- tests --------------------------------------------------------------------------------------

def test_create_configure_join_talk_history_and_mam_paging(quick):
    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            # Alice creates a room (201, locked), configures it, Bob joins.
            p = await alice.join("design", "alice")
            codes = {s.get("code") for s in p.find(f"{{{NS_USER}}}x").findall(f"{{{NS_USER}}}status")}
            assert "201" in codes, codes
            await bob.join("design", "bob", expect_error="item-not-found")  # locked until configured
            await alice.configure("design", roomname="Design", persistentroom=1)
            await bob.join("design", "bob")
            # Five messages: each reflected to Alice (with our stanza-id) and delivered to Bob.
            for i in range(5):
                alice.say("design", f"m{i}", origin=f"o{i}")
                r = await alice.reflection("design", f"m{i}")
                sid = r.find(f"{{{NS_SID}}}stanza-id")
                assert sid is not None and sid.get("by") == f"design@{SERVICE}"
                await bob.reflection("design", f"m{i}")
            # Bob leaves and rejoins asking for 3 stanzas of history: m2..m4, delayed, then subject.
            bob.send(f"<presence to='design@{SERVICE}/bob' type='unavailable'/>")
            await bob.stanza(bob.pres, lambda p: p.get("type") == "unavailable", what="left")
            bob.drain()
            await bob.join("design", "bob", history=3)
            hist = []
            while True:
                m = await bob.message(lambda m: m.get("from", "").startswith("design@"), what="history")
                if m.find("{jabber:client}subject") is not None:
                    break
                if m.find("{urn:xmpp:delay}delay") is not None:
                    hist.append(m.findtext("{jabber:client}body"))
            assert hist == ["m2", "m3", "m4"], hist
            # MAM with paging: pages of 2 cover all 5, in order, then complete.
            bodies, ids, fin = await bob.mam("design", max_=2)
            assert bodies == ["m0", "m1"] and fin.get("complete") != "true"
            all_bodies = list(bodies)
            while fin.get("complete") != "true":
                bodies, ids2, fin = await bob.mam("design", max_=2, after=ids[-1])
                all_bodies += bodies
                ids = ids2 or ids
            assert all_bodies == [f"m{i}" for i in range(5)]
            last, _, _ = await bob.mam("design", max_=2, before="")
            assert last == ["m3", "m4"]
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(scenario())


def test_members_only_private_messages_kick_ban_destroy(quick):
    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            await alice.join("secret", "alice")
            await alice.configure("secret", membersonly=1)
            await bob.join("secret", "bob", expect_error="registration-required")
            # Bob cannot read the archive either.
            await bob.iq(f"secret@{SERVICE}", "set", f"<query xmlns='{NS_MAM}'/>", expect_error="forbidden")
            # Alice makes Bob a member: now he may join.
            await alice.iq(f"secret@{SERVICE}", "set",
                           f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{quick.jid('bob')}'/></query>")
            await bob.join("secret", "bob")
            # Private message through the room.
            bob.send(f"<message to='secret@{SERVICE}/alice' type='chat'><body>psst</body></message>")
            pm = await alice.message(lambda m: m.findtext("{jabber:client}body") == "psst", what="PM")
            assert pm.get("from") == f"secret@{SERVICE}/bob"
            # Bob may not kick the owner; Alice kicks Bob (307), then bans him (301).
            await bob.iq(f"secret@{SERVICE}", "set",
                         f"<query xmlns='{NS_ADMIN}'><item nick='alice' role='none'/></query>",
                         expect_error="not-allowed")
            await alice.iq(f"secret@{SERVICE}", "set",
                           f"<query xmlns='{NS_ADMIN}'><item nick='bob' role='none'><reason>out</reason></item></query>")
            gone = await bob.stanza(bob.pres, lambda p: p.get("type") == "unavailable"
                                    and p.get("from") == f"secret@{SERVICE}/bob", what="kick")
            assert {"307", "110"} <= {s.get("code") for s in gone.iter(f"{{{NS_USER}}}status")}
            await alice.iq(f"secret@{SERVICE}", "set",
                           f"<query xmlns='{NS_ADMIN}'><item affiliation='outcast' jid='{quick.jid('bob')}'/></query>")
            await bob.join("secret", "bob", expect_error="forbidden")
            # Alice destroys the room; it is gone from the service.
            await alice.iq(f"secret@{SERVICE}", "set",
                           f"<query xmlns='{NS_OWNER}'><destroy><reason>done</reason></destroy></query>")
            await bob.iq(f"secret@{SERVICE}", "get",
                         "<query xmlns='http://jabber.org/protocol/disco#info'/>", expect_error="item-not-found")
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(scenario())


def test_hostile_input_gets_errors_and_costs_others_nothing(quick):
    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            await alice.join("ops", "alice")   # demo room from the topology: exists, unlocked
            await bob.join("ops", "x" * 200, expect_error="jid-malformed")
            await bob.join("ops", "alice", expect_error="conflict")
            await bob.join("ops", "bob")
            alice.send(f"<message to='ops@{SERVICE}' type='groupchat' id='big'><body>{'A' * 70000}</body></message>")
            err = await alice.message(lambda m: m.get("type") == "error" and m.get("id") == "big", what="error")
            assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
            # A forged stanza-id is stripped and replaced by ours.
            alice.send(f"<message to='ops@{SERVICE}' type='groupchat'><body>hi</body>"
                       f"<stanza-id xmlns='{NS_SID}' id='forged' by='ops@{SERVICE}'/></message>")
            r = await bob.reflection("ops", "hi")
            ids = [s.get("id") for s in r.findall(f"{{{NS_SID}}}stanza-id")]
            assert len(ids) == 1 and ids[0] != "forged"
            # Invalid nicknames: each join gets the error presence, from the bare room JID
            # (a client cannot parse room@service/<TAB> either). Some are refused by the front
            # end (not a valid JID resource), the rest by the room (nickname rules).
            carol = await sign_in(quick, "alice")  # a second session of Alice's account
            try:
                invalid = {"tab": "a&#9;b", "newline": "a&#10;b", "empty": "", "spaces": "   ",
                           "lead": " carol", "trail": "carol ", "huge": "y" * 1100,
                           "long": "z" * 100, "del": "a\x7fb", "c1": "a\u0085b",
                           "bidi": "a\u202eb", "zwsp": "a\u200bb", "decomposed": "e\u0301lodie"}
                for case, nick in invalid.items():
                    carol.send(f"<presence id='nick-{case}' to='ops@{SERVICE}/{nick}'>"
                               f"<x xmlns='{NS_MUC}'/></presence>")
                    err = await carol.stanza(carol.pres, lambda p: p.get("id") == f"nick-{case}",
                                             what=f"error presence for the {case} nickname")
                    assert err.get("type") == "error", ET.tostring(err)
                    assert err.get("from") == f"ops@{SERVICE}", ET.tostring(err)
                    assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}jid-malformed") \
                        is not None, ET.tostring(err)
                # A nickname the room accepts still joins on the same session.
                await carol.join("ops", "carol")
            finally:
                await carol.c.close()
            # A character XML forbids (U+0001) is a broken stream, not a join: stream error,
            # only that session ends, and the room keeps serving the others.
            dave = await sign_in(quick, "alice")
            dave.send(f"<presence to='ops@{SERVICE}/a&#1;b'><x xmlns='{NS_MUC}'/></presence>")
            err = await dave.c.next_from(dave.c.stream_errors, timeout=10, what="stream error")
            assert err["condition"] == "not-well-formed", err
            await asyncio.wait_for(dave.c.ended.wait(), 10)
            alice.say("ops", "after the bad nicknames")
            await bob.reflection("ops", "after the bad nicknames")
            # Huge subject and huge private message: refused, not relayed.
            await alice.join("hostile", "alice")
            await alice.configure("hostile", changesubject=1)
            alice.send(f"<message to='hostile@{SERVICE}' type='groupchat' id='bigsub'>"
                       f"<subject>{'S' * 70000}</subject></message>")
            err = await alice.message(lambda m: m.get("type") == "error", what="subject error")
            assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
            alice.send(f"<message to='ops@{SERVICE}/bob' type='chat' id='bigpm'><body>{'P' * 70000}</body></message>")
            err = await alice.message(lambda m: m.get("type") == "error", what="PM error")
            assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
            # Join flood: many nicknames from one session (nickname changes, capped per occupant
            # at 5 in 10 s: the rest get resource-constraint); the room keeps working.
            for i in range(50):
                bob.send(f"<presence to='ops@{SERVICE}/flood{i}'><x xmlns='{NS_MUC}'/></presence>")
            refused = await bob.stanza(
                bob.pres, lambda p: p.get("type") == "error" and p.find(
                    ".//{urn:ietf:params:xml:ns:xmpp-stanzas}resource-constraint") is not None,
                what="nickname change flood refused")
            assert refused is not None
            # Join flood from many sessions: 20 more sessions join, the room keeps working.
            crowd = [await sign_in(quick, "bob") for _ in range(20)]
            try:
                for i, c in enumerate(crowd):
                    c.send(f"<presence to='ops@{SERVICE}/crowd{i}'><x xmlns='{NS_MUC}'/></presence>")
                alice.say("ops", "still here")
                await bob.reflection("ops", "still here", timeout=15)
                await crowd[-1].reflection("ops", "still here", timeout=15)
            finally:
                for c in crowd:
                    await c.c.close()
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(scenario())


def test_nickname_change(quick):
    """XEP-0045 §7.6: 303 unavailable from the old nickname (item nick = new), then available
    from the new one; conflicts and invalid nicknames are refused; messages carry the new nick."""
    def codes(p):
        return {st.get("code") for st in p.iter(f"{{{NS_USER}}}status")}

    async def scenario():
        alice, bob = await sign_in(quick, "alice"), await sign_in(quick, "bob")
        try:
            await alice.join("nicks", "alice")
            await alice.configure("nicks", roomname="Nicks")
            await bob.join("nicks", "bob")
            await alice.stanza(alice.pres, lambda p: p.get("from") == f"nicks@{SERVICE}/bob",
                               what="bob's join seen by alice")
            for c in (alice, bob):
                while not c.pres.empty():
                    c.pres.get_nowait()
            bob.send(f"<presence to='nicks@{SERVICE}/robert'/>")
            for who, self_ in ((alice, False), (bob, True)):
                gone = await who.stanza(who.pres, lambda p: p.get("from") == f"nicks@{SERVICE}/bob"
                                        and p.get("type") == "unavailable", what="303 presence")
                assert "303" in codes(gone) and ("110" in codes(gone)) == self_, codes(gone)
                item = gone.find(f"{{{NS_USER}}}x/{{{NS_USER}}}item")
                assert item.get("nick") == "robert"
                new = await who.stanza(who.pres, lambda p: p.get("from") == f"nicks@{SERVICE}/robert",
                                       what="presence from the new nickname")
                assert new.get("type") is None and ("110" in codes(new)) == self_
            bob.say("nicks", "renamed")
            m = await alice.reflection("nicks", "renamed")
            assert m.get("from") == f"nicks@{SERVICE}/robert"
            # The old nickname is free again; the new one is taken.
            alice.send(f"<presence to='nicks@{SERVICE}/robert'/>")
            err = await alice.stanza(alice.pres, lambda p: p.get("type") == "error", what="conflict")
            assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None
            alice.send(f"<presence to='nicks@{SERVICE}/{'n' * 100}'/>")
            err = await alice.stanza(alice.pres, lambda p: p.get("type") == "error", what="too long")
            assert err.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}jid-malformed") is not None
            alice.send(f"<presence to='nicks@{SERVICE}/bob'/>")
            mine = await alice.stanza(alice.pres, lambda p: p.get("from") == f"nicks@{SERVICE}/bob"
                                      and p.get("type") is None, what="alice takes the old nick")
            assert "110" in codes(mine)
        finally:
            await alice.c.close()
            await bob.c.close()
    asyncio.run(scenario())


# ---- aioxmpp ----------------------------------------------------------------------------------

def test_aioxmpp_creates_configures_talks_with_history_members_only_pm_kick_ban(quick):
    """The same room features through aioxmpp's own MUC client (aioxmpp.MUCClient), with slixmpp
    users in the room: create + configure (aioxmpp's ConfigurationForm), groupchat both ways,
    history on join, members-only refusal, a private message, kick (307) and ban (301). MAM and
    destroy have no aioxmpp 0.13 API; the slixmpp tests above cover them."""
    import aioxmpp
    import aioxmpp.muc
    import aioxmpp.muc.xso
    from lib.xmpp_clients import aio_connect

    fe = quick.servers("frontend")[0]["address"]

    async def aio(user, resource):
        c = await aio_connect(f"{quick.jid(user)}/{resource}", quick.user(user)["password"], fe,
                              quick.ca_file())
        return c, c.client.summon(aioxmpp.MUCClient)

    async def join(muc, room, nick, maxstanzas=0):
        messages: asyncio.Queue = asyncio.Queue()
        r, fut = muc.join(aioxmpp.JID.fromstr(f"{room}@{SERVICE}"), nick,
                          history=aioxmpp.muc.xso.History(maxstanzas=maxstanzas), autorejoin=False)
        r.on_message.connect(lambda msg, member, source, **kw: messages.put_nowait(msg))
        await asyncio.wait_for(fut, 10)
        return r, messages

    async def configure(muc, room, **values):
        jid = aioxmpp.JID.fromstr(f"{room}@{SERVICE}")
        form = aioxmpp.muc.ConfigurationForm.from_xso(await muc.get_room_config(jid))
        for k, v in values.items():
            getattr(form, k).value = v
        await muc.set_room_config(jid, form.render_reply())

    async def say(r, body):
        msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
        msg.body[None] = body
        await r.send_message(msg)

    async def body_of(messages, want, timeout=10):
        async def find():
            while True:
                m = await messages.get()
                if m.body and m.body.any() == want:
                    return m
        return await asyncio.wait_for(find(), timeout)

    async def scenario():
        alice_c, alice_muc = await aio("alice", "aio")
        carol = bob = None
        try:
            # Create (locked until configured) and configure through aioxmpp's form.
            room, alice_msgs = await join(alice_muc, "aio-room", "alice")
            await configure(alice_muc, "aio-room", roomname="aioxmpp room", persistentroom=True)
            bob = await sign_in(quick, "bob")
            await bob.join("aio-room", "bob")
            # Groupchat both ways between aioxmpp and slixmpp.
            await say(room, "from aioxmpp")
            await bob.reflection("aio-room", "from aioxmpp")
            bob.say("aio-room", "from slixmpp")
            await body_of(alice_msgs, "from slixmpp")
            # History on join: a second aioxmpp session (bob's) asks for the last 2 stanzas.
            carol, carol_muc = await aio("bob", "aio-history")
            _, hist_msgs = await join(carol_muc, "aio-room", "bob-history", maxstanzas=2)
            got = [(await hist_msgs.get()).body.any() for _ in range(2)]
            assert got == ["from aioxmpp", "from slixmpp"], got
            # A private message from aioxmpp through the room reaches bob from alice's occupant JID.
            pm = aioxmpp.Message(to=aioxmpp.JID.fromstr(f"aio-room@{SERVICE}/bob"),
                                 type_=aioxmpp.MessageType.CHAT)
            pm.body[None] = "psst from aioxmpp"
            await alice_c.client.send(pm)
            m = await bob.message(lambda m: m.findtext("{jabber:client}body") == "psst from aioxmpp",
                                  what="PM")
            assert m.get("from") == f"aio-room@{SERVICE}/alice"
            # Kick (307) and ban (301) through aioxmpp's Room.
            member = next(o for o in room.members if o.nick == "bob")
            await room.kick(member, "out")
            gone = await bob.stanza(bob.pres, lambda p: p.get("type") == "unavailable"
                                    and p.get("from") == f"aio-room@{SERVICE}/bob", what="kick")
            assert "307" in {s.get("code") for s in gone.iter(f"{{{NS_USER}}}status")}
            member = next(o for o in room.members if o.nick == "bob-history")
            await room.ban(member, "banned")
            await bob.join("aio-room", "bob", expect_error="forbidden")
            # Members-only: a new room refuses a non-member joining with aioxmpp.
            await join(alice_muc, "aio-members", "alice")
            await configure(alice_muc, "aio-members", membersonly=True)
            dave, dave_muc = await aio("bob", "aio-members")  # bob is not a member
            try:
                refused = None
                try:
                    await join(dave_muc, "aio-members", "bob")
                except aioxmpp.errors.XMPPError as e:
                    refused = e
                assert refused is not None and "registration" in str(refused.condition).lower(), refused
            finally:
                await dave.close()
        finally:
            await alice_c.close()
            if carol:
                await carol.close()
            if bob:
                await bob.c.close()
    asyncio.run(scenario())
