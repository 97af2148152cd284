// The change_log outbox (DESIGN.md §4): every change to user data in `rtc` appends, in the same
// transaction, one row here; the partner pool's Backup Service pulls rows in `seq` order.
//
// The table belongs to the database's owner, which includes changeLogMigration() in its own
// migration list (any version number that fits its sequence). Functions block on the connection;
// same thread rule as Connection.
#pragma once

#include <string>

#include "common/status.h"
#include "store/connection.h"
#include "store/migrations.h"

namespace tandem::store {

// CREATE TABLE change_log(seq bigserial PRIMARY KEY, entity text, key text, op text,
// payload jsonb, created_at timestamptz DEFAULT now()) plus an index on created_at.
// `version` is the number the owner gives it in its list.
Migration changeLogMigration(int version);

// Appends one change (e.g. entity "roster", key "alice@example.test", op "upsert", payload the
// new value as JSON) in the caller's transaction: it becomes visible, and durable, with the
// caller's COMMIT, and vanishes with its ROLLBACK. Requires: `c` inside BEGIN … COMMIT (e.g.
// within inTransaction) and change_log created. Fails with Internal on invalid JSON or a missing
// table (naming changeLogMigration()).
Status appendChangeLog(Connection& c, const std::string& entity, const std::string& key,
                       const std::string& op, const std::string& payload_json);

}  // namespace tandem::store
