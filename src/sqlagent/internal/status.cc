// The read side of the agent's API: health, status, metrics, connections.
#include <spdlog/spdlog.h>

#include "sqlagent/internal/agent.h"

namespace tandem::sqlagent {

nlohmann::json Agent::health() {
  // ok only once the store is in its role (a mirror streaming, a backup store restoring), so
  // that `deploy up` waiting for health means "ready"; `detail` says what it is waiting for.
  Persisted p = persisted();
  std::string detail;
  {
    std::lock_guard lock(mu_);
    detail = last_error_;
  }
  bool ok = bootstrapped_.load();
  return {{"ok", ok},
          {"name", self_.name},
          {"role", p.role.empty() ? "Starting" : p.role},
          {"site", self_.site},
          {"version", "0.1"},
          {"bootstrapped", ok},
          {"detail", ok ? "" : (detail.empty() ? "starting: bringing the store into its role" : detail)}};
}

nlohmann::json Agent::status() {
  Persisted p = persisted();
  Observed o;
  std::string last_error;
  {
    std::lock_guard lock(mu_);
    o = seen_;
    last_error = last_error_;
  }
  // The local part is read live: callers act on it right after a change.
  if (p.role != kWitness) observeLocal(o);
  nlohmann::json j = {
      {"store", self_.name},
      {"site", self_.site},
      {"address", self_.address},
      {"role", p.role.empty() ? "Starting" : p.role},
      {"bootstrapped", bootstrapped_.load()},
      {"pg_up", o.pg_up},
      {"in_recovery", o.in_recovery},
      {"timeline", o.timeline},
      {"lsn", o.lsn},
      {"partner", p.mirror_removed ? "" : p.partner},
      {"principal", p.role == kMirror ? p.principal : ""},
      {"mirror_status", (p.partner.empty() || p.mirror_removed) ? "" : o.mirror_status},
      {"lag_bytes", o.lag_bytes},
      {"lag_seconds", o.lag_seconds},
      {"last_contact_with_partner", o.partner_last_contact_utc},
      {"witness", witnessName()},
      {"witness_reachable", o.witness_reachable},
      {"witness_sees_principal", o.witness_sees_principal},
      {"synchronous", p.synchronous && !p.mirror_removed},
      // Commits are acknowledged without the mirror (granted by the witness); see docs/stores.md.
      {"exposed", p.role == kPrincipal && p.exposed && !p.synchronous && !p.mirror_removed},
      // The mirror may lack commits acknowledged while exposed (until it is SYNCHRONIZED again).
      {"mirror_behind", p.role == kPrincipal && p.exposed && !p.mirror_removed},
      {"connections", o.connections},
      {"partner_timeout_s", std::chrono::duration<double>(o_.partner_timeout).count()},
      {"last_error", last_error},
      // What the last rejoin discarded beyond the fork (docs/stores.md "Divergence"), or null.
      {"divergence", p.divergence},
  };
  if (p.role == kWitness) {
    nlohmann::json watching = nlohmann::json::object();
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [name, v] : witness_.views()) watching[name] = witness_.statusOf(name, now);
    j["watching"] = watching;
  }
  if (p.role == kBackupRestoring || !p.ls_from.empty()) {
    j["log_shipping_from"] = p.ls_from;
    j["log_shipping_removed"] = p.ls_removed;
  }
  return j;
}

std::string Agent::metricsText() {
  Persisted p = persisted();
  metrics_.clear("tandem_store_role");
  metrics_.setGauge("tandem_store_role", 1, {{"store", self_.name}, {"role", p.role}},
                    "The store's current role (value 1 on the current role's series)");
  return metrics_.render();
}

Result<nlohmann::json> Agent::connections() {
  auto c = pg_->connect();
  if (!c) return fail(c.error().withContext("store `" + self_.name + "`"));
  auto r = (*c)->exec(
      "SELECT pid, coalesce(usename, ''), coalesce(datname, ''), coalesce(host(client_addr), 'local'),"
      " coalesce(application_name, ''), coalesce(state, ''),"
      " to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
      " FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
      " AND application_name <> '" + std::string(kMonitorApplication) + "' ORDER BY backend_start");
  if (!r) return fail(r.error());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& row : r->rows) {
    list.push_back({{"pid", std::atoi(row[0].c_str())}, {"user", row[1]}, {"database", row[2]},
                    {"client_addr", row[3]}, {"application", row[4]}, {"state", row[5]},
                    {"backend_start", row[6]}});
  }
  return nlohmann::json{{"store", self_.name}, {"connections", list}};
}

Result<nlohmann::json> Agent::endConnections(bool all, int pid) {
  if (!all && pid <= 0) return fail(invalidArgument("give {\"all\": true} or {\"pid\": N}"));
  auto c = pg_->connect();
  if (!c) return fail(c.error().withContext("store `" + self_.name + "`"));
  auto r = all ? (*c)->exec("SELECT count(pg_terminate_backend(pid)) FILTER (WHERE true) FROM pg_stat_activity"
                            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                            " AND application_name <> '" + std::string(kMonitorApplication) + "'")
               : (*c)->exec("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND"
                            " backend_type = 'client backend' AND pg_terminate_backend(pid)",
                            {std::to_string(pid)});
  if (!r) return fail(r.error());
  int ended = std::atoi(r->rows[0][0].c_str());
  if (!all && ended == 0) {
    return fail(notFound("no client connection with pid " + std::to_string(pid) + " on store `" + self_.name + "`"));
  }
  return nlohmann::json{{"ok", true}, {"ended", ended},
                        {"outcome", "ended " + std::to_string(ended) + " connection(s) on store `" + self_.name + "`"}};
}

}  // namespace tandem::sqlagent
