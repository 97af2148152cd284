// Rooms, categories and affiliations in mgc.
#include "chat/room_store.h"

#include "store/transaction.h"

namespace tandem::chat {

namespace {

// PostgreSQL text[] literal of `v` ({"a","b"} with quotes and backslashes escaped).
std::string arrayLiteral(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : v[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// Reads array_to_json(text[]) output.
std::vector<std::string> fromJsonArray(const std::string& text) {
  std::vector<std::string> out;
  try {
    for (const auto& e : nlohmann::json::parse(text)) out.push_back(e.get<std::string>());
  } catch (const std::exception&) {
  }
  return out;
}

Category categoryFromRow(const store::Row& r) {
  return Category{r[0], r[1], fromJsonArray(r[2]), fromJsonArray(r[3])};
}

constexpr const char* kCategoryColumns =
    "name, description, array_to_json(creators)::text, array_to_json(members)::text";
constexpr const char* kRoomColumns =
    "name, category, config::text, subject, subject_nick, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

RoomRecord roomFromRow(const store::Row& r) {
  RoomRecord room;
  room.name = r[0];
  room.category = r[1];
  try {
    room.config = RoomConfig::fromJson(nlohmann::json::parse(r[2]));
  } catch (const std::exception&) {
  }
  room.subject = r[3];
  room.subject_nick = r[4];
  room.created_at = r[5];
  return room;
}

Status loadAffiliations(store::Connection& c, RoomRecord& room) {
  auto r = c.exec("SELECT jid, affiliation FROM affiliations WHERE room = $1", {room.name});
  if (!r) return r.error();
  for (const auto& row : r->rows) room.affiliations[row[0]] = row[1];
  return Status::ok();
}

}  // namespace

bool principalMatches(const std::vector<std::string>& entries, const std::string& bare_jid) {
  auto at = bare_jid.find('@');
  std::string domain = at == std::string::npos ? bare_jid : bare_jid.substr(at + 1);
  for (const auto& e : entries) {
    if (e == "*" || e == bare_jid) return true;
    if (!e.empty() && e[0] == '@' && e.substr(1) == domain) return true;
  }
  return false;
}

nlohmann::json RoomConfig::toJson() const {
  nlohmann::json j = {{"title", title},           {"description", description},
                      {"persistent", persistent}, {"public", public_room},
                      {"members_only", members_only}, {"moderated", moderated},
                      {"allow_invites", allow_invites}, {"change_subject", change_subject},
                      {"max_users", max_users}};
  if (!reserved_nicks.empty()) j["reserved_nicks"] = reserved_nicks;
  return j;
}

RoomConfig RoomConfig::fromJson(const nlohmann::json& j) {
  RoomConfig c;
  if (!j.is_object()) return c;
  c.title = j.value("title", c.title);
  c.description = j.value("description", c.description);
  c.persistent = j.value("persistent", c.persistent);
  c.public_room = j.value("public", c.public_room);
  c.members_only = j.value("members_only", c.members_only);
  c.moderated = j.value("moderated", c.moderated);
  c.allow_invites = j.value("allow_invites", c.allow_invites);
  c.change_subject = j.value("change_subject", c.change_subject);
  c.max_users = j.value("max_users", c.max_users);
  if (auto it = j.find("reserved_nicks"); it != j.end() && it->is_object()) {
    for (const auto& [jid, nick] : it->items()) {
      if (nick.is_string()) c.reserved_nicks[jid] = nick.get<std::string>();
    }
  }
  return c;
}

Result<std::vector<Category>> listCategories(store::Connection& c) {
  auto r = c.exec(std::string("SELECT ") + kCategoryColumns + " FROM categories ORDER BY name");
  if (!r) return fail(r.error());
  std::vector<Category> out;
  for (const auto& row : r->rows) out.push_back(categoryFromRow(row));
  return out;
}

Result<std::optional<Category>> findCategory(store::Connection& c, const std::string& name) {
  auto r = c.exec(std::string("SELECT ") + kCategoryColumns + " FROM categories WHERE name = $1",
                  {name});
  if (!r) return fail(r.error());
  if (r->rows.empty()) return std::optional<Category>();
  return std::optional<Category>(categoryFromRow(r->rows[0]));
}

Status upsertCategory(store::Connection& c, const Category& cat) {
  auto r = c.exec(
      "INSERT INTO categories(name, description, creators, members) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, "
      "creators = EXCLUDED.creators, members = EXCLUDED.members",
      {cat.name, cat.description, arrayLiteral(cat.creators), arrayLiteral(cat.members)});
  return r ? Status::ok() : r.error();
}

Status removeCategory(store::Connection& c, const std::string& name) {
  auto used = c.exec("SELECT count(*) FROM rooms WHERE category = $1", {name});
  if (!used) return used.error();
  long n = std::stol(used->rows[0][0]);
  if (n > 0) {
    return failedPrecondition("category `" + name + "` still holds " + std::to_string(n) +
                              " room(s); remove them first (`tandemctl chat room remove`)");
  }
  auto r = c.exec("DELETE FROM categories WHERE name = $1", {name});
  if (!r) return r.error();
  if (r->affected == 0) return notFound("category `" + name + "` does not exist");
  return Status::ok();
}

Result<std::optional<RoomRecord>> loadRoom(store::Connection& c, const std::string& name) {
  auto r = c.exec(std::string("SELECT ") + kRoomColumns + " FROM rooms WHERE name = $1", {name});
  if (!r) return fail(r.error());
  if (r->rows.empty()) return std::optional<RoomRecord>();
  RoomRecord room = roomFromRow(r->rows[0]);
  if (Status st = loadAffiliations(c, room); !st) return fail(st);
  return std::optional<RoomRecord>(std::move(room));
}

Result<std::vector<RoomRecord>> listRooms(store::Connection& c, const std::string& category) {
  auto r = category.empty()
               ? c.exec(std::string("SELECT ") + kRoomColumns + " FROM rooms ORDER BY name")
               : c.exec(std::string("SELECT ") + kRoomColumns +
                            " FROM rooms WHERE category = $1 ORDER BY name",
                        {category});
  if (!r) return fail(r.error());
  std::vector<RoomRecord> out;
  for (const auto& row : r->rows) {
    out.push_back(roomFromRow(row));
    if (Status st = loadAffiliations(c, out.back()); !st) return fail(st);
  }
  return out;
}

Result<bool> createRoom(store::Connection& c, const RoomRecord& room) {
  bool created = false;
  Status st = store::inTransaction(c, [&](store::Connection& tx) -> Status {
    auto cat = tx.exec("SELECT 1 FROM categories WHERE name = $1", {room.category});
    if (!cat) return cat.error();
    if (cat->rows.empty()) {
      return notFound("category `" + room.category + "` does not exist; add it first "
                      "(`tandemctl chat category add`)");
    }
    auto r = tx.exec(
        "INSERT INTO rooms(name, category, config, subject, subject_nick) "
        "VALUES ($1, $2, $3::jsonb, $4, $5) ON CONFLICT (name) DO NOTHING",
        {room.name, room.category, room.config.toJson().dump(), room.subject, room.subject_nick});
    if (!r) return r.error();
    created = r->affected > 0;
    if (!created) return Status::ok();
    for (const auto& [jid, aff] : room.affiliations) {
      auto a = tx.exec("INSERT INTO affiliations(room, jid, affiliation) VALUES ($1, $2, $3)",
                       {room.name, jid, aff});
      if (!a) return a.error();
    }
    return Status::ok();
  });
  if (!st) return fail(st);
  return created;
}

Status saveRoom(store::Connection& c, const RoomRecord& room) {
  auto r = c.exec(
      "UPDATE rooms SET category = $2, config = $3::jsonb, subject = $4, subject_nick = $5 "
      "WHERE name = $1",
      {room.name, room.category, room.config.toJson().dump(), room.subject, room.subject_nick});
  if (!r) return r.error();
  if (r->affected == 0) return notFound("room `" + room.name + "` does not exist");
  return Status::ok();
}

Status setAffiliation(store::Connection& c, const std::string& room, const std::string& jid,
                      const std::string& affiliation, const std::string& reason) {
  auto r = affiliation == "none"
               ? c.exec("DELETE FROM affiliations WHERE room = $1 AND jid = $2", {room, jid})
               : c.exec("INSERT INTO affiliations(room, jid, affiliation, reason) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT (room, jid) DO UPDATE "
                        "SET affiliation = EXCLUDED.affiliation, reason = EXCLUDED.reason",
                        {room, jid, affiliation, reason});
  return r ? Status::ok() : r.error();
}

Result<bool> deleteRoom(store::Connection& c, const std::string& name) {
  bool existed = false;
  Status st = store::inTransaction(c, [&](store::Connection& tx) -> Status {
    auto m = tx.exec("DELETE FROM messages WHERE room = $1", {name});
    if (!m) return m.error();
    auto r = tx.exec("DELETE FROM rooms WHERE name = $1", {name});
    if (!r) return r.error();
    existed = r->affected > 0;
    return Status::ok();
  });
  if (!st.isOk()) return fail(st);
  return existed;
}

}  // namespace tandem::chat
