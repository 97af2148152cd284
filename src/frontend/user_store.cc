// UserStore on the pool's rtc database: schema, accounts, rosters, offline messages, blocks.
#include "frontend/user_store.h"


#include "store/connection.h"
#include "store/migrations.h"
#include "store/transaction.h"

namespace tandem::frontend {

namespace {

using store::Connection;
using Params = std::vector<std::optional<std::string>>;

std::vector<store::Migration> migrations() {
  return {
      {1, "users, rosters, pending subscriptions, offline messages, blocks",
       "CREATE TABLE users (name text PRIMARY KEY, pool text NOT NULL,"
       " sha1_salt text NOT NULL, sha1_iterations int NOT NULL, sha1_stored_key text NOT NULL,"
       " sha1_server_key text NOT NULL, sha256_salt text NOT NULL, sha256_iterations int NOT NULL,"
       " sha256_stored_key text NOT NULL, sha256_server_key text NOT NULL,"
       " created_at timestamptz NOT NULL DEFAULT now());"
       "CREATE TABLE roster (owner text NOT NULL, contact text NOT NULL, name text NOT NULL DEFAULT '',"
       " subscription text NOT NULL DEFAULT 'none', ask boolean NOT NULL DEFAULT false,"
       " groups text[] NOT NULL DEFAULT '{}', PRIMARY KEY (owner, contact));"
       "CREATE TABLE pending_in (owner text NOT NULL, contact text NOT NULL, stanza text NOT NULL,"
       " created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (owner, contact));"
       "CREATE TABLE offline (id bigserial PRIMARY KEY, owner text NOT NULL, stanza text NOT NULL,"
       " stored_at timestamptz NOT NULL DEFAULT now());"
       "CREATE INDEX offline_owner ON offline (owner, id);"
       "CREATE TABLE blocks (owner text NOT NULL, contact text NOT NULL,"
       " PRIMARY KEY (owner, contact));"},
      // Version 2 was the change_log outbox; the Backup Service replicates these tables with
      // PostgreSQL logical replication instead (src/backup), so version 3 removes it.
      {2, "change_log outbox",
       "CREATE TABLE IF NOT EXISTS change_log (seq bigserial PRIMARY KEY, entity text NOT NULL,"
       " key text NOT NULL, op text NOT NULL, payload jsonb NOT NULL DEFAULT '{}'::jsonb,"
       " created_at timestamptz NOT NULL DEFAULT now())"},
      {3, "drop the change_log outbox (replaced by logical replication)",
       "DROP TABLE IF EXISTS change_log"},
      {4, "roster items carry subscription pre-approval (RFC 6121 §3.4)",
       "ALTER TABLE roster ADD COLUMN approved boolean NOT NULL DEFAULT false;"},
  };
}

std::string pgArray(const std::vector<std::string>& items) {
  std::string s = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += ',';
    s += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  return s + "}";
}

// Parses the text form of a text[] as returned by libpq ({a,"b c"}).
std::vector<std::string> parsePgArray(const std::string& text) {
  std::vector<std::string> out;
  if (text.size() < 2) return out;
  std::string cur;
  bool quoted = false, any = false;
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 2 < text.size()) cur += text[++i];
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any || !cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

UserStore::UserStore(std::vector<std::string> addresses, std::string password,
                     size_t max_connections)
    : addresses_(std::move(addresses)), password_(std::move(password)) {
  pool_ = std::make_unique<store::ConnectionPool>(
      store::connectionString(addresses_, "rtc", password_), max_connections);
}

Status UserStore::migrate() {
  TANDEM_RETURN_IF_ERROR(store::ensureDatabase(addresses_, password_, "rtc"));
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("preparing database rtc");
  return store::applyMigrations(lease->get(), "frontend", migrations());
}

#define TANDEM_LEASE(var, what)                                \
  auto var = pool_->acquire();                                 \
  if (!var) return fail(var.error().withContext(what));

Status UserStore::createUser(const std::string& name, const std::string& pool,
                             const std::string& password, bool if_missing) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("creating user `" + name + "`");
  auto s1 = xmpp::deriveScramCredentials(xmpp::ScramHash::kSha1, password);
  auto s256 = xmpp::deriveScramCredentials(xmpp::ScramHash::kSha256, password);
  bool existed = false;
  Status st = store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec(
        "INSERT INTO users(name, pool, sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,"
        " sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (name) DO NOTHING",
        {name, pool, xmpp::base64Encode(s1.salt), std::to_string(s1.iterations),
         xmpp::base64Encode(s1.stored_key), xmpp::base64Encode(s1.server_key),
         xmpp::base64Encode(s256.salt), std::to_string(s256.iterations),
         xmpp::base64Encode(s256.stored_key), xmpp::base64Encode(s256.server_key)});
    if (!r) return r.error();
    if (r->affected == 0) {
      existed = true;
      return Status::ok();
    }
    return Status::ok();
  });
  if (!st.isOk()) return st.withContext("creating user `" + name + "`");
  if (existed && !if_missing) {
    return conflict("user `" + name + "` already exists; use `tandemctl user set-password` to "
                    "change its password");
  }
  return Status::ok();
}

