// The full copy of the UserData module (resync.h).
#include "backup/internal/resync.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <thread>

#include "backup/internal/sql.h"
#include "common/process.h"
#include "store/transaction.h"

namespace tandem::backup::internal {

namespace {

constexpr const char* kPgDump = "/usr/lib/postgresql/15/bin/pg_dump";

struct PgConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using ReplicationConn = std::unique_ptr<PGconn, PgConnCloser>;

struct ExportedSlot {
  ReplicationConn conn;  // keeps the snapshot alive until closed or reused
  std::string snapshot;
  std::string host;  // the member of P it was created on (the snapshot lives there only)
};

Status dropSlot(Connection& source, const std::string& slot) {
  // A walsender still using the slot (the old subscription, or a copy that just lost its
  // publisher) must go first; it exits within a moment of the signal.
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto r = source.exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
        " WHERE slot_name = $1 AND active_pid IS NOT NULL",
        {slot});
    if (!r) return r.error();
    auto d = source.exec(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_name = $1 AND NOT active",
        {slot});
    if (d) {
      auto left = source.exec("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", {slot});
      if (left && left->rows.empty()) return Status::ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return unavailable("replication slot `" + slot + "` stays in use; cannot drop it");
}

Result<ExportedSlot> createExportedSlot(const Link& link, const std::string& slot) {
  std::string conninfo =
      store::connectionString(link.source_addresses, link.source_db, link.password) +
      " replication=database";
  ExportedSlot out;
  out.conn.reset(PQconnectdb(conninfo.c_str()));
  if (PQstatus(out.conn.get()) != CONNECTION_OK) {
    return fail(unavailable(std::string("replication connection to store `") + link.source_store +
                            "`: " + PQerrorMessage(out.conn.get())));
  }
  out.host = PQhost(out.conn.get());
  std::string sql =
      "CREATE_REPLICATION_SLOT " + quoteIdent(slot) + " LOGICAL pgoutput (SNAPSHOT 'export')";
  PGresult* r = PQexec(out.conn.get(), sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok) out.snapshot = PQgetvalue(r, 0, 2);
  PQclear(r);
  if (!ok) {
    return fail(unavailable("creating replication slot `" + slot + "` on store `" +
                            link.source_store + "`: " + PQerrorMessage(out.conn.get())));
  }
  return out;
}

// P's schema for `tables` as SQL the copy can run: pg_dump's plain output without psql
// meta-commands (\restrict ...), and search_path reset afterwards.
Result<std::string> dumpSchema(const Link& link, const ExportedSlot& slot,
                               const std::vector<std::string>& tables) {
  std::vector<std::string> argv = {kPgDump,
                                   "--schema-only",
                                   "--no-owner",
                                   "--no-privileges",
                                   "--no-publications",
                                   "--no-subscriptions",
                                   "--no-comments",
                                   "--snapshot=" + slot.snapshot,
                                   "-h",
                                   slot.host,
                                   "-U",
                                   "tandem",
                                   "-d",
                                   link.source_db};
  for (const auto& t : tables) argv.push_back("--table=public." + quoteIdent(t));
  RunOptions o;
  o.env["PGPASSWORD"] = link.password;
  o.timeout = std::chrono::seconds(60);
  auto r = runChecked("dumping the schema of store `" + link.source_store + "`", argv, o);
  if (!r) return fail(r.error());
  std::istringstream in(r->out);
  std::string line, sql;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '\\') continue;
    sql += line + "\n";
  }
  return sql + ";SET search_path TO public;";
}

