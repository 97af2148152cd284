// Helpers of the UserData module on one store connection: opening both ends, the copyable
// tables, the publication, the copy's metadata, digests and COPY between two connections.
// Internal to src/backup. Each function blocks on its connection(s); same thread rule as
// store::Connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backup/digest.h"
#include "backup/link.h"
#include "common/status.h"
#include "store/connection.h"

namespace tandem::backup::internal {

using store::Connection;

// P's `rtc` at its writable member.
Result<std::unique_ptr<Connection>> openSource(const Link& link);
// Q's copy database at its writable member, creating it and its metadata schema when missing.
Result<std::unique_ptr<Connection>> openCopy(const Link& link);
// Q's copy database only when it exists (nullptr when it does not), without creating anything.
Result<std::unique_ptr<Connection>> openCopyIfExists(const Link& link);

// Tables of schema public with a primary key, except schema_migrations, in name order.
Result<std::vector<std::string>> copyableTables(Connection& c);
// CREATE PUBLICATION tandem_backup FOR TABLE ... or ALTER ... SET TABLE when it differs.
Status ensurePublication(Connection& source, const std::vector<std::string>& tables);
// md5 over the tables' column names and types, in order: changes when a migration changes them.
Result<std::string> schemaFingerprint(Connection& c, const std::vector<std::string>& tables);
// pg_control_system().system_identifier (the same on a store and its mirror).
Result<std::string> systemIdentifier(Connection& c);

// The copy's metadata (schema tandem_backup, table meta): "" when the key is unset.
Result<std::string> getMeta(Connection& copy, const std::string& key);
// Upserts in the caller's transaction, or its own when there is none.
Status setMeta(Connection& copy, const std::string& key, const std::string& value);

// Does the copy database have the subscription of `link`?
Result<bool> hasSubscription(Connection& copy, const Link& link);

// The SQL expression naming a row's user in `table`: split_part(owner, '@', 1) when the table
// has an `owner` column, else `name`, else its first primary-key column.
Result<std::string> userKey(Connection& c, const std::string& table);
// user -> (rows, digest) for `table`, with `key` from userKey().
Result<TableDigests> tableDigests(Connection& c, const std::string& table, const std::string& key);

// Streams `table` from `from` (COPY TO STDOUT) into `to` (COPY FROM STDIN). Both in their
// callers' transactions; same column order on both sides (the copy's schema is P's dump).
Status copyTable(Connection& from, Connection& to, const std::string& table);

std::string quoteIdent(const std::string& s);    // "name" with inner quotes doubled
std::string quoteLiteral(const std::string& s);  // 'text' with inner quotes doubled

}  // namespace tandem::backup::internal
