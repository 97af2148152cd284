// MucService part 3: iq. Service and room discovery (XEP-0030), room configuration and
// destruction (muc#owner), affiliations and roles (muc#admin: kick, ban, grant), room archives
// (XEP-0313 with XEP-0059 paging), ping.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "chat/muc_service.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

namespace tandem::chat {

namespace {

xml::Element field(const std::string& var, const std::string& type, const std::string& label,
                   const std::string& value) {
  xml::Element f("field");
  f.setAttr("var", var);
  if (!type.empty()) f.setAttr("type", type);
  if (!label.empty()) f.setAttr("label", label);
  f.addChild(xml::Element("value")).addText(value);
  return f;
}

xml::Element boolField(const std::string& var, const std::string& label, bool v) {
  return field(var, "boolean", label, v ? "1" : "0");
}

// The values of a submitted data form: var -> first value.
std::map<std::string, std::string> formValues(const xml::Element& x) {
  std::map<std::string, std::string> out;
  for (const auto* f : x.childrenNamed("field")) out[f->attr("var")] = f->childText("value");
  return out;
}

bool truthy(const std::string& v) { return v == "1" || v == "true"; }

// A list-single field: the value and its options (label = value), the value first if it is not
// among them. XEP-0045 §15.5.3 registers muc#roomconfig_maxusers and _whois as list-single, and
// clients that check registered types (aioxmpp) refuse a form that says otherwise.
xml::Element listField(const std::string& var, const std::string& label, const std::string& value,
                       const std::vector<std::string>& options) {
  xml::Element f = field(var, "list-single", label, value);
  if (std::find(options.begin(), options.end(), value) == options.end()) {
    f.addChild(xml::Element("option")).addChild(xml::Element("value")).addText(value);
  }
  for (const auto& o : options) {
    f.addChild(xml::Element("option")).addChild(xml::Element("value")).addText(o);
  }
  return f;
}

int affiliationRank(const std::string& a) {
  if (a == "owner") return 4;
  if (a == "admin") return 3;
  if (a == "member") return 2;
  if (a == "none") return 1;
  return 0;  // outcast
}

std::string bareOf(const std::string& jid) {
  auto j = xmpp::Jid::parse(jid);
  return j ? j->bare() : jid;
}

}  // namespace

void MucService::onServiceIq(const xml::Element& iq) {
  const std::string type = iq.attr("type");
  if (type == "result" || type == "error") return;
  if (iq.child("ping", "urn:xmpp:ping")) {
    send(xmpp::iqResult(iq));
    return;
  }
  if (type == "get" && iq.child("query", "http://jabber.org/protocol/disco#info")) {
    xml::Element r = xmpp::iqResult(iq);
    auto& q = r.addChild(xml::Element("query", "http://jabber.org/protocol/disco#info"));
    q.addChild(xml::Element("identity"))
        .setAttr("category", "conference")
        .setAttr("type", "text")
        .setAttr("name", "Persistent chat");
    for (const char* f : {kNsMuc, "http://jabber.org/protocol/disco#info",
                          "http://jabber.org/protocol/disco#items", kNsSid, "urn:xmpp:ping"}) {
      q.addChild(xml::Element("feature")).setAttr("var", f);
    }
    send(r);
    return;
  }
  if (type == "get" && iq.child("query", "http://jabber.org/protocol/disco#items")) {
    auto alive = alive_;
    db_.read([this, alive, iq](Result<store::Connection*> c) -> std::function<void()> {
      auto rooms = c ? listRooms(**c) : Result<std::vector<RoomRecord>>(fail(c.error()));
      return [this, alive, iq, rooms]() {
        if (!*alive) return;
        if (!rooms) {
          sendError(iq, "wait", "internal-server-error", "The chat store is unavailable.");
          return;
        }
        xml::Element r = xmpp::iqResult(iq);
        auto& q = r.addChild(xml::Element("query", "http://jabber.org/protocol/disco#items"));
        for (const auto& room : *rooms) {
          if (!room.config.public_room) continue;
          auto& item = q.addChild(xml::Element("item"));
          item.setAttr("jid", room.name + "@" + options_.service);
          item.setAttr("name", room.config.title.empty() ? room.name : room.config.title);
        }
        send(r);
      };
    });
    return;
  }
  sendError(iq, "cancel", "service-unavailable");
}

void MucService::onRoomIq(Room& room, const xml::Element& iq) {
  const std::string type = iq.attr("type");
  if (type == "result" || type == "error") return;
  if (iq.child("ping", "urn:xmpp:ping")) {
    send(xmpp::iqResult(iq));
    return;
  }
  if (!room.exists) {
    sendError(iq, "cancel", "item-not-found", "No such room.");
    return;
  }
  if (const auto* info = iq.child("query", "http://jabber.org/protocol/disco#info");
      info && type == "get") {
    return onRoomDiscoInfo(room, iq, *info);
  }
  if (const auto* q = iq.child("query", kNsRegister)) return onRegisterIq(room, iq, *q);
  if (type == "get" && iq.child("query", "http://jabber.org/protocol/disco#items")) {
    xml::Element r = xmpp::iqResult(iq);
    r.addChild(xml::Element("query", "http://jabber.org/protocol/disco#items"));
    send(r);
    return;
  }
  if (const auto* q = iq.child("query", kNsMucOwner)) return onOwnerIq(room, iq, *q);
  if (const auto* q = iq.child("query", kNsMucAdmin)) return onAdminIq(room, iq, *q);
  if (const auto* q = iq.child("query", kNsMam)) return onMamQuery(room, iq, *q);
  sendError(iq, "cancel", "service-unavailable");
}

xml::Element MucService::roomDiscoInfo(const Room& room) const {
  xml::Element r("iq");
  r.setAttr("type", "result");
  r.setAttr("from", roomJid(room));
  auto& q = r.addChild(xml::Element("query", "http://jabber.org/protocol/disco#info"));
  q.addChild(xml::Element("identity"))
      .setAttr("category", "conference")
      .setAttr("type", "text")
      .setAttr("name", room.rec.config.title.empty() ? room.rec.name : room.rec.config.title);
  const auto& c = room.rec.config;
  for (const char* f :
       {kNsMuc, kNsMam, kNsSid, kNsRegister, c.persistent ? "muc_persistent" : "muc_temporary",
        c.public_room ? "muc_public" : "muc_hidden", c.members_only ? "muc_membersonly" : "muc_open",
        c.moderated ? "muc_moderated" : "muc_unmoderated", "muc_nonanonymous", "muc_unsecured"}) {
    q.addChild(xml::Element("feature")).setAttr("var", f);
  }
  auto& x = q.addChild(xml::Element("x", kNsData));
  x.setAttr("type", "result");
  x.addChild(field("FORM_TYPE", "hidden", "", "http://jabber.org/protocol/muc#roominfo"));
  x.addChild(field("muc#roominfo_description", "", "Description", c.description));
  x.addChild(field("muc#roominfo_subject", "", "Subject", room.rec.subject));
  x.addChild(field("muc#roominfo_occupants", "", "Occupants",
                   std::to_string(room.occupants.size())));
  x.addChild(field("tandem#category", "", "Category", room.rec.category));
  return r;
}

xml::Element MucService::configForm(const Room& room) const {
  const auto& c = room.rec.config;
  xml::Element x("x", kNsData);
  x.setAttr("type", "form");
  x.addChild(xml::Element("title")).addText("Configuration of " + roomJid(room));
  x.addChild(field("FORM_TYPE", "hidden", "", "http://jabber.org/protocol/muc#roomconfig"));
  x.addChild(field("muc#roomconfig_roomname", "text-single", "Room title", c.title));
  x.addChild(field("muc#roomconfig_roomdesc", "text-single", "Description", c.description));
  x.addChild(boolField("muc#roomconfig_persistentroom", "Persistent", c.persistent));
  x.addChild(boolField("muc#roomconfig_publicroom", "Listed in the directory", c.public_room));
  x.addChild(boolField("muc#roomconfig_membersonly", "Members only", c.members_only));
  x.addChild(boolField("muc#roomconfig_moderatedroom", "Moderated", c.moderated));
  x.addChild(boolField("muc#roomconfig_allowinvites", "Occupants may invite", c.allow_invites));
  x.addChild(boolField("muc#roomconfig_changesubject", "Occupants may change the subject",
                       c.change_subject));
  x.addChild(listField("muc#roomconfig_maxusers", "Maximum occupants",
                       c.max_users == 0 ? "none" : std::to_string(c.max_users),
                       {"10", "20", "30", "50", "100", "200", "500", "1000", "none"}));
  x.addChild(listField("muc#roomconfig_whois", "Real JIDs visible to", "anyone", {"anyone"}));
  x.addChild(boolField("muc#roomconfig_enablelogging", "History is archived", true));
  // The category (docs/persistent-chat.md "Categories"): an existing category that lets the
  // submitter create rooms in it; a room created over XMPP starts in the pool's default
  // category (CMS chat.<pool>.default_category, `general` unless set).
  x.addChild(field("tandem#category", "text-single", "Category", room.rec.category));
  return x;
}

// XEP-0045 §10.2: an option this service does not have (a password, moderated-only real JIDs, ...)
// is refused, never accepted and ignored: a field not in our form with a value that asks for
// something (not empty, not false), or a list-single value that is not among our options.
Status MucService::checkConfigForm(const Room& room, const xml::Element& x) const {
  std::map<std::string, const xml::Element*> ours;
  xml::Element form = configForm(room);
  for (const auto* f : form.childrenNamed("field")) ours[f->attr("var")] = f;
  for (const auto* f : x.childrenNamed("field")) {
    const std::string var = f->attr("var"), value = f->childText("value");
    auto it = ours.find(var);
    if (it == ours.end()) {
      if (value.empty() || value == "0" || value == "false") continue;
      return invalidArgument("The field " + var + " is not supported by this service.");
    }
    const xml::Element& mine = *it->second;
    if (mine.attr("type") != "list-single" || var == "muc#roomconfig_maxusers") continue;
    bool offered = false;
    for (const auto* o : mine.childrenNamed("option")) offered |= o->childText("value") == value;
    if (!offered) return invalidArgument("The value " + value + " of " + var + " is not supported.");
  }
  return Status::ok();
}

void MucService::applyConfigForm(Room& room, const xml::Element& x) {
  auto v = formValues(x);
  auto& c = room.rec.config;
  auto setBool = [&](const char* var, bool& target) {
    if (v.count(var)) target = truthy(v[var]);
  };
  if (v.count("muc#roomconfig_roomname")) c.title = v["muc#roomconfig_roomname"].substr(0, 256);
  if (v.count("muc#roomconfig_roomdesc")) c.description = v["muc#roomconfig_roomdesc"].substr(0, 1024);
  setBool("muc#roomconfig_persistentroom", c.persistent);
  setBool("muc#roomconfig_publicroom", c.public_room);
  setBool("muc#roomconfig_membersonly", c.members_only);
  setBool("muc#roomconfig_moderatedroom", c.moderated);
  setBool("muc#roomconfig_allowinvites", c.allow_invites);
  setBool("muc#roomconfig_changesubject", c.change_subject);
  if (v.count("muc#roomconfig_maxusers")) {  // a number, or "none" (or 0): no limit
    c.max_users = std::max(0, std::atoi(v["muc#roomconfig_maxusers"].c_str()));
  }
}

void MucService::onOwnerIq(Room& room, const xml::Element& iq, const xml::Element& query) {
  const std::string requester = iq.attr("from");
  if (affiliationOf(room, bareOf(requester)) != "owner") {
    sendError(iq, "auth", "forbidden", "Only room owners may do this.");
    return;
  }
  if (iq.attr("type") == "get") {
    xml::Element r = xmpp::iqResult(iq);
    r.addChild(xml::Element("query", kNsMucOwner)).addChild(configForm(room));
    send(r);
    return;
  }
  if (const auto* d = query.child("destroy")) {
    send(xmpp::iqResult(iq));
    destroyRoom(room, d->childText("reason"), d->attr("jid"));
    return;
  }
  const auto* x = query.child("x", kNsData);
  if (x && x->attr("type") == "cancel") {
    send(xmpp::iqResult(iq));
    if (room.locked) destroyRoom(room, "", "");  // §10.1.3: cancelling creation destroys it
    return;
  }
  if (x) {
    if (Status st = checkConfigForm(room, *x); !st.isOk()) {
      sendError(iq, "modify", "not-acceptable", st.message());
      return;
    }
  }
  std::string wanted;
  if (x) {
    for (const auto* f : x->childrenNamed("field")) {
      if (f->attr("var") == "tandem#category") wanted = f->childText("value");
    }
  }
  // An unsaved room (its creator is not among the default category's creators) is checked
  // against the category its form names, or the default one again: nothing else saves it.
  if (room.unsaved) {
    configureInCategory(room, iq, x, wanted.empty() ? room.rec.category : wanted);
    return;
  }
  if (x && !wanted.empty() && wanted != room.rec.category) {
    configureInCategory(room, iq, x, wanted);
    return;
  }
  finishConfig(room, iq, x);
}

// The category must exist and admit the submitter as a creator; looked up on the write strand
// (it sees every earlier category change), applied back home. Refusals leave the room as it
// was (still locked, and still unsaved, if it was being created).
void MucService::configureInCategory(Room& room, const xml::Element& iq, const xml::Element* x,
                                     const std::string& category) {
  auto alive = alive_;
  std::string name = room.rec.name;
  std::optional<xml::Element> form;
  if (x) form = *x;
  db_.write([this, alive, name, iq, form, category](Result<store::Connection*> c)
                -> std::function<void()> {
    Result<std::optional<Category>> cat = c ? findCategory(**c, category)
                                            : Result<std::optional<Category>>(fail(c.error()));
    return [this, alive, name, iq, form, category, cat]() {
      if (!*alive) return;
      auto it = rooms_.find(name);
      if (it == rooms_.end() || !it->second->exists) {
        sendError(iq, "cancel", "item-not-found", "No such room.");
        return;
      }
      if (!cat) {
        sendError(iq, "wait", "internal-server-error", "The chat store is unavailable.");
        return;
      }
      if (!cat->has_value()) {
        sendError(iq, "modify", "not-acceptable",
                  "There is no room category named " + category + ".");
        return;
      }
      if (!principalMatches((*cat)->creators, bareOf(iq.attr("from")))) {
        sendError(iq, "auth", "forbidden",
                  "Category " + category + " does not let you create rooms in it" +
                      (it->second->unsaved ? "; name another in the form field tandem#category."
                                           : "."));
        return;
      }
      Room& r = *it->second;
      r.rec.category = category;
      r.category = **cat;
      if (r.unsaved) {
        // Saved now, with the owner's affiliations; finishConfig's save follows it on the
        // same write strand.
        r.unsaved = false;
        RoomRecord rec = r.rec;
        db_.write([rec](Result<store::Connection*> conn) -> std::function<void()> {
          auto created = conn ? createRoom(**conn, rec) : Result<bool>(fail(conn.error()));
          if (!created) spdlog::error("room {}: creating it in the chat store failed: {}",
                                      rec.name, created.error().message());
          return {};
        });
      }
      finishConfig(r, iq, form ? &*form : nullptr);
    };
  });
}

void MucService::finishConfig(Room& room, const xml::Element& iq, const xml::Element* x) {
  const bool creating = room.locked;
  const nlohmann::json before = room.rec.config.toJson();
  if (x) applyConfigForm(room, *x);
  room.locked = false;
  persistRoom(room);
  send(xmpp::iqResult(iq));
  if (!creating && room.rec.config.toJson() != before) {
    // XEP-0045 §10.2.1: occupants learn that the configuration changed (status 104), after the
    // owner's result as in the XEP's examples.
    xml::Element note("message");
    note.setAttr("from", roomJid(room)).setAttr("type", "groupchat").setAttr("id", xmpp::newId());
    note.addChild(xml::Element("x", kNsMucUser)).addChild(xml::Element("status")).setAttr("code", "104");
    deliver(room, note.toString());
  }
  // Occupants without membership leave a room that became members-only (status 322); roles
  // follow a change of moderation.
  std::vector<std::string> removed;
  for (auto& [nick, o] : room.occupants) {
    std::string aff = affiliationOf(room, o.bare);
    if (room.rec.config.members_only && aff == "none") {
      for (const auto& s : o.sessions) removed.push_back(s);
      continue;
    }
    std::string role = roleFor(room, aff);
    if (role != o.role) {
      o.role = role;
      broadcastPresence(room, o, {}, false);
    }
  }
  for (const auto& s : removed) leave(room, s, "", {322});
}

void MucService::onAdminIq(Room& room, const xml::Element& iq, const xml::Element& query) {
  const std::string requester = iq.attr("from");
  const std::string req_aff = affiliationOf(room, bareOf(requester));
  auto req_nick = room.nick_of.find(requester);
  bool req_moderator = req_nick != room.nick_of.end() &&
                       room.occupants[req_nick->second].role == "moderator";
  auto items = query.childrenNamed("item");
  if (iq.attr("type") == "get") {
    // XEP-0045 §9.5: in a non-anonymous room (all rooms here) members may read the member list.
    bool member_list = !items.empty() && affiliationRank(req_aff) >= 2 &&
                       std::all_of(items.begin(), items.end(), [](const xml::Element* i) {
                         return i->attr("affiliation") == "member" && !i->hasAttr("role");
                       });
    if (affiliationRank(req_aff) < 3 && !req_moderator && !member_list) {
      sendError(iq, "auth", "forbidden", "Only moderators may list affiliations and roles.");
      return;
    }
    xml::Element r = xmpp::iqResult(iq);
    auto& q = r.addChild(xml::Element("query", kNsMucAdmin));
    for (const auto* want : items) {
      if (want->hasAttr("affiliation")) {
        for (const auto& [jid, aff] : room.rec.affiliations) {
          if (aff == want->attr("affiliation")) {
            q.addChild(xml::Element("item")).setAttr("affiliation", aff).setAttr("jid", jid);
          }
        }
      } else if (want->hasAttr("role")) {
        for (const auto& [nick, o] : room.occupants) {
          if (o.role == want->attr("role")) {
            q.addChild(xml::Element("item")).setAttr("role", o.role).setAttr("nick", nick)
                .setAttr("jid", *o.sessions.begin()).setAttr("affiliation", affiliationOf(room, o.bare));
          }
        }
      }
    }
    send(r);
    return;
  }
  // set: check every item first, then apply them all (the request is atomic).
  for (const auto* item : items) {
    if (item->hasAttr("role")) {
      auto target = room.occupants.find(item->attr("nick"));
      if (target == room.occupants.end()) {
        sendError(iq, "cancel", "item-not-found", "No occupant with that nickname.");
        return;
      }
      std::string target_aff = affiliationOf(room, target->second.bare);
      if (!req_moderator || affiliationRank(target_aff) > affiliationRank(req_aff) ||
          (item->attr("role") == "moderator" && affiliationRank(req_aff) < 3) ||
          (item->attr("role") == "none" && affiliationRank(target_aff) >= 3)) {
        sendError(iq, "cancel", "not-allowed", "You may not change that occupant's role.");
        return;
      }
    } else if (item->hasAttr("affiliation")) {
      auto jid = xmpp::Jid::parse(item->attr("jid"));
      const std::string& aff = item->attr("affiliation");
      if (!jid || (aff != "owner" && aff != "admin" && aff != "member" && aff != "none" &&
                   aff != "outcast")) {
        sendError(iq, "modify", "bad-request", "The item needs a valid jid and affiliation.");
        return;
      }
      std::string target_aff = affiliationOf(room, jid->bare());
      bool ok = req_aff == "owner" ||
                (req_aff == "admin" && affiliationRank(target_aff) < 3 && affiliationRank(aff) < 3);
      if (!ok) {
        sendError(iq, "auth", "forbidden", "You may not change that affiliation.");
        return;
      }
      if (target_aff == "owner" && aff != "owner") {
        int owners = 0;
        for (const auto& [j, a] : room.rec.affiliations) owners += a == "owner";
        if (owners <= 1) {
          sendError(iq, "cancel", "conflict", "A room keeps at least one owner.");
          return;
        }
      }
    } else {
      sendError(iq, "modify", "bad-request", "Each item needs a role or an affiliation.");
      return;
    }
  }
  send(xmpp::iqResult(iq));
  for (const auto* item : items) {
    const std::string reason = item->childText("reason");
    if (item->hasAttr("role")) {
      auto target = room.occupants.find(item->attr("nick"));
      if (target == room.occupants.end()) continue;
      if (item->attr("role") == "none") {  // kick (status 307)
        auto sessions = target->second.sessions;
        for (const auto& s : sessions) leave(room, s, "", {307}, reason);
      } else {
        target->second.role = item->attr("role");
        broadcastPresence(room, target->second, {}, false);
      }
      continue;
    }
    std::string bare = xmpp::Jid::parse(item->attr("jid"))->bare();
    std::string aff = item->attr("affiliation");
    if (aff == "none") room.rec.affiliations.erase(bare);
    else room.rec.affiliations[bare] = aff;
    persistAffiliation(room, bare, aff);
    // Occupants with that bare JID: banned (301), removed from a members-only room (321), or
    // their role follows the new affiliation.
    for (auto it = room.occupants.begin(); it != room.occupants.end();) {
      auto& o = it->second;
      ++it;
      if (o.bare != bare) continue;
      if (aff == "outcast" || (aff == "none" && room.rec.config.members_only)) {
        auto sessions = o.sessions;
        for (const auto& s : sessions) leave(room, s, "", {aff == "outcast" ? 301 : 321}, reason);
      } else {
        o.role = roleFor(room, aff);
        broadcastPresence(room, o, {}, false);
      }
    }
  }
}

void MucService::onMamQuery(Room& room, const xml::Element& iq, const xml::Element& query) {
  const std::string requester = iq.attr("from");
  const std::string aff = affiliationOf(room, bareOf(requester));
  if (aff == "outcast" || (room.rec.config.members_only && affiliationRank(aff) < 2)) {
    sendError(iq, "auth", "forbidden", "Only members may read this room's archive.");
    return;
  }
  if (iq.attr("type") == "get") {  // XEP-0313 §4.1.1: the query form
    xml::Element r = xmpp::iqResult(iq);
    auto& x = r.addChild(xml::Element("query", kNsMam)).addChild(xml::Element("x", kNsData));
    x.setAttr("type", "form");
    x.addChild(field("FORM_TYPE", "hidden", "", kNsMam));
    for (const char* f : {"with", "start", "end"}) {
      x.addChild(xml::Element("field")).setAttr("var", f).setAttr("type", "text-single");
    }
    send(r);
    return;
  }
  ArchiveQuery q;
  q.room = room.rec.name;
  if (const auto* x = query.child("x", kNsData)) {
    auto v = formValues(*x);
    if (!v["start"].empty()) q.start_us = parseTimestamp(v["start"]);
    if (!v["end"].empty()) q.end_us = parseTimestamp(v["end"]);
    if ((!v["start"].empty() && !q.start_us) || (!v["end"].empty() && !q.end_us)) {
      sendError(iq, "modify", "bad-request", "start and end must be XEP-0082 date-times.");
      return;
    }
    if (!v["with"].empty()) {
      auto w = xmpp::Jid::parse(v["with"]);
      q.with_nick = w ? w->resource : "";
    }
  }
  q.max = options_.limits.max_mam_page;
  if (const auto* set = query.child("set", kNsRsm)) {
    if (const auto* m = set->child("max")) {
      q.max = std::min<size_t>(q.max, std::strtoul(m->text().c_str(), nullptr, 10));
    }
    if (const auto* a = set->child("after")) q.after_id = a->text();
    if (const auto* b = set->child("before")) {
      q.before_id = b->text();
      q.last_page = q.before_id.empty();
    }
  } else {
    q.max = 50;
  }
  // XEP-0313 §4.1.4 <flip-page/>: the page's results come in reverse archive order; <first/>
  // and <last/> keep their RSM meaning (archive order), so paging goes on the same way.
  const bool flip = query.child("flip-page") != nullptr;
  ++stats_.mam_queries;
  auto alive = alive_;
  const std::string queryid = query.attr("queryid");
  const std::string room_jid = roomJid(room);
  db_.read([this, alive, iq, q, queryid, room_jid, flip](Result<store::Connection*> c)
               -> std::function<void()> {
    auto page = c ? queryArchive(**c, q) : Result<ArchivePage>(fail(c.error()));
    return [this, alive, iq, page, queryid, room_jid, flip]() {
      if (!*alive) return;
      if (!page) {
        if (page.error().code() == StatusCode::kInvalidArgument) {
          sendError(iq, "cancel", "item-not-found", page.error().message());
        } else {
          sendError(iq, "wait", "internal-server-error", "The chat store is unavailable.");
        }
        return;
      }
      const std::string to = iq.attr("from");
      // Every result is handed to send_ before the <fin/> iq below, and both take the same
      // front-end path (delivery_paths.h), so the results arrive first (XEP-0313 §4).
      std::vector<const StoredMessage*> order;
      for (const auto& m : page->messages) order.push_back(&m);
      if (flip) std::reverse(order.begin(), order.end());
      for (const StoredMessage* mp : order) {
        const StoredMessage& m = *mp;
        // <message to from=room><result queryid id><forwarded><delay/>stored</forwarded></result>
        std::string s = "<message to=\"" + xml::escape(to) + "\" from=\"" + xml::escape(room_jid) +
                        "\" id=\"" + xmpp::newId() + "\"><result xmlns=\"" + kNsMam + "\"" +
                        (queryid.empty() ? "" : " queryid=\"" + xml::escape(queryid) + "\"") +
                        " id=\"" + xml::escape(m.stanza_id) +
                        "\"><forwarded xmlns=\"urn:xmpp:forward:0\"><delay xmlns=\"urn:xmpp:delay\""
                        " stamp=\"" + formatTimestamp(m.ts_us) + "\"/>" + m.stanza +
                        "</forwarded></result></message>";
        send_(std::move(s));
      }
      xml::Element r = xmpp::iqResult(iq);
      auto& fin = r.addChild(xml::Element("fin", kNsMam));
      if (page->complete) fin.setAttr("complete", "true");
      auto& set = fin.addChild(xml::Element("set", kNsRsm));
      if (!page->messages.empty()) {
        set.addChild(xml::Element("first")).addText(page->messages.front().stanza_id);
        set.addChild(xml::Element("last")).addText(page->messages.back().stanza_id);
      }
      set.addChild(xml::Element("count")).addText(std::to_string(page->count));
      send(r);
    };
  });
}

}  // namespace tandem::chat
