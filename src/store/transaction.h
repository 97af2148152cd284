// Running a unit of work in one PostgreSQL transaction, retried on conflicts.
// Blocks on the connection; same thread rule as Connection.
#pragma once

#include <functional>

#include "common/status.h"
#include "store/connection.h"

namespace tandem::store {

// BEGIN; body(c); COMMIT. When the body or the COMMIT fails with Conflict (serialization
// failure, deadlock, unique violation), rolls back and runs the body again, up to `attempts`
// times in all; the body must therefore be safe to rerun (no side effects outside `c`). Any
// other failure rolls back and is returned as is. On success everything the body did is
// committed (and, with a synchronous mirror, on the mirror too). Requires: `c` not already in a
// transaction.
Status inTransaction(Connection& c, const std::function<Status(Connection&)>& body,
                     int attempts = 3);

}  // namespace tandem::store
