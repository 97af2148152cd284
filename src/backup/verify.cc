// The UserData module: verify, repair of one user, and the sync interval (userdata.h).
#include "backup/internal/sql.h"
#include "backup/userdata.h"
#include "store/transaction.h"

namespace tandem::backup {

using internal::Connection;

namespace {

struct Ends {
  std::unique_ptr<Connection> source, copy;
  std::vector<std::string> tables;  // copied tables (the publication's)
};

Result<Ends> openEnds(const Link& link) {
  Ends e;
  auto s = internal::openSource(link);
  if (!s) return fail(s.error());
  auto c = internal::openCopyIfExists(link);
  if (!c) return fail(c.error());
  if (!*c) {
    return fail(failedPrecondition("pool `" + link.pool + "` has no copy in store `" +
                                   link.target_store + "` yet (NotInitialized)"));
  }
  e.source = std::move(*s);
  e.copy = std::move(*c);
  auto t = internal::copyableTables(*e.source);
  if (!t) return fail(t.error());
  e.tables = std::move(*t);
  return e;
}

// One pass: counts and per-user differences of every table.
Status comparePass(Ends& e, std::vector<TableCount>& counts, std::vector<Difference>& diffs) {
  counts.clear();
  diffs.clear();
  for (const auto& table : e.tables) {
    auto key = internal::userKey(*e.source, table);
    if (!key) return key.error();
    auto p = internal::tableDigests(*e.source, table, *key);
    if (!p) return p.error();
    auto c = internal::tableDigests(*e.copy, table, *key);
    if (!c) return c.error().withContext("in the copy");
    TableCount n{table, 0, 0};
    for (const auto& [u, d] : *p) n.pool_rows += d.rows;
    for (const auto& [u, d] : *c) n.copy_rows += d.rows;
    counts.push_back(n);
    auto d = compareDigests(table, *p, *c);
    diffs.insert(diffs.end(), d.begin(), d.end());
  }
  return Status::ok();
}

}  // namespace

Result<VerifyReport> verify(const Link& link, std::chrono::milliseconds timeout) {
  if (Status st = sync(link, timeout); !st) return fail(st);
  auto ends = openEnds(link);
  if (!ends) return fail(ends.error());
  VerifyReport report;
  std::vector<Difference> first;
  if (Status st = comparePass(*ends, report.counts, first); !st) return fail(st);
  if (first.empty()) return report;
  // Changes made during the first pass differ between the two reads; after another sync only
  // real differences remain in both passes.
  if (Status st = sync(link, timeout); !st) return fail(st);
  std::vector<Difference> second;
  if (Status st = comparePass(*ends, report.counts, second); !st) return fail(st);
  report.differences = confirmedDifferences(second, first);
  return report;
}

Status repairUser(const Link& link, const std::string& user, std::chrono::milliseconds timeout) {
  auto ends = openEnds(link);
  if (!ends) return ends.error();
  std::vector<std::pair<std::string, std::string>> keys;  // table -> user key expression
  for (const auto& t : ends->tables) {
    auto k = internal::userKey(*ends->source, t);
    if (!k) return k.error();
    keys.emplace_back(t, *k);
  }
  long touched = 0;
  // 1 the copy forgets the user (changes of the user still in flight then find no row, which
  //   logical replication skips for UPDATE/DELETE, or insert one that step 2 rewrites).
  Status st = store::inTransaction(*ends->copy, [&](Connection& c) -> Status {
    for (const auto& [t, k] : keys) {
      auto r =
          c.exec("DELETE FROM public." + internal::quoteIdent(t) + " WHERE " + k + " = $1", {user});
      if (!r) return r.error();
      touched += r->affected;
    }
    return Status::ok();
  });
  if (!st) return st.withContext("repairing user `" + user + "` in the copy");
  // 2 P rewrites the user's rows unchanged, in one transaction: the stream carries a delete and
  //   an insert of each, after every earlier change, so the copy ends equal to P.
  st = store::inTransaction(*ends->source, [&](Connection& c) -> Status {
    for (const auto& [t, k] : keys) {
      const std::string name = "public." + internal::quoteIdent(t);
      TANDEM_RETURN_IF_ERROR(c.execAll("DROP TABLE IF EXISTS pg_temp.tandem_repair"));
      auto a = c.exec("CREATE TEMP TABLE tandem_repair ON COMMIT DROP AS SELECT * FROM " + name +
                          " WHERE " + k + " = $1",
                      {user});
      if (!a) return a.error();
      auto d = c.exec("DELETE FROM " + name + " WHERE " + k + " = $1", {user});
      if (!d) return d.error();
      touched += d->affected;
      auto i = c.exec("INSERT INTO " + name + " SELECT * FROM tandem_repair");
      if (!i) return i.error();
      TANDEM_RETURN_IF_ERROR(c.execAll("DROP TABLE tandem_repair"));
    }
    return Status::ok();
  });
  if (!st) return st.withContext("repairing user `" + user + "` in pool `" + link.pool + "`");
  if (touched == 0) {
    return notFound("user `" + user + "` has no data in pool `" + link.pool + "` nor in its copy");
  }
  return sync(link, timeout);
}

Result<int> syncInterval(const Link& link) {
  auto copy = internal::openCopyIfExists(link);
  if (!copy) return fail(copy.error());
  if (!*copy) return kDefaultSyncIntervalS;
  auto v = internal::getMeta(**copy, "sync_interval_s");
  if (!v) return fail(v.error());
  return v->empty() ? kDefaultSyncIntervalS : std::stoi(*v);
}

Status setSyncInterval(const Link& link, int seconds) {
  if (seconds < 1 || seconds > 3600) {
    return invalidArgument("the sync interval must be 1 to 3600 seconds (got " +
                           std::to_string(seconds) + ")");
  }
  auto copy = internal::openCopy(link);
  if (!copy) return copy.error();
  return internal::setMeta(**copy, "sync_interval_s", std::to_string(seconds));
}

}  // namespace tandem::backup
