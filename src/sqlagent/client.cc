// sqlagent::Client: typed calls over rpc::AdminClient.
#include "sqlagent/client.h"

namespace tandem::sqlagent {

namespace {

template <typename T>
T get(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return fallback;
  }
}

}  // namespace

AgentStatus agentStatusFromJson(const nlohmann::json& j) {
  AgentStatus s;
  s.store = get<std::string>(j, "store", "");
  s.site = get<std::string>(j, "site", "");
  s.role = get<std::string>(j, "role", "");
  s.pg_up = get<bool>(j, "pg_up", false);
  s.in_recovery = get<bool>(j, "in_recovery", false);
  s.timeline = get<int>(j, "timeline", 0);
  s.lsn = get<std::string>(j, "lsn", "");
  s.partner = get<std::string>(j, "partner", "");
  s.principal = get<std::string>(j, "principal", "");
  s.mirror_status = get<std::string>(j, "mirror_status", "");
  s.lag_bytes = get<long>(j, "lag_bytes", 0);
  s.lag_seconds = get<double>(j, "lag_seconds", 0);
  s.last_contact_with_partner = get<std::string>(j, "last_contact_with_partner", "");
  s.witness = get<std::string>(j, "witness", "");
  s.witness_sees_principal = get<bool>(j, "witness_sees_principal", false);
  s.synchronous = get<bool>(j, "synchronous", false);
  if (j.contains("divergence") && j["divergence"].is_object()) {
    s.divergence = get<std::string>(j["divergence"], "summary", "");
  }
  s.raw = j;
  return s;
}

LogShippingStatus logShippingStatusFromJson(const nlohmann::json& j) {
  LogShippingStatus s;
  s.store = get<std::string>(j, "store", "");
  s.role = get<std::string>(j, "role", "");
  s.stanza = get<std::string>(j, "stanza", "");
  s.share = get<std::string>(j, "share", "");
  s.copy_folder = get<std::string>(j, "copy_folder", "");
  s.last_backed_up = get<std::string>(j, "last_backed_up", "");
  s.last_backed_up_time = get<std::string>(j, "last_backed_up_time", "");
  s.last_copied = get<std::string>(j, "last_copied", "");
  s.last_copied_time = get<std::string>(j, "last_copied_time", "");
  s.last_restored = get<std::string>(j, "last_restored", "");
  s.last_restored_time = get<std::string>(j, "last_restored_time", "");
  s.lag_seconds = get<double>(j, "lag_seconds", 0);
  s.copy_job = get<bool>(j, "copy_job", false);
  s.restore_job = get<bool>(j, "restore_job", false);
  s.raw = j;
  return s;
}

Client::Client(std::string address, rpc::ClientOptions options,
               std::chrono::milliseconds long_timeout)
    : address_(std::move(address)), options_(std::move(options)), long_timeout_(long_timeout) {}

Result<Client> Client::forStore(const topology::Topology& topo, const std::string& store,
                                const std::string& state_dir) {
  const topology::Store* s = topo.findStore(store);
  if (s == nullptr) {
    return fail(notFound("store `" + store + "` is not in the topology (see `tandemctl topology show`)"));
  }
  auto opts = rpc::clientOptionsFromStateDir(state_dir);
  if (!opts) return fail(opts.error());
  return Client(s->address, *opts);
}

Result<nlohmann::json> Client::post(const std::string& path, const nlohmann::json& body,
                                    bool long_call) {
  rpc::ClientOptions o = options_;
  if (long_call) o.timeout = long_timeout_;
  rpc::AdminClient c(address_, kAdminPort, o);
  return c.post(path, body.is_null() ? nlohmann::json::object() : body);
}

Result<std::string> Client::action(const std::string& path, const nlohmann::json& body,
                                   bool long_call) {
  auto r = post(path, body, long_call);
  if (!r) return fail(r.error());
  return get<std::string>(*r, "outcome", "done");
}

Status Client::health() {
  auto r = rpc::AdminClient(address_, kAdminPort, options_).get("/health");
  return r ? Status::ok() : r.error();
}

