// MucService part 1: dispatch, room loading, presence (join, leave, kick), eviction, destroy.
//
// - Every stanza for a room waits until the room's record is loaded from mgc (one load per
//   room, stanzas queued meanwhile), then runs in arrival order on the home executor.
// - A join sends, in XEP-0045 §7.2 order: the other occupants' presence, the joiner's presence
//   to everyone (self-presence last, status 110), the discussion history, then the subject.
//   Live messages for the joiner are buffered until its history has been sent.
#include "chat/muc_service.h"

#include <spdlog/spdlog.h>

#include "chat/nickname.h"
#include "chat/schema.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

namespace tandem::chat {

namespace {

std::string bareOf(const std::string& jid) {
  auto j = xmpp::Jid::parse(jid);
  return j ? j->bare() : jid;
}

// The history a join asks for (XEP-0045 §7.2.13): at most `stanzas`, none older than `since`.
struct HistoryRequest {
  size_t stanzas = 20;
  std::optional<int64_t> since_us;
};
HistoryRequest historyRequested(const xml::Element& p, size_t cap) {
  HistoryRequest r;
  if (const auto* x = p.child("x", kNsMuc)) {
    if (const auto* h = x->child("history")) {
      if (h->hasAttr("maxstanzas")) r.stanzas = std::strtoul(h->attr("maxstanzas").c_str(), nullptr, 10);
      if (h->hasAttr("seconds")) {
        r.since_us = nowMicros() - int64_t(std::strtoll(h->attr("seconds").c_str(), nullptr, 10)) * 1000000;
      }
      if (h->hasAttr("since")) r.since_us = parseTimestamp(h->attr("since"));
      if (h->hasAttr("maxchars") && h->attr("maxchars") == "0") r.stanzas = 0;
    }
  }
  r.stanzas = std::min(r.stanzas, cap);
  return r;
}

std::vector<xml::Element> showAndStatus(const xml::Element& p) {
  std::vector<xml::Element> out;
  for (const auto& ch : p.children()) {
    if (ch.name() == "show" || ch.name() == "status") out.push_back(ch);
  }
  return out;
}

}  // namespace

MucService::MucService(asio::any_io_executor home, Options o, GroupCommitWriter& writer,
                       DbRunner& db, Sender send, OwnerCheck owns)
    : home_(home),
      options_(std::move(o)),
      writer_(writer),
      db_(db),
      send_(std::move(send)),
      owns_(std::move(owns)) {}

MucService::~MucService() { *alive_ = false; }

void MucService::setDefaultCategory(std::string category) {
  if (category.empty()) category = kDefaultCategory;
  if (category != default_category_) {
    spdlog::info("chat service {}: rooms created over XMPP start in category {}",
                 options_.service, category);
  }
  default_category_ = std::move(category);
}

MucStats MucService::stats() const {
  MucStats s = stats_;
  s.rooms = 0;
  s.occupants = 0;
  for (const auto& [name, room] : rooms_) {
    if (room->loaded && room->exists) ++s.rooms;
    s.occupants += room->occupants.size();
  }
  return s;
}

std::vector<std::string> MucService::loadedRooms() const {
  std::vector<std::string> out;
  for (const auto& [name, room] : rooms_) {
    if (room->loaded && room->exists) out.push_back(name);
  }
  return out;
}

void MucService::sendError(const xml::Element& stanza, const std::string& type,
                           const std::string& cond, const std::string& text) {
  if (stanza.attr("type") == "error") return;  // never answer an error with an error
  send(xmpp::errorReply(stanza, type, cond, text));
}

// XEP-0045 §7.2.1: a join (or nickname change) with a nickname the room refuses gets an error
// presence. It comes from the bare room JID, not room@service/nick: a client that cannot parse
// the nickname (a TAB, a C1 control) cannot parse that address either, and slixmpp drops the
// stream on a stanza whose 'from' it cannot parse, so the user would never learn why.
void MucService::refuseNickname(const Room& room, const xml::Element& p) {
  if (p.attr("type") == "error") return;
  xml::Element err = xmpp::errorReply(p, "modify", "jid-malformed",
                                      "That nickname is not allowed (1 to " +
                                          std::to_string(options_.limits.max_nick_bytes) +
                                          " bytes of UTF-8, no control or format characters, "
                                          "no leading or trailing spaces).");
  err.setAttr("from", roomJid(room));
  send(err);
}

// --- dispatch ------------------------------------------------------------------------------

void MucService::handle(xml::Element stanza) {
  auto to = xmpp::Jid::parse(stanza.attr("to"));
  if (!to || stanza.attr("from").empty()) {
    sendError(stanza, "modify", "jid-malformed", "The address is not a valid JID.");
    return;
  }
  if (to->local.empty()) {
    if (stanza.name() == "iq") {
      onServiceIq(stanza);
    } else if (stanza.name() == "message" || stanza.attr("type") == "probe") {
      sendError(stanza, "cancel", "feature-not-implemented");
    }
    return;
  }
  const std::string name = to->local;
  if (!active_ || !owns_(name)) {
    sendError(stanza, "wait", "service-unavailable",
              active_ ? "Room " + name + "@" + options_.service + " is served by another chat "
                            "server; try again in a moment."
                      : "Chat server " + options_.server + " is not on the active server list.");
    return;
  }
  auto& slot = rooms_[name];
  if (!slot) {
    slot = std::make_unique<Room>();
    slot->rec.name = name;
  }
  Room& room = *slot;
  if (!room.loaded) {
    if (room.waiting.size() >= 1000) {
      sendError(stanza, "wait", "resource-constraint", "The room is still loading.");
      return;
    }
    room.waiting.push_back(std::move(stanza));
    if (room.waiting.size() == 1) loadRoom(name);
    return;
  }
  dispatch(room, std::move(stanza));
}

void MucService::dispatch(Room& room, xml::Element stanza) {
  auto to = xmpp::Jid::parse(stanza.attr("to"));
  const std::string nick = to ? to->resource : "";
  if (stanza.name() == "presence") {
    onPresence(room, stanza, nick);
  } else if (stanza.name() == "message") {
    onMessage(room, stanza, nick);
  } else if (stanza.name() == "iq") {
    if (!nick.empty()) {
      sendError(stanza, "cancel", "feature-not-implemented",
                "Queries to occupants are not relayed.");
    } else {
      onRoomIq(room, stanza);
    }
  }
}

void MucService::loadRoom(const std::string& name) {
  auto alive = alive_;
  // On the write strand, not the read pool: a load must see every earlier create, save and
  // delete of the room (e.g. a destroy followed at once by a query).
  const std::string fresh_category = default_category_;  // for a room that does not exist yet
  db_.write([this, alive, name, fresh_category](Result<store::Connection*> c)
                -> std::function<void()> {
    Status st;
    std::optional<RoomRecord> rec;
    std::optional<Category> cat;
    if (!c) {
      st = c.error();
    } else {
      auto r = chat::loadRoom(**c, name);
      if (!r) {
        st = r.error();
      } else {
        rec = *r;
        auto k = findCategory(**c, rec ? rec->category : fresh_category);
        if (!k) st = k.error();
        else cat = *k;
      }
    }
    return [this, alive, name, fresh_category, st, rec, cat]() {
      if (!*alive) return;
      auto it = rooms_.find(name);
      if (it == rooms_.end()) return;
      Room& room = *it->second;
      auto waiting = std::move(room.waiting);
      room.waiting.clear();
      if (!st.isOk()) {
        spdlog::warn("room {}: cannot load from the chat store: {}", name, st.message());
        rooms_.erase(it);
        for (const auto& s : waiting) {
          sendError(s, "wait", "internal-server-error", "The chat store is unavailable.");
        }
        return;
      }
      room.loaded = true;
      room.exists = rec.has_value();
      if (rec) room.rec = *rec;
      // A category that does not exist admits nobody (a default_category naming a category
      // not added yet): creation then needs a configuration form naming one that does.
      room.category = cat ? *cat : Category{rec ? rec->category : fresh_category, "", {}, {}};
      for (auto& s : waiting) {
        auto again = rooms_.find(name);
        if (again == rooms_.end() || again->second.get() != &room) break;
        dispatch(room, std::move(s));
      }
      if (!room.exists && room.occupants.empty()) rooms_.erase(name);
    };
  });
}

// --- affiliations and roles ----------------------------------------------------------------

std::string MucService::affiliationOf(const Room& room, const std::string& bare) const {
  auto it = room.rec.affiliations.find(bare);
  return it == room.rec.affiliations.end() ? "none" : it->second;
}

std::string MucService::roleFor(const Room& room, const std::string& aff) const {
  if (aff == "owner" || aff == "admin") return "moderator";
  if (aff == "member" || !room.rec.config.moderated) return "participant";
  return "visitor";
}

void MucService::persistRoom(const Room& room) {
  if (room.unsaved) return;  // written whole when its configuration is accepted
  RoomRecord rec = room.rec;
  db_.write([rec](Result<store::Connection*> c) -> std::function<void()> {
    Status st = c ? saveRoom(**c, rec) : c.error();
    if (!st) spdlog::error("room {}: saving its configuration failed: {}", rec.name, st.message());
    return {};
  });
}

void MucService::persistAffiliation(const Room& room, const std::string& jid,
                                    const std::string& aff) {
  if (room.unsaved) return;  // written with the room when its configuration is accepted
  std::string name = room.rec.name;
  db_.write([name, jid, aff](Result<store::Connection*> c) -> std::function<void()> {
    Status st = c ? setAffiliation(**c, name, jid, aff) : c.error();
    if (!st) spdlog::error("room {}: saving affiliation of {} failed: {}", name, jid, st.message());
    return {};
  });
}

// --- presence ------------------------------------------------------------------------------

void MucService::onPresence(Room& room, const xml::Element& p, const std::string& nick) {
  const std::string from = p.attr("from");
  const std::string type = p.attr("type");
  auto current = room.nick_of.find(from);
  if (type == "unavailable") {
    if (current != room.nick_of.end()) {
      leave(room, from, p.childText("status"), {});
      if (room.exists && room.occupants.empty() &&
          (room.unsaved || !room.rec.config.persistent)) {
        destroyRoom(room, "", "");
      }
    }
    return;
  }
  if (!type.empty()) return;  // error, probe, subscriptions: nothing to do for a room
  if (nick.empty()) {
    sendError(p, "modify", "jid-malformed", "Join a room as room@service/nickname.");
    return;
  }
  if (current != room.nick_of.end()) {
    if (current->second != nick) {
      changeNick(room, p, current->second, nick);
      return;
    }
    Occupant& o = room.occupants[nick];  // presence update (show/status)
    o.status = showAndStatus(p);
    if (p.child("x", kNsMuc)) {
      resync(room, p, o);
      return;
    }
    broadcastPresence(room, o, {}, false);
    return;
  }
  join(room, p, nick);
}

// XEP-0045 §7.6: the occupant (all its sessions) takes a new nickname. Everyone sees an
// unavailable presence from the old nickname with status 303 and the new nickname in <item/>,
// then an available presence from the new one; the occupant's own copies carry 110.
void MucService::changeNick(Room& room, const xml::Element& p, const std::string& old_nick,
                            const std::string& new_nick) {
  if (!isValidNickname(new_nick, options_.limits.max_nick_bytes)) {
    refuseNickname(room, p);
    return;
  }
  if (room.occupants.count(new_nick) || isReservedForOther(room, new_nick, bareOf(p.attr("from")))) {
    sendError(p, "cancel", "conflict", "That nickname is in use.");
    return;
  }
  auto it = room.occupants.find(old_nick);
  if (it == room.occupants.end()) return;
  // A nickname change costs a presence to every occupant: bounded per occupant.
  auto now = std::chrono::steady_clock::now();
  auto& changes = it->second.nick_changes;
  while (!changes.empty() && now - changes.front() > std::chrono::seconds(10)) changes.pop_front();
  if (changes.size() >= options_.limits.max_nick_changes_per_10s) {
    sendError(p, "wait", "resource-constraint",
              "Too many nickname changes; wait a few seconds and try again.");
    return;
  }
  changes.push_back(now);
  Occupant moved = std::move(it->second);
  room.occupants.erase(it);
  // 1. Unavailable from the old nickname, status 303, item nick = the new nickname.
  for (const auto& [nick, other] : room.occupants) {
    for (const auto& s : other.sessions) sendNickChange(room, moved, old_nick, new_nick, s, false);
  }
  for (const auto& s : moved.sessions) sendNickChange(room, moved, old_nick, new_nick, s, true);
  // 2. Available from the new nickname (the status of this presence, if any, replaces the old).
  moved.nick = new_nick;
  if (auto st = showAndStatus(p); !st.empty()) moved.status = std::move(st);
  for (const auto& s : moved.sessions) room.nick_of[s] = new_nick;
  Occupant& o = room.occupants[new_nick];
  o = std::move(moved);
  broadcastPresence(room, o, {}, false);
}

void MucService::sendNickChange(const Room& room, const Occupant& who, const std::string& old_nick,
                                const std::string& new_nick, const std::string& to, bool self) {
  xml::Element p("presence");
  p.setAttr("from", roomJid(room) + "/" + old_nick);
  p.setAttr("to", to);
  p.setAttr("type", "unavailable");
  auto& x = p.addChild(xml::Element("x", kNsMucUser));
  auto& item = x.addChild(xml::Element("item"));
  item.setAttr("affiliation", affiliationOf(room, who.bare));
  item.setAttr("role", who.role);
  item.setAttr("nick", new_nick);
  if (!who.sessions.empty()) item.setAttr("jid", *who.sessions.begin());
  x.addChild(xml::Element("status")).setAttr("code", "303");
  if (self) x.addChild(xml::Element("status")).setAttr("code", "110");
  send(p);
}

void MucService::join(Room& room, const xml::Element& p, const std::string& nick) {
  const std::string from = p.attr("from");
  const std::string bare = bareOf(from);
  if (!isValidNickname(nick, options_.limits.max_nick_bytes)) {
    refuseNickname(room, p);
    return;
  }
  bool created = false;
  if (!room.exists) {
    // The room starts in the pool's default category. A creator that category does not admit
    // still gets the locked room, in memory only: its first configuration form must name a
    // category that admits them (tandem#category), and only then is the room saved.
    room.exists = true;
    room.locked = true;  // XEP-0045 §10.1: locked until the owner configures it
    room.rec.category = room.category.name;
    room.rec.affiliations[bare] = "owner";
    created = true;
    room.unsaved = !principalMatches(room.category.creators, bare);
  }
  if (created && !room.unsaved) {
    RoomRecord rec = room.rec;
    db_.write([rec](Result<store::Connection*> c) -> std::function<void()> {
      auto r = c ? createRoom(**c, rec) : Result<bool>(fail(c.error()));
      if (!r) spdlog::error("room {}: creating it in the chat store failed: {}", rec.name,
                            r.error().message());
      return {};
    });
  }
  const std::string aff = affiliationOf(room, bare);
  if (aff == "outcast") {
    sendError(p, "auth", "forbidden", "You are banned from this room.");
    return;
  }
  if (room.locked && aff != "owner") {
    sendError(p, "cancel", "item-not-found", "The room is not configured yet.");
    return;
  }
  if (room.rec.config.members_only && aff == "none") {
    sendError(p, "auth", "registration-required", "This room is members-only.");
    return;
  }
  if (aff == "none" && !principalMatches(room.category.members, bare)) {
    sendError(p, "auth", "forbidden",
              "Category " + room.rec.category + " does not let you join its rooms.");
    return;
  }
  auto taken = room.occupants.find(nick);
  if ((taken != room.occupants.end() && taken->second.bare != bare) ||
      isReservedForOther(room, nick, bare)) {  // XEP-0045 §7.10: registered nicknames
    sendError(p, "cancel", "conflict", "That nickname is in use.");
    return;
  }
  size_t limit = options_.limits.max_occupants_per_room;
  if (room.rec.config.max_users > 0) limit = std::min(limit, size_t(room.rec.config.max_users));
  if (taken == room.occupants.end() && room.occupants.size() >= limit) {
    sendError(p, "wait", "service-unavailable", "The room is full.");
    return;
  }
  bool first_session = taken == room.occupants.end();
  Occupant& o = room.occupants[nick];
  o.nick = nick;
  o.bare = bare;
  o.role = roleFor(room, aff);
  o.sessions.insert(from);
  o.history_pending = true;
  o.status = showAndStatus(p);
  room.nick_of[from] = nick;
  // 1. Existing occupants to the joiner.
  for (const auto& [other_nick, other] : room.occupants) {
    if (other_nick != nick) sendRoomPresence(room, other, from, false, {}, false);
  }
  // 2. The joiner to everyone else (on its first session), then self-presence.
  if (first_session) {
    for (const auto& [other_nick, other] : room.occupants) {
      if (other_nick == nick) continue;
      for (const auto& s : other.sessions) sendRoomPresence(room, o, s, false, {}, false);
    }
  }
  std::vector<int> codes{100, 170};  // non-anonymous, logged (MAM)
  if (created) codes.push_back(201);
  sendRoomPresence(room, o, from, true, codes, false);
  // 3. History, then 4. subject.
  auto h = historyRequested(p, options_.limits.max_history_stanzas);
  sendHistoryAndSubject(room, nick, from, created ? 0 : h.stanzas, h.since_us);
}

// XEP-0045 §17.3: a join presence (with the MUC <x/>) from a session already in the room, e.g. a
// client that lost track of its state, is answered as a join: the other occupants, the
// self-presence, the history and the subject, in the order of §7.2. The others see the
// occupant's presence only (its show/status may have changed).
void MucService::resync(Room& room, const xml::Element& p, Occupant& o) {
  const std::string from = p.attr("from");
  for (const auto& [other_nick, other] : room.occupants) {
    if (other_nick == o.nick) continue;
    sendRoomPresence(room, other, from, false, {}, false);
    for (const auto& s : other.sessions) sendRoomPresence(room, o, s, false, {}, false);
  }
  sendRoomPresence(room, o, from, true, {100, 170}, false);
  o.history_pending = true;
  auto h = historyRequested(p, options_.limits.max_history_stanzas);
  sendHistoryAndSubject(room, o.nick, from, h.stanzas, h.since_us);
}

void MucService::sendHistoryAndSubject(Room& room, const std::string& /*nick*/,
                                       const std::string& full, size_t max_stanzas,
                                       std::optional<int64_t> since_us) {
  auto alive = alive_;
  std::string name = room.rec.name;
  auto finish = [this, alive, name, full](std::vector<StoredMessage> history) {
    if (!*alive) return;
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    Room& r = *it->second;
    // By session, not by the nickname at join: the occupant may have changed it meanwhile.
    auto n = r.nick_of.find(full);
    if (n == r.nick_of.end()) return;
    auto o = r.occupants.find(n->second);
    if (o == r.occupants.end() || !o->second.sessions.count(full)) return;
    for (const auto& m : history) {
      // The stored stanza plus <delay/> (XEP-0203), addressed to the joiner.
      std::string s = m.stanza;
      size_t close = s.rfind("</message>");
      std::string delay = "<delay xmlns='urn:xmpp:delay' from='" + roomJid(r) + "' stamp='" +
                          formatTimestamp(m.ts_us) + "'/>";
      if (close == std::string::npos) continue;
      s.insert(close, delay);
      s.insert(std::string("<message").size(), " to=\"" + xml::escape(full) + "\"");
      send_(std::move(s));
    }
    xml::Element subject("message");
    subject.setAttr("from", roomJid(r) + (r.rec.subject_nick.empty() ? "" : "/" + r.rec.subject_nick));
    subject.setAttr("to", full);
    subject.setAttr("type", "groupchat");
    subject.setAttr("id", xmpp::newId());
    subject.addChild(xml::Element("subject")).addText(r.rec.subject);
    send(subject);
    o->second.history_pending = false;
    for (auto& s : o->second.buffered) send_(std::move(s));
    o->second.buffered.clear();
  };
  if (max_stanzas == 0) {
    finish({});
    return;
  }
  db_.read([finish, name, max_stanzas, since_us](Result<store::Connection*> c)
               -> std::function<void()> {
    std::vector<StoredMessage> history;
    if (c) {
      auto h = recentHistory(**c, name, max_stanzas, since_us);
      if (h) history = std::move(*h);
      else spdlog::warn("room {}: history on join unavailable: {}", name, h.error().message());
    }
    return [finish, history = std::move(history)]() mutable { finish(std::move(history)); };
  });
}

void MucService::sendRoomPresence(const Room& room, const Occupant& who, const std::string& to,
                                  bool self, const std::vector<int>& extra_codes,
                                  bool unavailable) {
  xml::Element p("presence");
  p.setAttr("from", roomJid(room) + "/" + who.nick);
  p.setAttr("to", to);
  if (unavailable) p.setAttr("type", "unavailable");
  for (const auto& s : who.status) p.addChild(s);
  auto& x = p.addChild(xml::Element("x", kNsMucUser));
  auto& item = x.addChild(xml::Element("item"));
  item.setAttr("affiliation", affiliationOf(room, who.bare));
  item.setAttr("role", unavailable ? "none" : who.role);
  if (!who.sessions.empty()) item.setAttr("jid", *who.sessions.begin());  // non-anonymous room
  std::vector<int> codes = extra_codes;
  if (self) codes.insert(codes.begin(), 110);
  for (int c : codes) x.addChild(xml::Element("status")).setAttr("code", std::to_string(c));
  send(p);
}

void MucService::broadcastPresence(const Room& room, const Occupant& who,
                                   const std::vector<int>& codes, bool unavailable) {
  for (const auto& [nick, other] : room.occupants) {
    for (const auto& s : other.sessions) {
      bool self = nick == who.nick;
      sendRoomPresence(room, who, s, self, codes, unavailable);
    }
  }
}

void MucService::leave(Room& room, const std::string& full_jid, const std::string& status_text,
                       const std::vector<int>& codes, const std::string& actor_reason) {
  auto it = room.nick_of.find(full_jid);
  if (it == room.nick_of.end()) return;
  std::string nick = it->second;
  room.nick_of.erase(it);
  auto o = room.occupants.find(nick);
  if (o == room.occupants.end()) return;
  Occupant& occ = o->second;
  if (!status_text.empty() || !actor_reason.empty()) {
    occ.status.clear();
    xml::Element st("status");
    st.addText(status_text.empty() ? actor_reason : status_text);
    occ.status.push_back(st);
  }
  if (occ.sessions.size() > 1) {
    sendRoomPresence(room, occ, full_jid, true, codes, true);
    occ.sessions.erase(full_jid);
    return;
  }
  // Last session: everyone (the leaver included, with 110) sees the occupant go.
  broadcastPresence(room, occ, codes, true);
  room.occupants.erase(o);
}

void MucService::evict(Room& room, int code, const std::string& why) {
  std::vector<std::string> sessions;
  for (const auto& [full, nick] : room.nick_of) sessions.push_back(full);
  for (const auto& full : sessions) leave(room, full, why, {code});
}

void MucService::setOwnership(OwnerCheck owns, bool active) {
  owns_ = std::move(owns);
  active_ = active;
  std::vector<std::string> gone;
  for (auto& [name, room] : rooms_) {
    if (!active_ || !owns_(name)) gone.push_back(name);
  }
  for (const auto& name : gone) {
    Room& room = *rooms_[name];
    // 332: removed because of a system shutdown; the room now lives on another server.
    evict(room, 332, "This room moved to another chat server; rejoin.");
    for (const auto& s : room.waiting) {
      sendError(s, "wait", "service-unavailable", "The room moved to another chat server.");
    }
    rooms_.erase(name);
  }
  if (!gone.empty()) spdlog::info("released {} room(s) this server no longer owns", gone.size());
}

}  // namespace tandem::chat
