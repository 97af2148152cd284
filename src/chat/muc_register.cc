// MucService part 5: registration with a room (XEP-0045 §7.10) and what it gives: a reserved
// nickname that nobody else may join under (§7.2.8), answered on the x-roomuser-item node
// (§7.12), and membership (a registered user of an open room becomes a member). In a
// members-only room only those already affiliated may register: membership there is the
// owners' and admins' to grant.
#include "chat/muc_service.h"
#include "chat/nickname.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

namespace tandem::chat {

namespace {

constexpr const char* kNsInfo = "http://jabber.org/protocol/disco#info";

std::string bareJid(const std::string& jid) {
  auto j = xmpp::Jid::parse(jid);
  return j ? j->bare() : jid;
}

}  // namespace

std::string MucService::reservedNick(const Room& room, const std::string& bare) const {
  auto it = room.rec.config.reserved_nicks.find(bare);
  return it == room.rec.config.reserved_nicks.end() ? "" : it->second;
}

bool MucService::isReservedForOther(const Room& room, const std::string& nick,
                                    const std::string& bare) const {
  for (const auto& [jid, reserved] : room.rec.config.reserved_nicks) {
    if (reserved == nick && jid != bare) return true;
  }
  return false;
}

void MucService::onRoomDiscoInfo(Room& room, const xml::Element& iq, const xml::Element& query) {
  const std::string node = query.attr("node");
  if (node.empty()) {
    send(roomDiscoInfo(room).setAttr("id", iq.attr("id")).setAttr("to", iq.attr("from")));
    return;
  }
  if (node != "x-roomuser-item") {
    sendError(iq, "cancel", "item-not-found", "The room has no disco node " + node + ".");
    return;
  }
  // §7.12: the nickname the asker registered, as an identity; nothing when none.
  xml::Element r = xmpp::iqResult(iq);
  auto& q = r.addChild(xml::Element("query", kNsInfo));
  q.setAttr("node", node);
  const std::string nick = reservedNick(room, bareJid(iq.attr("from")));
  if (!nick.empty()) {
    q.addChild(xml::Element("identity"))
        .setAttr("category", "conference")
        .setAttr("type", "text")
        .setAttr("name", nick);
  }
  send(r);
}

void MucService::onRegisterIq(Room& room, const xml::Element& iq, const xml::Element& query) {
  const std::string bare = bareJid(iq.attr("from"));
  const std::string aff = affiliationOf(room, bare);
  if (aff == "outcast" || (room.rec.config.members_only && aff == "none")) {
    sendError(iq, "auth", aff == "outcast" ? "forbidden" : "registration-required",
              aff == "outcast" ? "You are banned from this room."
                               : "This room is members-only: an owner or admin grants membership.");
    return;
  }
  const std::string mine = reservedNick(room, bare);
  if (iq.attr("type") == "get") {
    xml::Element r = xmpp::iqResult(iq);
    auto& q = r.addChild(xml::Element("query", kNsRegister));
    if (!mine.empty()) {  // already registered: say so, with the nickname
      q.addChild(xml::Element("registered"));
      q.addChild(xml::Element("username")).addText(mine);
    } else {
      q.addChild(xml::Element("instructions")).addText("Choose the nickname to register.");
      auto& x = q.addChild(xml::Element("x", kNsData));
      x.setAttr("type", "form");
      auto& t = x.addChild(xml::Element("field"));
      t.setAttr("var", "FORM_TYPE").setAttr("type", "hidden");
      t.addChild(xml::Element("value")).addText("http://jabber.org/protocol/muc#register");
      auto& f = x.addChild(xml::Element("field"));
      f.setAttr("var", "muc#register_roomnick").setAttr("type", "text-single");
      f.setAttr("label", "Nickname");
      f.addChild(xml::Element("required"));
    }
    send(r);
    return;
  }
  std::string nick;
  if (const auto* x = query.child("x", kNsData)) {
    for (const auto* f : x->childrenNamed("field")) {
      if (f->attr("var") == "muc#register_roomnick") nick = f->childText("value");
    }
  }
  if (!isValidNickname(nick, options_.limits.max_nick_bytes)) {
    sendError(iq, "modify", "not-acceptable", "Register a valid nickname (muc#register_roomnick).");
    return;
  }
  auto occupant = room.occupants.find(nick);
  if (isReservedForOther(room, nick, bare) ||
      (occupant != room.occupants.end() && occupant->second.bare != bare)) {
    sendError(iq, "cancel", "conflict", "That nickname is registered or in use by someone else.");
    return;
  }
  room.rec.config.reserved_nicks[bare] = nick;
  persistRoom(room);
  if (aff == "none") {  // §7.10: registering makes the user a member
    room.rec.affiliations[bare] = "member";
    persistAffiliation(room, bare, "member");
  }
  send(xmpp::iqResult(iq));
}

}  // namespace tandem::chat
