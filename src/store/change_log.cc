// The change_log outbox: its schema and the append used inside callers' transactions.
#include "store/change_log.h"

namespace tandem::store {

Migration changeLogMigration(int version) {
  return {version, "change_log outbox",
          "CREATE TABLE IF NOT EXISTS change_log ("
          " seq bigserial PRIMARY KEY, entity text NOT NULL, key text NOT NULL,"
          " op text NOT NULL, payload jsonb NOT NULL DEFAULT '{}'::jsonb,"
          " created_at timestamptz NOT NULL DEFAULT now());"
          "CREATE INDEX IF NOT EXISTS change_log_created_at ON change_log (created_at);"};
}

Status appendChangeLog(Connection& c, const std::string& entity, const std::string& key,
                       const std::string& op, const std::string& payload_json) {
  auto r = c.exec("INSERT INTO change_log(entity, key, op, payload) VALUES ($1, $2, $3, $4::jsonb)",
                  {entity, key, op, payload_json.empty() ? std::string("{}") : payload_json});
  if (r) return Status::ok();
  if (r.error().message().find("42P01") != std::string::npos) {
    return r.error().withContext(
        "change_log is missing; add store::changeLogMigration() to the database's migrations");
  }
  return r.error().withContext("cannot append to change_log (" + entity + " " + key + ")");
}

}  // namespace tandem::store
