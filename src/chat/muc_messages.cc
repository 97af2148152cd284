// MucService part 2: messages. Groupchat messages are made durable (group commit into mgc)
// before they are broadcast; the sender's reflection is part of that broadcast.
#include <spdlog/spdlog.h>

#include "chat/muc_service.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

namespace tandem::chat {

namespace {

// `stanza` (serialized, starting with "<message") with a `to` attribute added.
std::string addressedTo(const std::string& stanza, const std::string& to) {
  std::string s = stanza;
  s.insert(std::string("<message").size(), " to=\"" + xml::escape(to) + "\"");
  return s;
}

}  // namespace

void MucService::onMessage(Room& room, const xml::Element& m, const std::string& nick) {
  const std::string type = m.attr("type");
  if (type == "error") return;
  if (!room.exists) {
    sendError(m, "cancel", "item-not-found", "No such room.");
    return;
  }
  if (room.unsaved) {  // nothing may be stored before the room itself is
    sendError(m, "cancel", "not-allowed",
              "The room is not created yet; its owner must submit its configuration form first.");
    return;
  }
  const std::string from = m.attr("from");
  auto sender = room.nick_of.find(from);
  if (!nick.empty()) {  // private message to one occupant (XEP-0045 §7.5)
    if (sender == room.nick_of.end()) {
      sendError(m, "modify", "not-acceptable", "Join the room before sending private messages.");
      return;
    }
    auto target = room.occupants.find(nick);
    if (target == room.occupants.end()) {
      sendError(m, "cancel", "item-not-found", "No occupant with that nickname.");
      return;
    }
    if (m.childText("body").size() > options_.limits.max_body_bytes) {
      sendError(xml::Element(m.name()).setAttr("from", from).setAttr("to", m.attr("to")),
                "modify", "not-acceptable", "The message is too large.");
      return;
    }
    xml::Element pm = m;
    pm.setAttr("from", roomJid(room) + "/" + sender->second);
    pm.removeChildren("x", kNsMucUser);
    pm.addChild(xml::Element("x", kNsMucUser));
    for (const auto& s : target->second.sessions) {
      pm.setAttr("to", s);
      send(pm);
    }
    return;
  }
  if (type == "groupchat") {
    if (sender == room.nick_of.end()) {
      sendError(m, "modify", "not-acceptable", "Join the room before sending messages to it.");
      return;
    }
    // XEP-0045 §8.1: only a <subject/> with neither <body/> nor <thread/> changes the subject.
    if (m.child("subject") && !m.child("body") && !m.child("thread")) {
      onSubject(room, m, sender->second);
    } else {
      onGroupchat(room, m, sender->second);
    }
    return;
  }
  if (const auto* x = m.child("x", kNsMucUser)) {
    if (const auto* invite = x->child("invite")) {
      onInvite(room, m, *invite);
      return;
    }
    if (x->child("decline")) return;  // declines are not relayed
  }
  sendError(m, "modify", "bad-request", "Send groupchat messages to the room.");
}

void MucService::onGroupchat(Room& room, const xml::Element& m, const std::string& nick) {
  Occupant& o = room.occupants[nick];
  if (o.role == "visitor") {
    sendError(m, "auth", "forbidden", "Visitors may not speak in this moderated room.");
    return;
  }
  const std::string body = m.childText("body");
  if (body.size() > options_.limits.max_body_bytes) {
    ++stats_.messages_refused;
    xml::Element bare_msg("message");  // do not echo a huge body back
    bare_msg.setAttr("from", m.attr("from")).setAttr("to", m.attr("to"));
    bare_msg.setAttr("id", m.attr("id"));
    sendError(bare_msg, "modify", "not-acceptable",
              "The message is larger than " + std::to_string(options_.limits.max_body_bytes) +
                  " bytes.");
    return;
  }
  // The broadcast form: from the occupant, our stanza id (XEP-0359 §3: strip any stanza-id
  // claiming to be by this room, which a sender could forge).
  xml::Element out("message");
  for (const auto& [k, v] : m.attrs()) {
    if (k != "to" && k != "from" && k != "xmlns") out.setAttr(k, v);
  }
  out.setAttr("from", roomJid(room) + "/" + nick);
  out.setAttr("type", "groupchat");
  std::string origin_id;
  for (const auto& ch : m.children()) {
    if (ch.isText()) continue;
    if (ch.name() == "stanza-id" && ch.xmlns() == kNsSid) continue;
    if (ch.name() == "origin-id" && ch.xmlns() == kNsSid) origin_id = ch.attr("id");
    out.addChild(ch);
  }
  StoredMessage sm;
  sm.room = room.rec.name;
  sm.stanza_id = xmpp::newId() + xmpp::newId().substr(0, 6);
  out.addChild(xml::Element("stanza-id", kNsSid)).setAttr("id", sm.stanza_id).setAttr("by", roomJid(room));
  sm.origin_id = origin_id;
  sm.sender = o.bare;
  sm.nick = nick;
  sm.body = body;
  sm.ts_us = nowMicros();
  std::string broadcast = out.toString();
  out.setAttr("xmlns", "jabber:client");  // the archived copy is forwarded inside MAM results
  sm.stanza = out.toString();
  const std::string name = room.rec.name;
  const std::string from = m.attr("from"), to = m.attr("to"), id = m.attr("id");
  auto alive = alive_;
  writer_.submit(std::move(sm), [this, alive, name, broadcast, from, to, id](
                                    const Status& st, const StoredMessage&) {
    asio::post(home_, [this, alive, name, broadcast, from, to, id, st]() {
      if (!*alive) return;
      if (!st.isOk()) {
        ++stats_.messages_refused;
        xml::Element orig("message");
        orig.setAttr("from", from).setAttr("to", to).setAttr("id", id).setAttr("type", "groupchat");
        sendError(orig, "wait", "resource-constraint",
                  "The chat store is unavailable; the message was not stored. Send it again.");
        return;
      }
      ++stats_.messages_stored;
      auto it = rooms_.find(name);
      if (it == rooms_.end()) return;  // the room moved away meanwhile: nobody left to tell
      deliver(*it->second, broadcast);
    });
  });
}

void MucService::deliver(Room& room, const std::string& stanza) {
  ++stats_.messages_broadcast;
  for (auto& [nick, o] : room.occupants) {
    for (const auto& s : o.sessions) {
      ++stats_.deliveries;
      if (o.history_pending) {
        o.buffered.push_back(addressedTo(stanza, s));
      } else {
        send_(addressedTo(stanza, s));
      }
    }
  }
}

void MucService::onSubject(Room& room, const xml::Element& m, const std::string& nick) {
  const Occupant& o = room.occupants[nick];
  if (o.role != "moderator" && !(room.rec.config.change_subject && o.role == "participant")) {
    sendError(m, "auth", "forbidden", "Only moderators may change the subject.");
    return;
  }
  std::string subject = m.childText("subject");
  if (subject.size() > options_.limits.max_body_bytes) {
    sendError(xml::Element("message").setAttr("from", m.attr("from")).setAttr("to", m.attr("to")),
              "modify", "not-acceptable", "The subject is too long.");
    return;
  }
  room.rec.subject = subject;
  room.rec.subject_nick = nick;
  persistRoom(room);
  xml::Element out("message");
  out.setAttr("from", roomJid(room) + "/" + nick);
  out.setAttr("type", "groupchat");
  out.setAttr("id", m.attr("id").empty() ? xmpp::newId() : m.attr("id"));
  out.addChild(xml::Element("subject")).addText(subject);
  deliver(room, out.toString());
}

void MucService::onInvite(Room& room, const xml::Element& m, const xml::Element& invite) {
  const std::string from = m.attr("from");
  const std::string bare = xmpp::Jid::parse(from) ? xmpp::Jid::parse(from)->bare() : from;
  const std::string aff = affiliationOf(room, bare);
  bool occupant = room.nick_of.count(from) > 0;
  bool admin = aff == "owner" || aff == "admin";
  if (!occupant || (!admin && !room.rec.config.allow_invites)) {
    sendError(m, "auth", "forbidden", "You may not invite to this room.");
    return;
  }
  auto invitee = xmpp::Jid::parse(invite.attr("to"));
  if (!invitee) {
    sendError(m, "modify", "jid-malformed", "The invitee address is not a valid JID.");
    return;
  }
  if (room.rec.config.members_only && affiliationOf(room, invitee->bare()) == "none") {
    // XEP-0045 §7.8.2: in a members-only room an invitation adds the invitee to the member list.
    room.rec.affiliations[invitee->bare()] = "member";
    persistAffiliation(room, invitee->bare(), "member");
  }
  xml::Element out("message");
  out.setAttr("from", roomJid(room));
  out.setAttr("to", invitee->full());
  out.setAttr("id", m.attr("id").empty() ? xmpp::newId() : m.attr("id"));
  auto& x = out.addChild(xml::Element("x", kNsMucUser));
  auto& inv = x.addChild(xml::Element("invite"));
  inv.setAttr("from", from);
  if (const auto* reason = invite.child("reason")) inv.addChild(*reason);
  send(out);
}

}  // namespace tandem::chat
