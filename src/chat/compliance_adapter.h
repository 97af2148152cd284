// The compliance adapter (`tandemd --role compliance --server <chat server>`): every interval,
// exports the chat pool's compliance queue into D/compliance/<chat pool>/ (compliance.h).
//
// It runs beside one chat server and follows that server's CMS replica (read-only): it works
// only while that server is on the active server list (an empty list means nobody touches the
// stores, e.g. during failback), against the store the pool state names. Blocks until `stop`.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "cms/replica.h"
#include "common/status.h"

namespace tandem::chat {

struct ComplianceAdapterOptions {
  std::string server;     // the chat server it runs beside
  std::string state_dir;  // secret/token; exports go to compliance/<pool>/
  // One export file per interval (when there is anything to export). Default 5 s.
  std::chrono::milliseconds interval{5000};
};

// Runs until `stop` becomes true. Errors only when it cannot start (not a chat server, no
// secret); store outages are logged and retried.
Status runComplianceAdapter(const ComplianceAdapterOptions& options, cms::Replica& replica,
                            const std::atomic<bool>& stop);

}  // namespace tandem::chat