Result<AgentStatus> Client::status() {
  auto r = rpc::AdminClient(address_, kAdminPort, options_).get("/status");
  if (!r) return fail(r.error());
  return agentStatusFromJson(*r);
}

Result<std::string> Client::metrics() {
  return rpc::AdminClient(address_, kAdminPort, options_).getText("/metrics");
}

Result<std::string> Client::promote() { return action("/promote", {}, true); }
Result<std::string> Client::fence() { return action("/fence", {}, true); }
Result<std::string> Client::rejoin(const std::string& principal) {
  return action("/rejoin", {{"principal", principal}}, true);
}
Result<std::string> Client::installMirror(const std::string& mirror) {
  return action("/mirror/install", {{"mirror", mirror}}, true);
}
Result<std::string> Client::becomeMirror(const std::string& principal) {
  return action("/mirror/become", {{"principal", principal}}, true);
}
Result<std::string> Client::removeMirror() { return action("/mirror/remove", {}, true); }
Result<std::string> Client::stop() { return action("/stop", {}, true); }
Result<std::string> Client::start() { return action("/start", {}, true); }

Result<std::vector<ConnectionInfo>> Client::connections() {
  auto r = rpc::AdminClient(address_, kAdminPort, options_).get("/connections");
  if (!r) return fail(r.error());
  std::vector<ConnectionInfo> out;
  for (const auto& c : r->value("connections", nlohmann::json::array())) {
    ConnectionInfo i;
    i.pid = get<int>(c, "pid", 0);
    i.user = get<std::string>(c, "user", "");
    i.database = get<std::string>(c, "database", "");
    i.client_addr = get<std::string>(c, "client_addr", "");
    i.application = get<std::string>(c, "application", "");
    i.state = get<std::string>(c, "state", "");
    i.backend_start = get<std::string>(c, "backend_start", "");
    out.push_back(std::move(i));
  }
  return out;
}

Result<int> Client::endConnections(bool all, int pid) {
  nlohmann::json body = all ? nlohmann::json{{"all", true}} : nlohmann::json{{"pid", pid}};
  auto r = post("/connections/end", body, false);
  if (!r) return fail(r.error());
  return get<int>(*r, "ended", 0);
}

Result<LogShippingStatus> Client::logShippingStatus() {
  auto r = rpc::AdminClient(address_, kAdminPort, options_).get("/log-shipping/status");
  if (!r) return fail(r.error());
  return logShippingStatusFromJson(*r);
}

Result<CopyResult> Client::copyNow() {
  auto r = post("/log-shipping/copy-now", {}, true);
  if (!r) return fail(r.error());
  return CopyResult{get<int>(*r, "copied", 0), get<std::string>(*r, "last_copied", ""),
                    get<std::string>(*r, "outcome", "")};
}

Result<ApplyResult> Client::applyAll() {
  auto r = post("/log-shipping/apply-all", {}, true);
  if (!r) return fail(r.error());
  return ApplyResult{get<std::string>(*r, "last_applied", ""),
                     get<std::string>(*r, "last_commit_time", ""),
                     get<std::string>(*r, "outcome", "")};
}

Result<std::string> Client::removeLogShipping() { return action("/log-shipping/remove"); }
Result<std::string> Client::configureLogShipping(const std::string& from) {
  return action("/log-shipping/configure", {{"from", from}}, true);
}
Result<std::string> Client::recover() { return action("/recover", {}, true); }
Result<std::string> Client::fullBackup(const std::string& stanza) {
  nlohmann::json body = nlohmann::json::object();
  if (!stanza.empty()) body["stanza"] = stanza;
  return action("/backup/full", body, true);
}
Result<std::string> Client::restore(bool overwrite, const std::string& from_stanza) {
  nlohmann::json body = {{"overwrite", overwrite}};
  if (!from_stanza.empty()) body["from_stanza"] = from_stanza;
  return action("/restore", body, true);
}

Result<nlohmann::json> Client::witnessStatus(const std::string& store) {
  return rpc::AdminClient(address_, kAdminPort, options_).get("/witness/status?store=" + store);
}

}  // namespace tandem::sqlagent
