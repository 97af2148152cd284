// Databases and versioned schema migrations, owned per component (docs/architecture.md).
//
// Each module that owns a database (rtc, xds, mgc, mgccomp) calls ensureDatabase() once and then
// applyMigrations() with its ordered list at start. Both block on PostgreSQL; both are
// idempotent and safe when several processes run them at the same time.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/connection.h"

namespace tandem::store {

struct Migration {
  int version;              // strictly increasing within a component, starting at 1
  std::string description;  // one line, recorded in schema_migrations
  std::string sql;          // one or more statements; runs in one transaction
};

// Creates table schema_migrations(component, version, description, applied_at) if absent and
// applies, in order and each in its own transaction, the migrations of `component` not yet
// recorded there. Holds a session advisory lock meanwhile, so two processes racing apply each
// migration once. On failure, names the component and the migration; earlier migrations stay
// applied, the failed one is rolled back. Requires: `c` not in a transaction.
Status applyMigrations(Connection& c, const std::string& component,
                       const std::vector<Migration>& migrations);

// Connects to database "postgres" at the writable member of `addresses` and creates `dbname`
// if missing (owner: tandem). OK when it already exists, also when another process created it
// at the same moment. Unavailable when no writable member answers.
Status ensureDatabase(const std::vector<std::string>& addresses, const std::string& password,
                      const std::string& dbname);

}  // namespace tandem::store
