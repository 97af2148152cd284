// The compliance adapter loop: follow the replica, export the queue once per interval.
#include "chat/compliance_adapter.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "chat/compliance.h"
#include "chat/schema.h"
#include "common/files.h"
#include "store/connection.h"

namespace tandem::chat {

Status runComplianceAdapter(const ComplianceAdapterOptions& options, cms::Replica& replica,
                            const std::atomic<bool>& stop) {
  auto token = readFile(options.state_dir + "/secret/token");
  if (!token) {
    return notFound("the deployment secret " + options.state_dir +
                    "/secret/token is missing; run `tandemctl deploy up` first");
  }
  std::string secret = *token;
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == ' ')) secret.pop_back();
  std::unique_ptr<store::Connection> conn;
  std::string conninfo;
  auto next = std::chrono::steady_clock::now();
  while (!stop) {
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    next = std::chrono::steady_clock::now() + options.interval;
    auto snap = replica.current();
    const auto& topo = snap->topology();
    const topology::Pool* pool = nullptr;
    if (!topo.findServer(options.server, &pool) || !pool || pool->role != topology::PoolRole::kChat) {
      return notFound("`" + options.server + "` is not a chat server of the deployed topology");
    }
    auto active = snap->activeServers(pool->fqdn);
    if (std::find(active.begin(), active.end(), options.server) == active.end()) {
      conn.reset();  // inactive: hold no connection to the stores
      continue;
    }
    bool failed_over = snap->chatState(pool->fqdn) == "FailedOver";
    const auto* st = topo.findStore(failed_over ? pool->backup_store : pool->store);
    if (!st) continue;
    std::vector<std::string> addresses{st->address};
    std::string mirror = st->mirror.empty() && failed_over ? pool->backup_mirror : st->mirror;
    if (const auto* m = topo.findStore(mirror)) addresses.push_back(m->address);
    std::string ci = store::connectionString(addresses, kComplianceDatabase, secret);
    const std::string dir = options.state_dir + "/compliance/" + pool->fqdn;
    if (!conn || !conn->isOk() || ci != conninfo) {
      conn.reset();
      auto c = store::Connection::open(ci);
      if (!c) {
        spdlog::warn("compliance: {}", c.error().message());
        continue;
      }
      conn = std::move(*c);
      conninfo = ci;
      if (Status s = applyComplianceSchema(*conn); !s) {
        spdlog::warn("compliance: {}", s.message());
        conn.reset();
        continue;
      }
      auto rec = recoverExports(*conn, dir);
      if (!rec) {
        spdlog::error("compliance: {}", rec.error().message());
        conn.reset();
        continue;
      }
      if (*rec > 0) spdlog::warn("compliance: recovered {} export file(s) left by a crash", *rec);
    }
    auto out = exportCompliance(*conn, dir, pool->fqdn);
    if (!out) {
      spdlog::warn("compliance: {}", out.error().message());
      conn.reset();
      continue;
    }
    if (out->messages > 0) spdlog::info("compliance: exported {} message(s) to {}", out->messages, out->path);
    // Heartbeat for `tandemctl chat compliance status` (the adapter has no admin endpoint).
    std::string outcome = out->messages > 0 ? "exported " + std::to_string(out->messages) +
                                                  " message(s) to " + out->path
                                            : "queue empty";
    auto hb = conn->exec(
        "INSERT INTO adapter(server, last_run_at, interval_ms, last_outcome) "
        "VALUES ($1, now(), $2::integer, $3) ON CONFLICT (server) DO UPDATE SET "
        "last_run_at = now(), interval_ms = EXCLUDED.interval_ms, "
        "last_outcome = EXCLUDED.last_outcome",
        {options.server, std::to_string(options.interval.count()), outcome});
    if (!hb) spdlog::warn("compliance: recording the heartbeat failed: {}", hb.error().message());
  }
  return Status::ok();
}

}  // namespace tandem::chat