Status UserStore::removeUser(const std::string& name) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("removing user `" + name + "`");
  bool found = false;
  Status st = store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec("DELETE FROM users WHERE name = $1", {name});
    if (!r) return r.error();
    found = r->affected > 0;
    if (!found) return Status::ok();
    // Owner keys of the per-user tables are bare JIDs: name@domain.
    for (const char* table : {"roster", "pending_in", "offline", "blocks"}) {
      auto d = c.exec(std::string("DELETE FROM ") + table + " WHERE split_part(owner, '@', 1) = $1",
                      {name});
      if (!d) return d.error();
    }
    return Status::ok();
  });
  if (!st.isOk()) return st.withContext("removing user `" + name + "`");
  if (!found) return notFound("user `" + name + "` does not exist");
  return Status::ok();
}

Status UserStore::setPassword(const std::string& name, const std::string& password) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("setting the password of `" + name + "`");
  auto s1 = xmpp::deriveScramCredentials(xmpp::ScramHash::kSha1, password);
  auto s256 = xmpp::deriveScramCredentials(xmpp::ScramHash::kSha256, password);
  bool found = false;
  Status st = store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec(
        "UPDATE users SET sha1_salt=$2, sha1_iterations=$3, sha1_stored_key=$4, sha1_server_key=$5,"
        " sha256_salt=$6, sha256_iterations=$7, sha256_stored_key=$8, sha256_server_key=$9"
        " WHERE name=$1",
        {name, xmpp::base64Encode(s1.salt), std::to_string(s1.iterations),
         xmpp::base64Encode(s1.stored_key), xmpp::base64Encode(s1.server_key),
         xmpp::base64Encode(s256.salt), std::to_string(s256.iterations),
         xmpp::base64Encode(s256.stored_key), xmpp::base64Encode(s256.server_key)});
    if (!r) return r.error();
    found = r->affected > 0;
    if (!found) return Status::ok();
    return Status::ok();
  });
  if (!st.isOk()) return st.withContext("setting the password of `" + name + "`");
  if (!found) return notFound("user `" + name + "` does not exist");
  return Status::ok();
}

Result<std::vector<UserRecord>> UserStore::listUsers() {
  TANDEM_LEASE(lease, "listing users");
  auto r = lease->get().exec(
      "SELECT name, pool, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
      " FROM users ORDER BY name");
  if (!r) return fail(r.error().withContext("listing users"));
  std::vector<UserRecord> out;
  for (const auto& row : r->rows) out.push_back({row[0], row[1], row[2]});
  return out;
}

Result<std::optional<UserRecord>> UserStore::findUser(const std::string& name) {
  TANDEM_LEASE(lease, "looking up user `" + name + "`");
  auto r = lease->get().exec("SELECT name, pool, created_at::text FROM users WHERE name = $1", {name});
  if (!r) return fail(r.error().withContext("looking up user `" + name + "`"));
  if (r->rows.empty()) return std::optional<UserRecord>();
  const auto& row = r->rows[0];
  return std::optional<UserRecord>(UserRecord{row[0], row[1], row[2]});
}

Result<std::optional<xmpp::ScramCredentials>> UserStore::credentials(const std::string& name,
                                                                      xmpp::ScramHash hash) {
  TANDEM_LEASE(lease, "reading the credentials of `" + name + "`");
  std::string p = hash == xmpp::ScramHash::kSha1 ? "sha1_" : "sha256_";
  auto r = lease->get().exec("SELECT " + p + "salt, " + p + "iterations, " + p + "stored_key, " +
                                 p + "server_key FROM users WHERE name = $1",
                             {name});
  if (!r) return fail(r.error().withContext("reading the credentials of `" + name + "`"));
  if (r->rows.empty()) return std::optional<xmpp::ScramCredentials>();
  const auto& row = r->rows[0];
  xmpp::ScramCredentials c;
  auto salt = xmpp::base64Decode(row[0]);
  auto stored = xmpp::base64Decode(row[2]);
  auto server = xmpp::base64Decode(row[3]);
  if (!salt || !stored || !server) {
    return fail(StatusCode::kDataLoss, "the credentials of user `" + name + "` are corrupt");
  }
  c.salt = *salt;
  c.iterations = std::stoi(row[1]);
  c.stored_key = *stored;
  c.server_key = *server;
  return std::optional<xmpp::ScramCredentials>(c);
}

Result<std::vector<RosterItem>> UserStore::roster(const std::string& owner) {
  TANDEM_LEASE(lease, "reading the roster of `" + owner + "`");
  auto r = lease->get().exec(
      "SELECT contact, name, subscription, ask, groups, approved FROM roster WHERE owner = $1"
      " ORDER BY contact",
      {owner});
  if (!r) return fail(r.error().withContext("reading the roster of `" + owner + "`"));
  std::vector<RosterItem> out;
  for (const auto& row : r->rows) {
    out.push_back({row[0], row[1], row[2], row[3] == "t", row[5] == "t", parsePgArray(row[4])});
  }
  return out;
}

