// cms::Client: versions, publish, settings, status and journal on the active xds.
#include "cms/client.h"

#include "cms/internal/xds.h"
#include "cms/settings.h"
#include "topology/loader.h"

namespace tandem::cms {

using internal::Xds;

Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(const topology::Topology& topology,
                                                const std::string& state_dir,
                                                const std::string& author) {
  auto secret = internal::readSecret(state_dir);
  if (!secret) return fail(secret.error());
  auto active = internal::findActive(topology, *secret, true);
  if (!active) return fail(active.error());
  std::unique_ptr<Client> c(new Client());
  c->xds_ = std::move(active->xds);
  c->topology_ = topology;
  c->author_ = author;
  return c;
}

const std::string& Client::activeStore() const { return xds_->location().store; }

Result<Version> Client::current() {
  auto v = xds_->latest(true);
  if (!v) return fail(v.error());
  if (!*v)
    return fail(notFound("nothing was published to the CMS yet (`tandemctl topology publish FILE`)"));
  return **v;
}

Result<Version> Client::version(int64_t number) {
  auto v = xds_->get(number);
  if (!v) return fail(v.error());
  if (!*v) return fail(notFound("CMS version " + std::to_string(number) + " does not exist"));
  return **v;
}

Result<std::vector<Version>> Client::history(int limit) {
  return xds_->list(0, limit, false, true);
}

Result<Version> Client::publish(const std::string& yaml, const std::string& file) {
  auto latest = xds_->latest(true);
  if (!latest) return fail(latest.error());
  nlohmann::json previous_settings = nlohmann::json::object();
  if (*latest && (*latest)->document.contains("settings"))
    previous_settings = (*latest)->document["settings"];
  auto doc = makeTopologyDocument(yaml, file, previous_settings);
  if (!doc) return fail(doc.error());
  auto epoch = xds_->epoch();
  if (!epoch) return fail(epoch.error());
  Version v;
  v.number = *latest ? (*latest)->number + 1 : 1;
  v.epoch = *epoch;
  v.author = author_;
  v.kind = "topology";
  std::string changes;
  if (*latest) {
    auto d = diffSettings(previous_settings, (*doc)["settings"]);
    changes = d.empty() ? "" : " (" + std::to_string(d.size()) + " settings changed)";
  }
  v.summary = "published topology " + file + changes;
  v.document = std::move(*doc);
  auto ins = xds_->insert(v);
  if (!ins && ins.error().code() == StatusCode::kConflict)
    return fail(conflict("another topology or setting was published while this one was being "
                         "written (version " + std::to_string(v.number) +
                         " is taken); nothing was written: retry the publish"));
  return ins;
}

Result<nlohmann::json> Client::getSetting(const std::string& key) {
  auto v = current();
  if (!v) return fail(v.error());
  const auto& s = v->document["settings"];
  if (!s.is_object() || !s.contains(key)) return nlohmann::json();
  return s[key];
}

Result<Version> Client::setSetting(const std::string& key, const nlohmann::json& value,
                                   bool what_if) {
  return setSettings(nlohmann::json{{key, value}}, what_if);
}

Result<Version> Client::setSettings(const nlohmann::json& changes, bool what_if) {
  if (!changes.is_object() || changes.empty())
    return fail(invalidArgument("no setting to change"));
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = current();
    if (!cur) return fail(cur.error());
    auto snap = Snapshot::make(*cur);
    if (!snap) return fail(snap.error());
    const topology::Topology& topo = (*snap)->topology();
    nlohmann::json settings = cur->document["settings"];
    if (!settings.is_object()) settings = nlohmann::json::object();
    for (const auto& [k, val] : changes.items()) {
      Status valid = validateSetting(topo, k, val);
      if (!valid.isOk()) return fail(valid);
      if (val.is_null()) settings.erase(k);
      else settings[k] = val;
    }
    auto diff = diffSettings(cur->document["settings"], settings);
    if (diff.empty()) return *cur;  // already so: nothing to write
    Version v;
    v.number = cur->number + 1;
    auto epoch = xds_->epoch();
    if (!epoch) return fail(epoch.error());
    v.epoch = *epoch;
    v.author = author_;
    v.kind = "setting";
    v.summary = diff.size() == 1 ? diff[0] : diff[0] + " (and " + std::to_string(diff.size() - 1) +
                                                 " more)";
    v.document = cur->document;
    v.document["settings"] = settings;
    if (what_if) return v;
    auto ins = xds_->insert(v);
    if (ins || ins.error().code() != StatusCode::kConflict) return ins;
    // Someone published meanwhile: apply the change on top of their version.
  }
  return fail(conflict("the CMS kept changing while setting " + changes.begin().key() +
                       "; nothing was written: retry"));
}

Result<CmsStatus> Client::status() {
  CmsStatus s;
  s.active_store = xds_->location().store;
  s.active_pool = xds_->location().pool;
  auto e = xds_->epoch();
  if (!e) return fail(e.error());
  s.epoch = *e;
  auto v = xds_->latest(false);
  if (!v) return fail(v.error());
  if (*v) {
    s.current_version = (*v)->number;
    s.current_version_created = (*v)->created_at;
  }
  auto l = xds_->lease();
  if (!l) return fail(l.error());
  if (l->valid) {
    s.master = l->holder;
    s.master_lease_expires = l->expires_at;
  }
  auto a = xds_->agents(std::chrono::seconds(10));
  if (!a) return fail(a.error());
  s.file_transfer_agents = *a;
  for (const auto& loc : internal::locationsOf(topology_))
    if (loc.store != s.active_store) s.standby_store = loc.store;
  auto sv = xds_->meta("standby_version");
  if (sv && *sv) s.standby_version = std::stoll(**sv);
  auto se = xds_->meta("standby_error");
  if (se && *se) s.standby_error = **se;
  auto st = xds_->meta("standby_synced_at");
  if (st && *st) s.standby_synced_at = parseUtc(**st);
  return s;
}

Result<std::vector<ReplicaReport>> Client::replicationStatus() {
  auto cur = xds_->latest(true);
  if (!cur) return fail(cur.error());
  topology::Topology topo = topology_;
  int64_t number = 0, epoch = 0;
  if (*cur) {
    number = (*cur)->number;
    epoch = (*cur)->epoch;
    auto snap = Snapshot::make(**cur);
    if (snap) topo = (*snap)->topology();
  }
  auto rows = xds_->replicas();
  if (!rows) return fail(rows.error());
  std::vector<ReplicaReport> out;
  for (const auto& pool : topo.pools) {
    for (const auto& srv : pool.servers) {
      ReplicaReport r;
      r.fqdn = srv.fqdn;
      r.pool = pool.fqdn;
      auto it = rows->find(srv.fqdn);
      if (it != rows->end()) {
        r.version = it->second.version;
        r.epoch = it->second.epoch;
        r.last_report = it->second.reported_at;
        r.last_update_created = it->second.version_created_at;
        r.product_version = it->second.product_version;
        r.last_error = it->second.last_error;
      }
      r.up_to_date = number > 0 && r.version == number && r.epoch == epoch;
      out.push_back(std::move(r));
    }
  }
  return out;
}

Status Client::appendJournal(const nlohmann::json& entry) {
  if (!entry.is_object() || !entry.contains("run") || !entry["run"].is_string())
    return invalidArgument("a runbook journal entry needs a \"run\" id");
  return xds_->appendJournal(entry);
}

Result<std::vector<nlohmann::json>> Client::journal(const std::string& run_id) {
  return xds_->journal(run_id);
}

}  // namespace tandem::cms
