// admin::Endpoint: the common admin paths (health, status, metrics, CMS replica).
#include "admin/endpoint.h"

#include <filesystem>

#include "cms/version.h"
#include "common/files.h"

namespace tandem::admin {

Result<std::unique_ptr<Endpoint>> Endpoint::create(const EndpointOptions& options,
                                                   cms::Replica* replica) {
  std::unique_ptr<Endpoint> e(new Endpoint());
  e->options_ = options;
  e->replica_ = replica;
  auto token = readFile(options.state_dir + "/secret/token");
  if (!token)
    return fail(notFound("admin endpoint of `" + options.name + "`: the deployment secret `" +
                         options.state_dir + "/secret/token` is missing (`tandemctl deploy up` "
                         "creates it)"));
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ' || t.back() == '\r')) t.pop_back();
  rpc::ServerOptions so;
  so.address = options.address;
  so.port = options.port;
  so.cert_file = options.state_dir + "/pki/" + options.name + ".pem";
  so.key_file = options.state_dir + "/pki/" + options.name + ".key";
  so.token = t;
  so.threads = options.threads;
  for (const auto& f : {so.cert_file, so.key_file}) {
    if (!std::filesystem::exists(f))
      return fail(notFound("admin endpoint of `" + options.name + "`: certificate file `" + f +
                           "` is missing (`tandemctl deploy up` issues it)"));
  }
  e->server_ = std::make_unique<rpc::AdminServer>(so);
  Endpoint* self = e.get();
  e->server_->route("GET", "/health", [self](const rpc::Request&) {
    Status st = self->health_check_ ? self->health_check_() : Status::ok();
    nlohmann::json doc = {{"ok", st.isOk()},
                          {"name", self->options_.name},
                          {"role", self->options_.role},
                          {"site", self->options_.site},
                          {"version", cms::kProductVersion}};
    if (self->replica_) doc["cms_version"] = self->replica_->current()->version().number;
    if (!st.isOk()) doc["problem"] = st.message();
    return rpc::Response::json(doc, st.isOk() ? 200 : 503);
  });
  e->server_->route("GET", "/status", [self](const rpc::Request&) {
    nlohmann::json doc = self->status_provider_ ? self->status_provider_() : nlohmann::json();
    if (!doc.is_object()) doc = nlohmann::json::object();
    doc["name"] = self->options_.name;
    doc["role"] = self->options_.role;
    doc["site"] = self->options_.site;
    doc["uptime_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - self->started_).count();
    if (self->replica_) doc["cms_replica"] = self->replica_->report();
    return rpc::Response::json(doc);
  });
  e->server_->route("GET", "/metrics", [self](const rpc::Request&) {
    self->refreshCommonMetrics();
    if (self->metrics_refresher_) self->metrics_refresher_(self->metrics_);
    return rpc::Response::text(self->metrics_.render());
  });
  if (replica) cms::serveReplica(*e->server_, *replica);
  return e;
}

Endpoint::~Endpoint() { stop(); }

void Endpoint::setStatusProvider(std::function<nlohmann::json()> p) { status_provider_ = std::move(p); }
void Endpoint::setHealthCheck(std::function<Status()> c) { health_check_ = std::move(c); }
void Endpoint::setMetricsRefresher(std::function<void(rpc::Metrics&)> r) {
  metrics_refresher_ = std::move(r);
}

void Endpoint::refreshCommonMetrics() {
  metrics_.setGauge("tandem_uptime_seconds",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(),
                    {}, "Seconds since this process started its admin endpoint");
  if (!replica_) return;
  metrics_.setGauge("tandem_cms_replica_version",
                    static_cast<double>(replica_->current()->version().number), {},
                    "CMS version held by this server's replica (0: bootstrap topology file)");
  metrics_.setGauge("tandem_cms_replica_age_seconds", replica_->ageSeconds(), {},
                    "Seconds since this server's replica received the version it holds");
}

Status Endpoint::start() {
  started_ = std::chrono::steady_clock::now();
  return server_->start();
}

void Endpoint::stop() {
  if (server_) server_->stop();
}

}  // namespace tandem::admin