Status UserStore::putRosterItem(const std::string& owner, const RosterItem& item) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("updating the roster of `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec(
        "INSERT INTO roster(owner, contact, name, subscription, ask, groups, approved)"
        " VALUES ($1,$2,$3,$4,$5,$6::text[],$7) ON CONFLICT (owner, contact) DO UPDATE SET"
        " name=EXCLUDED.name, subscription=EXCLUDED.subscription, ask=EXCLUDED.ask,"
        " groups=EXCLUDED.groups, approved=EXCLUDED.approved",
        {owner, item.contact, item.name, item.subscription, item.ask ? "true" : "false",
         pgArray(item.groups), item.approved ? "true" : "false"});
    if (!r) return r.error();
    return Status::ok();
  });
}

Status UserStore::removeRosterItem(const std::string& owner, const std::string& contact) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("updating the roster of `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec("DELETE FROM roster WHERE owner=$1 AND contact=$2", {owner, contact});
    if (!r) return r.error();
    return Status::ok();
  });
}

Status UserStore::addPendingIn(const std::string& owner, const std::string& contact,
                               const std::string& stanza) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("storing a subscription request for `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec("INSERT INTO pending_in(owner, contact, stanza) VALUES ($1,$2,$3)"
                    " ON CONFLICT (owner, contact) DO UPDATE SET stanza=EXCLUDED.stanza",
                    {owner, contact, stanza});
    if (!r) return r.error();
    return Status::ok();
  });
}

Status UserStore::removePendingIn(const std::string& owner, const std::string& contact) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("updating subscription requests of `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec("DELETE FROM pending_in WHERE owner=$1 AND contact=$2", {owner, contact});
    if (!r) return r.error();
    if (r->affected == 0) return Status::ok();
    return Status::ok();
  });
}

Result<std::vector<std::pair<std::string, std::string>>> UserStore::pendingIn(
    const std::string& owner) {
  TANDEM_LEASE(lease, "reading subscription requests of `" + owner + "`");
  auto r = lease->get().exec("SELECT contact, stanza FROM pending_in WHERE owner=$1 ORDER BY created_at",
                             {owner});
  if (!r) return fail(r.error().withContext("reading subscription requests of `" + owner + "`"));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : r->rows) out.emplace_back(row[0], row[1]);
  return out;
}

Status UserStore::storeOffline(const std::string& owner, const std::string& stanza) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("storing an offline message for `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec("INSERT INTO offline(owner, stanza) VALUES ($1,$2) RETURNING id", {owner, stanza});
    if (!r) return r.error();
    return Status::ok();
  });
}

Result<std::vector<OfflineMessage>> UserStore::takeOffline(const std::string& owner) {
  TANDEM_LEASE(lease, "reading offline messages of `" + owner + "`");
  std::vector<OfflineMessage> out;
  Status st = store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    out.clear();
    auto r = c.exec(
        "DELETE FROM offline WHERE owner=$1 RETURNING id, stanza,"
        " to_char(stored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
        {owner});
    if (!r) return r.error();
    for (const auto& row : r->rows) out.push_back({std::stoll(row[0]), row[1], row[2]});
    if (out.empty()) return Status::ok();
    return Status::ok();
  });
  if (!st.isOk()) return fail(st.withContext("reading offline messages of `" + owner + "`"));
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return out;
}

Result<std::vector<std::string>> UserStore::blocks(const std::string& owner) {
  TANDEM_LEASE(lease, "reading the block list of `" + owner + "`");
  auto r = lease->get().exec("SELECT contact FROM blocks WHERE owner=$1 ORDER BY contact", {owner});
  if (!r) return fail(r.error().withContext("reading the block list of `" + owner + "`"));
  std::vector<std::string> out;
  for (const auto& row : r->rows) out.push_back(row[0]);
  return out;
}

Status UserStore::setBlocked(const std::string& owner, const std::vector<std::string>& contacts,
                             bool blocked) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("updating the block list of `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    for (const auto& contact : contacts) {
      auto r = blocked ? c.exec("INSERT INTO blocks(owner, contact) VALUES ($1,$2) ON CONFLICT DO NOTHING",
                                {owner, contact})
                       : c.exec("DELETE FROM blocks WHERE owner=$1 AND contact=$2", {owner, contact});
      if (!r) return r.error();
    }
    return Status::ok();
  });
}

Status UserStore::clearBlocks(const std::string& owner) {
  auto lease = pool_->acquire();
  if (!lease) return lease.error().withContext("updating the block list of `" + owner + "`");
  return store::inTransaction(lease->get(), [&](Connection& c) -> Status {
    auto r = c.exec("DELETE FROM blocks WHERE owner=$1", {owner});
    if (!r) return r.error();
    return Status::ok();
  });
}

}  // namespace tandem::frontend
