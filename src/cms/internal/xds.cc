// xds: schema migrations and every SQL statement the CMS runs.
#include "cms/internal/xds.h"

#include "common/files.h"
#include "store/migrations.h"

namespace tandem::cms::internal {
namespace {

const std::vector<store::Migration>& migrations() {
  static const std::vector<store::Migration> kMigrations = {
      {1, "versions, meta, lease, agents, replicas, journal", R"sql(
CREATE TABLE cms_versions (
  version bigint PRIMARY KEY,
  epoch bigint NOT NULL,
  created_at timestamptz NOT NULL,
  author text NOT NULL,
  kind text NOT NULL,
  summary text NOT NULL,
  document jsonb NOT NULL);
CREATE TABLE cms_meta (key text PRIMARY KEY, value text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE cms_lease (name text PRIMARY KEY, holder text NOT NULL DEFAULT '',
  expires_at timestamptz NOT NULL DEFAULT 'epoch', term bigint NOT NULL DEFAULT 0);
INSERT INTO cms_lease (name) VALUES ('master');
CREATE TABLE cms_agents (fqdn text PRIMARY KEY, pool text NOT NULL,
  heartbeat_at timestamptz NOT NULL);
CREATE TABLE cms_replicas (fqdn text PRIMARY KEY, version bigint NOT NULL DEFAULT 0,
  epoch bigint NOT NULL DEFAULT 0, version_created_at timestamptz, reported_at timestamptz,
  product_version text NOT NULL DEFAULT '', last_error text NOT NULL DEFAULT '',
  attempted_at timestamptz);
CREATE TABLE cms_journal (id bigserial PRIMARY KEY, run text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(), entry jsonb NOT NULL);
CREATE INDEX cms_journal_run ON cms_journal (run, id);
)sql"},
  };
  return kMigrations;
}

std::optional<SystemTime> timeOrNull(const store::Row& r, size_t i) {
  if (r.isNull(i)) return std::nullopt;
  return parseUtc(r[i]);
}

std::string versionColumns(bool with_document) {
  return "version, epoch, " + utcSql("created_at") + ", author, kind, summary" +
         (with_document ? ", document::text" : ", NULL");
}

Result<Version> versionFromRow(const store::Row& r) {
  Version v;
  v.number = std::stoll(r[0]);
  v.epoch = std::stoll(r[1]);
  v.created_at = parseUtc(r[2]);
  v.author = r[3];
  v.kind = r[4];
  v.summary = r[5];
  if (!r.isNull(6)) {
    try {
      v.document = nlohmann::json::parse(r[6]);
    } catch (const std::exception& e) {
      return fail(dataLoss("CMS version " + r[0] + " has an unreadable document: " + e.what()));
    }
  }
  return v;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string utcSql(const std::string& c) {
  return "to_char(" + c + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

std::vector<Location> locationsOf(const topology::Topology& t) {
  std::vector<Location> out;
  const topology::Pool* cms = t.cmsPool();
  if (!cms) return out;
  auto addresses = [&](const std::string& store_name) {
    std::vector<std::string> a;
    if (const auto* s = t.findStore(store_name)) {
      a.push_back(s->address);
      if (const auto* m = t.findStore(s->mirror)) a.push_back(m->address);
    }
    return a;
  };
  out.push_back({"primary", cms->fqdn, cms->store, addresses(cms->store)});
  if (const auto* b = t.findPool(cms->backup_pool)) {
    if (!b->store.empty() && b->store != cms->store)
      out.push_back({"standby", b->fqdn, b->store, addresses(b->store)});
  }
  return out;
}

std::optional<Location> locationOfPool(const topology::Topology& t, const std::string& pool) {
  for (auto& loc : locationsOf(t))
    if (loc.pool == pool) return loc;
  return std::nullopt;
}

Result<bool> isWritable(const std::string& address, const std::string& password) {
  auto c = store::Connection::open(store::connectionString({address}, "postgres", password, false));
  if (!c) return fail(c.error());
  auto r = (*c)->exec("SELECT pg_is_in_recovery()");
  if (!r) return fail(r.error());
  return !r->rows.empty() && r->rows[0][0] == "f";
}

Status dropXds(const Location& loc, const std::string& password) {
  auto c = store::Connection::open(store::connectionString(loc.addresses, "postgres", password));
  if (!c) return c.error().withContext("store `" + loc.store + "`");
  auto r = (*c)->exec("DROP DATABASE IF EXISTS xds WITH (FORCE)");
  if (!r) return r.error().withContext("dropping the CMS database on store `" + loc.store + "`");
  return Status::ok();
}

Result<std::string> readSecret(const std::string& state_dir) {
  auto s = readFile(state_dir + "/secret/token");
  if (!s)
    return fail(notFound("the deployment secret `" + state_dir +
                         "/secret/token` is missing; run `tandemctl deploy up` or pass the right "
                         "--state-dir"));
  return trim(*s);
}

Result<std::unique_ptr<Xds>> Xds::open(const Location& loc, const std::string& password,
                                       bool create) {
  if (loc.addresses.empty())
    return fail(failedPrecondition("store `" + loc.store + "` has no address in the topology"));
  if (create) {
    Status st = store::ensureDatabase(loc.addresses, password, "xds");
    if (!st.isOk()) return fail(st.withContext("store `" + loc.store + "`"));
  }
  std::unique_ptr<Xds> x(new Xds());
  x->loc_ = loc;
  x->conninfo_ = store::connectionString(loc.addresses, "xds", password);
  auto c = store::Connection::open(x->conninfo_);
  if (!c) {
    if (c.error().message().find("does not exist") != std::string::npos)
      return fail(notFound("store `" + loc.store + "` holds no CMS database (xds)"));
    return fail(c.error().withContext("store `" + loc.store + "`"));
  }
  x->conn_ = std::move(*c);
  if (create) {
    Status st = store::applyMigrations(*x->conn_, "cms", migrations());
    if (!st.isOk()) return fail(st.withContext("store `" + loc.store + "`"));
  }
  return x;
}

store::Connection& Xds::conn() { return *conn_; }

Result<store::QueryResult> Xds::exec(const std::string& sql,
                                     const std::vector<std::optional<std::string>>& params) {
  if (!conn_ || !conn_->isOk()) {
    auto c = store::Connection::open(conninfo_);
    if (!c) return fail(c.error().withContext("store `" + loc_.store + "`"));
    conn_ = std::move(*c);
  }
  auto r = conn_->exec(sql, params);
  if (!r && r.error().code() == StatusCode::kUnavailable) {
    return fail(r.error().withContext("store `" + loc_.store + "`"));
  }
  return r;
}

Result<std::optional<std::string>> Xds::meta(const std::string& key) {
  auto r = exec("SELECT value FROM cms_meta WHERE key = $1", {key});
  if (!r) return fail(r.error());
  if (r->rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(r->rows[0][0]);
}

Status Xds::setMeta(const std::string& key, const std::string& value) {
  auto r = exec(
      "INSERT INTO cms_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET "
      "value = EXCLUDED.value, updated_at = now()",
      {key, value});
  return r ? Status::ok() : r.error();
}

Result<int64_t> Xds::epoch() {
  auto m = meta("epoch");
  if (!m) return fail(m.error());
  if (!*m) return int64_t{-1};
  return std::stoll(**m);
}

Status Xds::setEpoch(int64_t e) { return setMeta("epoch", std::to_string(e)); }

Result<std::optional<Version>> Xds::latest(bool with_document) {
  auto r = exec("SELECT " + versionColumns(with_document) +
                " FROM cms_versions ORDER BY version DESC LIMIT 1");
  if (!r) return fail(r.error());
  if (r->rows.empty()) return std::optional<Version>();
  auto v = versionFromRow(r->rows[0]);
  if (!v) return fail(v.error());
  return std::optional<Version>(std::move(*v));
}

Result<std::optional<Version>> Xds::get(int64_t number) {
  auto r = exec("SELECT " + versionColumns(true) + " FROM cms_versions WHERE version = $1",
                {std::to_string(number)});
  if (!r) return fail(r.error());
  if (r->rows.empty()) return std::optional<Version>();
  auto v = versionFromRow(r->rows[0]);
  if (!v) return fail(v.error());
  return std::optional<Version>(std::move(*v));
}

Result<std::vector<Version>> Xds::list(int64_t after, int limit, bool with_document,
                                       bool newest_first) {
  auto r = exec("SELECT " + versionColumns(with_document) +
                    " FROM cms_versions WHERE version > $1 ORDER BY version " +
                    (newest_first ? "DESC" : "ASC") + " LIMIT $2",
                {std::to_string(after), std::to_string(limit)});
  if (!r) return fail(r.error());
  std::vector<Version> out;
  for (const auto& row : r->rows) {
    auto v = versionFromRow(row);
    if (!v) return fail(v.error());
    out.push_back(std::move(*v));
  }
  return out;
}

Result<Version> Xds::insert(const Version& v) {
  std::optional<std::string> created;
  if (v.created_at != SystemTime{}) created = formatUtc(v.created_at);
  auto r = exec(
      "INSERT INTO cms_versions (version, epoch, created_at, author, kind, summary, document) "
      "VALUES ($1, $2, coalesce($3::timestamptz, now()), $4, $5, $6, $7::jsonb) RETURNING " +
          utcSql("created_at"),
      {std::to_string(v.number), std::to_string(v.epoch), created, v.author, v.kind, v.summary,
       v.document.dump()});
  if (!r) {
    if (r.error().code() == StatusCode::kConflict)
      return fail(conflict("CMS version " + std::to_string(v.number) +
                           " was written by someone else meanwhile; re-read and retry"));
    return fail(r.error());
  }
  Version out = v;
  out.created_at = parseUtc(r->rows[0][0]);
  return out;
}

Status Xds::truncateAfter(int64_t after) {
  auto r = exec("DELETE FROM cms_versions WHERE version > $1", {std::to_string(after)});
  return r ? Status::ok() : r.error();
}

Result<bool> Xds::acquireLease(const std::string& holder, std::chrono::milliseconds ttl) {
  auto r = exec(
      "UPDATE cms_lease SET term = term + CASE WHEN holder = $1 AND expires_at > now() THEN 0 "
      "ELSE 1 END, holder = $1, expires_at = now() + make_interval(secs => $2::double precision "
      "/ 1000) WHERE name = 'master' AND (holder = $1 OR holder = '' OR expires_at < now())",
      {holder, std::to_string(ttl.count())});
  if (!r) return fail(r.error());
  return r->affected == 1;
}

Status Xds::releaseLease(const std::string& holder) {
  auto r = exec(
      "UPDATE cms_lease SET holder = '', expires_at = 'epoch' WHERE name = 'master' AND "
      "holder = $1",
      {holder});
  return r ? Status::ok() : r.error();
}

Result<LeaseInfo> Xds::lease() {
  auto r = exec("SELECT holder, " + utcSql("expires_at") +
                ", expires_at > now(), term FROM cms_lease WHERE name = 'master'");
  if (!r) return fail(r.error());
  LeaseInfo l;
  if (r->rows.empty()) return l;
  l.holder = r->rows[0][0];
  l.expires_at = parseUtc(r->rows[0][1]);
  l.valid = r->rows[0][2] == "t" && !l.holder.empty();
  l.term = std::stoll(r->rows[0][3]);
  return l;
}

Status Xds::heartbeatAgent(const std::string& fqdn, const std::string& pool) {
  auto r = exec(
      "INSERT INTO cms_agents (fqdn, pool, heartbeat_at) VALUES ($1, $2, now()) ON CONFLICT "
      "(fqdn) DO UPDATE SET pool = EXCLUDED.pool, heartbeat_at = now()",
      {fqdn, pool});
  return r ? Status::ok() : r.error();
}

Result<std::vector<std::string>> Xds::agents(std::chrono::milliseconds recent) {
  auto r = exec(
      "SELECT fqdn FROM cms_agents WHERE heartbeat_at > now() - make_interval(secs => "
      "$1::double precision / 1000) ORDER BY fqdn",
      {std::to_string(recent.count())});
  if (!r) return fail(r.error());
  std::vector<std::string> out;
  for (const auto& row : r->rows) out.push_back(row[0]);
  return out;
}

Status Xds::recordReport(const std::string& fqdn, const nlohmann::json& rep) {
  std::optional<std::string> created;
  if (rep.contains("created_at") && rep["created_at"].is_string())
    created = rep["created_at"].get<std::string>();
  auto r = exec(
      "INSERT INTO cms_replicas (fqdn, version, epoch, version_created_at, reported_at, "
      "product_version, last_error, attempted_at) VALUES ($1, $2, $3, $4::timestamptz, now(), "
      "$5, '', now()) ON CONFLICT (fqdn) DO UPDATE SET version = EXCLUDED.version, epoch = "
      "EXCLUDED.epoch, version_created_at = EXCLUDED.version_created_at, reported_at = now(), "
      "product_version = EXCLUDED.product_version, last_error = '', attempted_at = now()",
      {fqdn, std::to_string(rep.value("version", int64_t{0})),
       std::to_string(rep.value("epoch", int64_t{0})), created,
       rep.value("product_version", std::string())});
  return r ? Status::ok() : r.error();
}

Status Xds::recordPushError(const std::string& fqdn, const std::string& error) {
  auto r = exec(
      "INSERT INTO cms_replicas (fqdn, last_error, attempted_at) VALUES ($1, $2, now()) ON "
      "CONFLICT (fqdn) DO UPDATE SET last_error = EXCLUDED.last_error, attempted_at = now()",
      {fqdn, error});
  return r ? Status::ok() : r.error();
}

Result<std::map<std::string, ReplicaRow>> Xds::replicas() {
  auto r = exec("SELECT fqdn, version, epoch, " + utcSql("version_created_at") + ", " +
                utcSql("reported_at") + ", product_version, last_error FROM cms_replicas");
  if (!r) return fail(r.error());
  std::map<std::string, ReplicaRow> out;
  for (const auto& row : r->rows) {
    ReplicaRow x;
    x.fqdn = row[0];
    x.version = std::stoll(row[1]);
    x.epoch = std::stoll(row[2]);
    x.version_created_at = timeOrNull(row, 3);
    x.reported_at = timeOrNull(row, 4);
    x.product_version = row[5];
    x.last_error = row[6];
    out[x.fqdn] = x;
  }
  return out;
}

Status Xds::appendJournal(const nlohmann::json& entry) {
  auto r = exec("INSERT INTO cms_journal (run, entry) VALUES ($1, $2::jsonb)",
                {entry.value("run", std::string()), entry.dump()});
  return r ? Status::ok() : r.error();
}

Result<std::vector<nlohmann::json>> Xds::journal(const std::string& run) {
  auto r = exec("SELECT " + utcSql("at") + ", entry::text FROM cms_journal WHERE run = $1 "
                "ORDER BY id",
                {run});
  if (!r) return fail(r.error());
  std::vector<nlohmann::json> out;
  for (const auto& row : r->rows) {
    nlohmann::json e = nlohmann::json::parse(row[1], nullptr, false);
    if (e.is_discarded() || !e.is_object()) continue;
    e["at"] = row[0];
    out.push_back(std::move(e));
  }
  return out;
}

Result<Active> findActive(const topology::Topology& t, const std::string& password,
                          bool bootstrap) {
  std::vector<Location> locs = locationsOf(t);
  if (locs.empty())
    return fail(failedPrecondition("the topology has no pool with `cms: true`, so there is no CMS"));
  Active best;
  best.epoch = -1;
  bool any_exists = false, primary_reachable = false;
  for (const auto& loc : locs) {
    auto x = Xds::open(loc, password, false);
    if (!x) {
      if (x.error().code() == StatusCode::kNotFound) {
        if (loc.role == "primary") primary_reachable = true;
        best.problems.push_back("store `" + loc.store + "` holds no CMS copy yet");
      } else {
        best.problems.push_back(x.error().message());
      }
      continue;
    }
    if (loc.role == "primary") primary_reachable = true;
    any_exists = true;
    auto e = (*x)->epoch();
    if (!e) {
      best.problems.push_back("store `" + loc.store + "`: " + e.error().message());
      continue;
    }
    if (*e < 1) {
      best.problems.push_back("store `" + loc.store + "` holds only the standby copy (epoch " +
                              std::to_string(*e < 0 ? 0 : *e) + ")");
      continue;
    }
    if (*e > best.epoch) {
      best.epoch = *e;
      best.xds = std::move(*x);
    }
  }
  if (best.xds) return best;
  if (bootstrap && primary_reachable && locs[0].role == "primary") {
    // First start: nothing holds an active epoch yet; the primary becomes the CMS (epoch 1).
    auto x = Xds::open(locs[0], password, true);
    if (!x) return fail(x.error().withContext("creating the CMS"));
    auto e = (*x)->epoch();
    if (!e) return fail(e.error());
    if (*e < 1) {
      Status st = (*x)->setEpoch(1);
      if (!st.isOk()) return fail(st);
    }
    best.epoch = *e < 1 ? 1 : *e;
    best.xds = std::move(*x);
    return best;
  }
  std::string why;
  for (const auto& p : best.problems) why += (why.empty() ? "" : "; ") + p;
  if (!any_exists && primary_reachable)
    return fail(notFound("the CMS was never created: " + why +
                         " (`tandemctl deploy up` or `tandemctl topology publish FILE` creates it)"));
  return fail(unavailable("CMS unreachable: " + why +
                          "; servers keep running on their replicas (see `tandemctl cms failover "
                          "--what-if`)"));
}

}  // namespace tandem::cms::internal