// Step 5: one transaction of the copy.
Status replaceCopy(const Link& link, Connection& copy, Connection& snap, const ExportedSlot& slot,
                   const std::vector<std::string>& tables, const std::string& reason) {
  auto ddl = dumpSchema(link, slot, tables);
  if (!ddl) return ddl.error();
  auto fingerprint = schemaFingerprint(snap, tables);
  if (!fingerprint) return fingerprint.error();
  auto sysid = systemIdentifier(snap);
  if (!sysid) return sysid.error();
  const std::string sub = link.slotName();
  return store::inTransaction(
      copy,
      [&](Connection& c) -> Status {
        if (auto has = hasSubscription(c, link); has && *has) {
          auto d = c.exec("DROP SUBSCRIPTION " + quoteIdent(sub));
          if (!d) return d.error().withContext("dropping the old subscription");
        }
        auto old = copyableTables(c);
        if (!old) return old.error();
        for (const auto& t : *old) {
          auto d = c.exec("DROP TABLE IF EXISTS public." + quoteIdent(t) + " CASCADE");
          if (!d) return d.error();
        }
        TANDEM_RETURN_IF_ERROR(c.execAll(*ddl).withContext("creating the pool's schema"));
        for (const auto& t : tables) TANDEM_RETURN_IF_ERROR(copyTable(snap, c, t));
        const std::string conninfo =
            store::connectionString(link.source_addresses, link.source_db, link.password);
        auto s = c.exec("CREATE SUBSCRIPTION " + quoteIdent(sub) + " CONNECTION " +
                        quoteLiteral(conninfo) + " PUBLICATION " + Link::kPublication +
                        " WITH (create_slot = false, slot_name = " + quoteLiteral(sub) +
                        ", copy_data = false, synchronous_commit = 'on')");
        if (!s) return s.error().withContext("creating the subscription");
        auto n = getMeta(c, "resyncs");
        if (!n) return n.error();
        auto now =
            c.exec("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
        if (!now) return now.error();
        for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
                 {"schema_fingerprint", *fingerprint},
                 {"source_system_id", *sysid},
                 {"resyncs", std::to_string((n->empty() ? 0 : std::stoll(*n)) + 1)},
                 {"last_resync_reason", reason},
                 {"resync_running", ""},
                 {"last_resync_error", ""},
                 {"refusal", ""},
                 {"last_resync_at", now->rows.at(0)[0]}}) {
          TANDEM_RETURN_IF_ERROR(setMeta(c, k, v));
        }
        return Status::ok();
      },
      1);
}

}  // namespace

Status resync(const Link& link, Connection& copy, const std::string& reason) {
  const std::string slot = link.slotName();
  spdlog::info("backup {}: full copy ({})", link.describe(), reason);
  TANDEM_RETURN_IF_ERROR(setMeta(copy, "resync_running", "since " + reason));
  Status st = [&]() -> Status {
    if (auto has = hasSubscription(copy, link); has && *has) {
      auto a = copy.exec("ALTER SUBSCRIPTION " + quoteIdent(slot) + " DISABLE");
      if (!a) return a.error().withContext("disabling the old subscription");
      auto b = copy.exec("ALTER SUBSCRIPTION " + quoteIdent(slot) + " SET (slot_name = NONE)");
      if (!b) return b.error().withContext("detaching the old subscription");
    }
    auto source = openSource(link);
    if (!source) return source.error();
    auto tables = copyableTables(**source);
    if (!tables) return tables.error();
    TANDEM_RETURN_IF_ERROR(ensurePublication(**source, *tables));
    TANDEM_RETURN_IF_ERROR(dropSlot(**source, slot));
    auto exported = createExportedSlot(link, slot);
    if (!exported) return exported.error();
    auto snap =
        Connection::open(store::connectionString({exported->host}, link.source_db, link.password));
    Status copied = snap ? (*snap)->execAll(
                               "BEGIN ISOLATION LEVEL REPEATABLE READ;"
                               "SET TRANSACTION SNAPSHOT " +
                               quoteLiteral(exported->snapshot))
                         : snap.error();
    if (copied) copied = replaceCopy(link, copy, **snap, *exported, *tables, reason);
    if (!copied) (void)dropSlot(**source, slot);  // a slot nobody reads would keep WAL
    return copied;
  }();
  if (!st) {
    (void)setMeta(copy, "resync_running", "");
    (void)setMeta(copy, "last_resync_error", st.message());
    spdlog::warn("backup {}: full copy failed: {}", link.describe(), st.message());
  }
  return st;
}

}  // namespace tandem::backup::internal
