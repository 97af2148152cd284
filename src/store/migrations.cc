// Schema migrations (schema_migrations table, advisory lock) and database creation.
#include "store/migrations.h"

#include <libpq-fe.h>

#include "store/transaction.h"

namespace tandem::store {

namespace {

// One key for every component: migrations are rare and short, and one key also serialises the
// CREATE TABLE IF NOT EXISTS of schema_migrations itself (which races on pg_type otherwise).
constexpr const char* kLockKey = "7468616e64656d";  // "tandem" in hex, as a bigint literal

Status applyOne(Connection& c, const std::string& component, const Migration& m) {
  return inTransaction(
      c,
      [&](Connection& tx) -> Status {
        auto seen = tx.exec("SELECT 1 FROM schema_migrations WHERE component = $1 AND version = $2",
                            {component, std::to_string(m.version)});
        if (!seen) return seen.error();
        if (!seen->rows.empty()) return Status::ok();  // applied meanwhile by another process
        TANDEM_RETURN_IF_ERROR(tx.execAll(m.sql));
        auto rec = tx.exec(
            "INSERT INTO schema_migrations(component, version, description) VALUES ($1, $2, $3)",
            {component, std::to_string(m.version), m.description});
        return rec ? Status::ok() : rec.error();
      },
      1);
}

}  // namespace

Status applyMigrations(Connection& c, const std::string& component,
                       const std::vector<Migration>& migrations) {
  const std::string ctx = "migrations of `" + component + "`";
  const std::string key = std::string("x'") + kLockKey + "'::bigint";
  if (auto l = c.exec("SELECT pg_advisory_lock(" + key + ")"); !l) {
    return l.error().withContext(ctx + ": cannot take the migration lock");
  }
  Status result = [&]() -> Status {
    TANDEM_RETURN_IF_ERROR(c.execAll(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " component text NOT NULL, version integer NOT NULL, description text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"));
    auto done = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = $1",
                       {component});
    if (!done) return done.error();
    int applied = std::stoi(done->rows.at(0)[0]);
    int previous = 0;
    for (const auto& m : migrations) {
      if (m.version <= previous) {
        return internalError("migration " + std::to_string(m.version) +
                             " is out of order (versions must increase)");
      }
      previous = m.version;
      if (m.version <= applied) continue;
      Status st = applyOne(c, component, m);
      if (!st) {
        return st.withContext("migration " + std::to_string(m.version) + " (" + m.description +
                              ") failed and was rolled back");
      }
    }
    return Status::ok();
  }();
  if (c.isOk()) (void)c.exec("SELECT pg_advisory_unlock(" + key + ")");  // also freed on close
  return result.isOk() ? result : result.withContext(ctx);
}

Status ensureDatabase(const std::vector<std::string>& addresses, const std::string& password,
                      const std::string& dbname) {
  auto conn = Connection::open(connectionString(addresses, "postgres", password, true));
  if (!conn) return conn.error().withContext("cannot create database `" + dbname + "`");
  auto exists = (*conn)->exec("SELECT 1 FROM pg_database WHERE datname = $1", {dbname});
  if (!exists) return exists.error().withContext("database `" + dbname + "`");
  if (!exists->rows.empty()) return Status::ok();
  char* ident = PQescapeIdentifier((*conn)->raw(), dbname.c_str(), dbname.size());
  if (ident == nullptr) return invalidArgument("database name `" + dbname + "` is not valid");
  std::string sql = std::string("CREATE DATABASE ") + ident + " OWNER tandem";
  PQfreemem(ident);
  auto created = (*conn)->exec(sql);
  if (created) return Status::ok();
  // 42P04 duplicate_database: another process won the race, which is what we wanted.
  if (created.error().message().find("42P04") != std::string::npos ||
      created.error().code() == StatusCode::kConflict) {
    return Status::ok();
  }
  return created.error().withContext("cannot create database `" + dbname + "`");
}

}  // namespace tandem::store
