// Rooms, categories and affiliations in `mgc`: what the chat servers load and persist, and what
// `tandemctl chat room|category` writes directly (the admin side needs no running chat server).
//
// Categories (as in the reference system): every room belongs to one; a category lists who may
// create rooms in it (`creators`) and who may join its rooms (`members`). An entry is a bare JID
// ("alice@example.test"), a domain ("@example.test") or "*" (anyone). All functions block on
// the connection (same thread rule as store::Connection) and report store errors unchanged.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "store/connection.h"

namespace tandem::chat {

struct Category {
  std::string name;
  std::string description;
  std::vector<std::string> creators{"*"};
  std::vector<std::string> members{"*"};
};

// True when `bare_jid` matches one of `entries` ("*", "@domain" or the bare JID itself).
bool principalMatches(const std::vector<std::string>& entries, const std::string& bare_jid);

// The room configuration we keep (XEP-0045 muc#roomconfig fields, our defaults).
struct RoomConfig {
  std::string title;            // muc#roomconfig_roomname
  std::string description;      // muc#roomconfig_roomdesc
  bool persistent = true;       // persistent chat: rooms live until destroyed
  bool public_room = true;      // listed in disco#items
  bool members_only = false;
  bool moderated = false;
  bool allow_invites = true;    // occupants may invite (members-only: grants membership)
  bool change_subject = false;  // participants may change the subject (moderators always)
  int max_users = 0;            // 0 = the service limit
  // Nicknames registered with the room (XEP-0045 §7.10): bare JID -> nickname. Nobody else
  // joins under them. Kept with the configuration (no table of their own).
  std::map<std::string, std::string> reserved_nicks;
  nlohmann::json toJson() const;
  static RoomConfig fromJson(const nlohmann::json& j);  // missing fields keep defaults
};

struct RoomRecord {
  std::string name;      // node, lower case
  std::string category;
  RoomConfig config;
  std::string subject, subject_nick;
  std::map<std::string, std::string> affiliations;  // bare JID -> owner|admin|member|outcast
  std::string created_at;  // UTC ISO-8601
};

// --- categories ---------------------------------------------------------------------------
Result<std::vector<Category>> listCategories(store::Connection& c);
Result<std::optional<Category>> findCategory(store::Connection& c, const std::string& name);
// Creates or replaces a category (idempotent).
Status upsertCategory(store::Connection& c, const Category& cat);
// FailedPrecondition when rooms still use it (names the count); NotFound when absent.
Status removeCategory(store::Connection& c, const std::string& name);

// --- rooms --------------------------------------------------------------------------------
Result<std::optional<RoomRecord>> loadRoom(store::Connection& c, const std::string& name);
Result<std::vector<RoomRecord>> listRooms(store::Connection& c, const std::string& category = "");
// Creates the room when absent (with its affiliations); returns false when it already existed
// (nothing changed). NotFound when the category does not exist.
Result<bool> createRoom(store::Connection& c, const RoomRecord& room);
// Updates config/subject/category of an existing room; NotFound when absent.
Status saveRoom(store::Connection& c, const RoomRecord& room);
// Sets (or with "none" removes) one affiliation.
Status setAffiliation(store::Connection& c, const std::string& room, const std::string& jid,
                      const std::string& affiliation, const std::string& reason = "");
// Deletes the room, its affiliations and its history (destroy); false when it did not exist
// (nothing changed).
Result<bool> deleteRoom(store::Connection& c, const std::string& name);

}  // namespace tandem::chat
