// The compliance feed and export (DESIGN.md §7: `mgccomp` is transient; the adapter purges what
// it has written).
//
// 1. Feed (run by each chat server): copies the messages this server wrote to `mgc` into
//    `mgccomp.queue`, exactly once, through the per-writer cursor described in schema.h.
// 2. Export (run by `tandemd --role compliance`): moves queued messages into JSON Lines files,
//    one file per run, written atomically (temp file, fsync, rename) and purged from the queue in
//    the same `mgccomp` transaction that records the file. A crash after the rename but before
//    the commit leaves a file the export log does not know: recoverExports() finds it at the next
//    start and purges its messages then, so every message is exported exactly once.
// One line: {"mgc_seq", "room" (room JID), "stanza_id", "sender", "nick", "body", "ts"
// (XEP-0082 UTC), "written_by"}. Functions block on PostgreSQL and disk.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "store/connection.h"

namespace tandem::chat {

// Copies up to `max_rows` messages written by `writer` past its cursor from `mgc` into the
// queue and advances the cursor, in one `comp` transaction. Returns the number copied (0 when
// the feed is caught up). Store errors unchanged; nothing is half-done on error.
Result<size_t> feedCompliance(store::Connection& mgc, store::Connection& comp,
                              const std::string& writer, size_t max_rows = 5000);

struct ExportedFile {
  std::string path;       // "" when the queue was empty (no file written)
  size_t messages = 0;
};

// Exports up to `max_rows` queued messages (oldest mgc_seq first) of chat pool `service` into
// `dir` (created when missing) and purges them. Unavailable when the store or the disk fails;
// the queue is then unchanged (a renamed file is recovered by recoverExports()).
Result<ExportedFile> exportCompliance(store::Connection& comp, const std::string& dir,
                                      const std::string& service, size_t max_rows = 50000);

// Purges the messages of files in `dir` that the export log does not record (see above).
// Returns how many files it recovered.
Result<size_t> recoverExports(store::Connection& comp, const std::string& dir);

// {"queue_depth", "oldest_queued_at", "last_export": {"file", "messages", "written_at"} | null,
//  "exports_total", "cursors": {writer: last_seq}}.
Result<nlohmann::json> complianceStatus(store::Connection& comp);

}  // namespace tandem::chat
