// The chat pool's two databases and their schemas: `mgc` (rooms, categories, affiliations and
// the whole room history) and `mgccomp` (the compliance queue). See docs/persistent-chat.md.
//
// Why two databases and no distributed transaction: DESIGN.md keeps `mgccomp` out of the DR
// contract (its content is transient), so it lives beside `mgc` on the same store but is not
// written in the same transaction. Exactly-once into the compliance queue comes from an outbox
// cursor instead: every `mgc.messages` row carries the server that wrote it (`written_by`) and a
// sequence number that, per writer, grows in commit order (one group-commit writer per server).
// The compliance feed (compliance_feed.h) copies rows with `seq` > the writer's cursor into
// `mgccomp.queue` and advances the cursor in the same `mgccomp` transaction, keyed by the mgc
// `seq`, so a crash between the two commits only delays rows, never loses or doubles them.
// Functions block on PostgreSQL; all are idempotent.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/connection.h"
#include "store/migrations.h"

namespace tandem::chat {

inline constexpr const char* kMgcDatabase = "mgc";
inline constexpr const char* kComplianceDatabase = "mgccomp";
// The category every store starts with: anyone may create rooms and join them.
inline constexpr const char* kDefaultCategory = "general";

// The ordered migrations of each database (component names "chat.mgc" and "chat.mgccomp").
const std::vector<store::Migration>& mgcMigrations();
const std::vector<store::Migration>& complianceMigrations();

// Creates both databases on the writable member of `addresses` when missing and applies both
// migration lists. Unavailable when no writable member answers; Internal when a migration fails
// (named). Safe when several chat servers run it at once.
Status ensureChatSchemas(const std::vector<std::string>& addresses, const std::string& password);

// Applies the migrations of one already-open database (tests, tools).
Status applyMgcSchema(store::Connection& c);
Status applyComplianceSchema(store::Connection& c);

}  // namespace tandem::chat
