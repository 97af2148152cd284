// Store-side helpers of the UserData module (sql.h).
#include "backup/internal/sql.h"

#include <libpq-fe.h>

#include "store/migrations.h"

namespace tandem::backup::internal {

namespace {

constexpr const char* kMetaSchema =
    "CREATE SCHEMA IF NOT EXISTS tandem_backup;"
    "CREATE TABLE IF NOT EXISTS tandem_backup.meta (key text PRIMARY KEY, value text NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now())";

std::string tableList(const std::vector<std::string>& tables) {
  std::string s;
  for (const auto& t : tables)
    s += (s.empty() ? "" : ", ") + std::string("public.") + quoteIdent(t);
  return s;
}

std::string pgTextArray(const std::vector<std::string>& items) {
  std::string s = "{";
  for (const auto& i : items) s += (s.size() > 1 ? "," : "") + ("\"" + i + "\"");
  return s + "}";
}

Status pqError(PGconn* c, const std::string& what) {
  std::string m = PQerrorMessage(c);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return unavailable(what + ": " + m);
}

}  // namespace

std::string quoteIdent(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string quoteLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

Result<std::unique_ptr<Connection>> openSource(const Link& link) {
  auto c = Connection::open(
      store::connectionString(link.source_addresses, link.source_db, link.password));
  if (!c)
    return fail(
        c.error().withContext("store `" + link.source_store + "` of pool `" + link.pool + "`"));
  return c;
}

Result<std::unique_ptr<Connection>> openCopy(const Link& link) {
  if (Status st = store::ensureDatabase(link.target_addresses, link.password, link.copy_db); !st) {
    return fail(st.withContext("store `" + link.target_store + "`"));
  }
  auto c =
      Connection::open(store::connectionString(link.target_addresses, link.copy_db, link.password));
  if (!c) return fail(c.error().withContext("store `" + link.target_store + "`"));
  if (Status st = (*c)->execAll(kMetaSchema); !st) {
    return fail(
        st.withContext("preparing the copy's metadata in store `" + link.target_store + "`"));
  }
  return c;
}

Result<std::unique_ptr<Connection>> openCopyIfExists(const Link& link) {
  auto pg =
      Connection::open(store::connectionString(link.target_addresses, "postgres", link.password));
  if (!pg) return fail(pg.error().withContext("store `" + link.target_store + "`"));
  auto r = (*pg)->exec("SELECT 1 FROM pg_database WHERE datname = $1", {link.copy_db});
  if (!r) return fail(r.error().withContext("store `" + link.target_store + "`"));
  if (r->rows.empty()) return std::unique_ptr<Connection>();
  return openCopy(link);
}

Result<std::vector<std::string>> copyableTables(Connection& c) {
  auto r = c.exec(
      "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
      " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations'"
      " AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
      " ORDER BY 1");
  if (!r) return fail(r.error().withContext("listing the tables to copy"));
  std::vector<std::string> out;
  for (const auto& row : r->rows) out.push_back(row[0]);
  return out;
}

Status ensurePublication(Connection& source, const std::vector<std::string>& tables) {
  if (tables.empty()) return failedPrecondition("the pool's database has no table to copy yet");
  auto have = source.exec(
      "SELECT p.pubname IS NOT NULL, coalesce((SELECT array_agg(tablename::text ORDER BY"
      " tablename) FROM pg_publication_tables WHERE pubname = $1), '{}')"
      " FROM (SELECT 1) one LEFT JOIN pg_publication p ON p.pubname = $1",
      {Link::kPublication});
  if (!have) return have.error().withContext("reading publication tandem_backup");
  const bool exists = have->rows[0][0] == "t";
  if (exists && have->rows[0][1] == pgTextArray(tables)) return Status::ok();
  std::string sql = exists ? "ALTER PUBLICATION tandem_backup SET TABLE " + tableList(tables)
                           : "CREATE PUBLICATION tandem_backup FOR TABLE " + tableList(tables);
  auto r = source.exec(sql);
  if (!r && r.error().code() != StatusCode::kConflict) {
    return r.error().withContext("publishing the tables to copy");
  }
  return Status::ok();
}

Result<std::string> schemaFingerprint(Connection& c, const std::vector<std::string>& tables) {
  auto r = c.exec(
      "SELECT md5(coalesce(string_agg(c.relname || '.' || a.attname || ':' ||"
      " format_type(a.atttypid, a.atttypmod), ',' ORDER BY c.relname, a.attnum), ''))"
      " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
      " JOIN pg_attribute a ON a.attrelid = c.oid"
      " WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) AND a.attnum > 0"
      " AND NOT a.attisdropped",
      {pgTextArray(tables)});
  if (!r) return fail(r.error().withContext("reading the copied tables' schema"));
  return r->rows.at(0)[0];
}

Result<std::string> systemIdentifier(Connection& c) {
  auto r = c.exec("SELECT system_identifier::text FROM pg_control_system()");
  if (!r) return fail(r.error().withContext("reading the system identifier"));
  return r->rows.at(0)[0];
}

Result<std::string> getMeta(Connection& copy, const std::string& key) {
  auto r = copy.exec("SELECT value FROM tandem_backup.meta WHERE key = $1", {key});
  if (!r) return fail(r.error().withContext("reading the copy's metadata"));
  return r->rows.empty() ? std::string() : r->rows[0][0];
}

Status setMeta(Connection& copy, const std::string& key, const std::string& value) {
  auto r = copy.exec(
      "INSERT INTO tandem_backup.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE"
      " SET value = EXCLUDED.value, updated_at = now()",
      {key, value});
  return r ? Status::ok() : r.error().withContext("writing the copy's metadata");
}

Result<bool> hasSubscription(Connection& copy, const Link& link) {
  auto r = copy.exec(
      "SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM"
      " pg_database WHERE datname = current_database())",
      {link.slotName()});
  if (!r) return fail(r.error().withContext("reading the copy's subscription"));
  return !r->rows.empty();
}

Result<std::string> userKey(Connection& c, const std::string& table) {
  auto r = c.exec(
      "SELECT bool_or(a.attname = 'owner'), bool_or(a.attname = 'name'),"
      " (SELECT a2.attname FROM pg_index i JOIN pg_attribute a2 ON a2.attrelid = i.indrelid"
      "  AND a2.attnum = i.indkey[0] WHERE i.indrelid = $1::regclass AND i.indisprimary)"
      " FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0"
      " AND NOT a.attisdropped",
      {"public." + quoteIdent(table)});
  if (!r) return fail(r.error().withContext("reading the columns of table `" + table + "`"));
  const auto& row = r->rows.at(0);
  if (row[0] == "t") return std::string("split_part(owner, '@', 1)");
  if (row[1] == "t") return std::string("name");
  return quoteIdent(row[2]) + "::text";
}

Result<TableDigests> tableDigests(Connection& c, const std::string& table, const std::string& key) {
  auto r = c.exec("SELECT " + key +
                  ", count(*), md5(string_agg(md5(t::text), ',' ORDER BY"
                  " md5(t::text))) FROM public." +
                  quoteIdent(table) + " t GROUP BY 1");
  if (!r) return fail(r.error().withContext("digesting table `" + table + "`"));
  TableDigests out;
  for (const auto& row : r->rows) out[row[0]] = {std::stoll(row[1]), row[2]};
  return out;
}

Status copyTable(Connection& from, Connection& to, const std::string& table) {
  const std::string name = "public." + quoteIdent(table);
  PGresult* out = PQexec(from.raw(), ("COPY " + name + " TO STDOUT").c_str());
  bool out_ok = PQresultStatus(out) == PGRES_COPY_OUT;
  PQclear(out);
  if (!out_ok) return pqError(from.raw(), "reading table `" + table + "`");
  PGresult* in = PQexec(to.raw(), ("COPY " + name + " FROM STDIN").c_str());
  bool in_ok = PQresultStatus(in) == PGRES_COPY_IN;
  PQclear(in);
  if (!in_ok) return pqError(to.raw(), "writing table `" + table + "`");
  char* buf = nullptr;
  int n = 0;
  bool put_ok = true;
  while ((n = PQgetCopyData(from.raw(), &buf, 0)) > 0) {
    put_ok = put_ok && PQputCopyData(to.raw(), buf, n) == 1;
    PQfreemem(buf);
  }
  // Drain both result streams, so each connection is usable (or closed) afterwards.
  bool read_ok = n == -1;
  for (PGresult* r; (r = PQgetResult(from.raw())) != nullptr;) {
    read_ok = read_ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  PQputCopyEnd(to.raw(), read_ok && put_ok ? nullptr : "source failed");
  bool write_ok = true;
  for (PGresult* r; (r = PQgetResult(to.raw())) != nullptr;) {
    write_ok = write_ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  if (!read_ok) return pqError(from.raw(), "reading table `" + table + "`");
  if (!write_ok || !put_ok) return pqError(to.raw(), "writing table `" + table + "`");
  return Status::ok();
}

}  // namespace tandem::backup::internal
