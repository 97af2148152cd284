// MucService part 4: a room's end and the administrator's room commands. Destroying a room
// (owner's <destroy/>, last occupant of a temporary room, `tandemctl chat room remove`) tells
// every occupant (XEP-0045 §10.9) before its record and history are deleted; `tandemctl chat
// room add|remove` run here, on the server that owns the room, so the live room follows at once.
#include <spdlog/spdlog.h>

#include "chat/muc_service.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

namespace tandem::chat {

// XEP-0045 §10.9: each occupant session gets unavailable presence carrying <destroy/> (with the
// reason and the alternate venue, when given).
void MucService::tellDestroyed(Room& room, const std::string& reason,
                               const std::string& alternate) {
  for (const auto& [full, nick] : room.nick_of) {
    xml::Element p("presence");
    p.setAttr("from", roomJid(room) + "/" + nick);
    p.setAttr("to", full);
    p.setAttr("type", "unavailable");
    auto& x = p.addChild(xml::Element("x", kNsMucUser));
    auto& item = x.addChild(xml::Element("item"));
    item.setAttr("affiliation", "none");
    item.setAttr("role", "none");
    auto& d = x.addChild(xml::Element("destroy"));
    if (!alternate.empty()) d.setAttr("jid", alternate);
    if (!reason.empty()) d.addChild(xml::Element("reason")).addText(reason);
    send(p);
  }
  for (const auto& s : room.waiting) {
    sendError(s, "cancel", "item-not-found", "The room was destroyed.");
  }
}

void MucService::destroyRoom(Room& room, const std::string& reason, const std::string& alternate) {
  tellDestroyed(room, reason, alternate);
  std::string name = room.rec.name;
  db_.write([name](Result<store::Connection*> c) -> std::function<void()> {
    auto r = c ? deleteRoom(**c, name) : Result<bool>(fail(c.error()));
    if (!r) spdlog::error("room {}: deleting it from the chat store failed: {}", name,
                          r.error().message());
    return {};
  });
  rooms_.erase(name);
}

Status MucService::servesForAdmin(const std::string& name) const {
  if (active_ && owns_(name)) return Status::ok();
  return unavailable("chat server " + options_.server + " does not serve room " + name +
                            "@" + options_.service + "; its owner on the active server list does");
}

void MucService::adminAddRoom(const std::string& name, const std::string& category,
                              const std::string& title, AdminDone done) {
  if (Status st = servesForAdmin(name); !st.isOk()) return done(fail(st));
  if (auto it = rooms_.find(name); it != rooms_.end() && it->second->exists) return done(false);
  RoomRecord rec;
  rec.name = name;
  rec.category = category;
  rec.config.title = title;
  auto alive = alive_;
  // On the write strand: it sees every earlier create and delete of the room.
  db_.write([this, alive, rec, done](Result<store::Connection*> c) -> std::function<void()> {
    Result<bool> created = fail(internalError("no connection"));
    if (!c) {
      created = fail(c.error());
    } else if (auto cat = findCategory(**c, rec.category); !cat) {
      created = fail(cat.error());
    } else if (!cat->has_value()) {
      created = fail(failedPrecondition("category `" + rec.category + "` does not exist"));
    } else {
      created = createRoom(**c, rec);
    }
    return [this, alive, name = rec.name, created, done]() {
      if (!*alive) return;
      // A record of "no such room" held in memory must not outlive the creation.
      if (auto it = rooms_.find(name); created && *created && it != rooms_.end() &&
                                       it->second->loaded && !it->second->exists &&
                                       it->second->occupants.empty()) {
        rooms_.erase(it);
      }
      done(created);
    };
  });
}

void MucService::adminRemoveRoom(const std::string& name, const std::string& reason,
                                 AdminDone done) {
  if (Status st = servesForAdmin(name); !st.isOk()) return done(fail(st));
  bool live = false;
  if (auto it = rooms_.find(name); it != rooms_.end()) {
    // A room still loading is dropped too: its load (queued before the delete below) must not
    // bring it back to life.
    live = it->second->exists && it->second->unsaved;
    tellDestroyed(*it->second, reason, "");
    rooms_.erase(it);
  }
  auto alive = alive_;
  db_.write([alive, name, live, done](Result<store::Connection*> c) -> std::function<void()> {
    auto r = c ? deleteRoom(**c, name) : Result<bool>(fail(c.error()));
    return [alive, r, live, done]() {
      if (!*alive) return;
      if (!r) return done(r);
      done(*r || live);
    };
  });
}

}  // namespace tandem::chat
