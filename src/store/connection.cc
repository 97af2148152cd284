// libpq connection wrapper: connection strings, statement execution and SQLSTATE mapping.
#include "store/connection.h"

#include <libpq-fe.h>

#include <cstdlib>

namespace tandem::store {

namespace {

// Quotes a libpq conninfo value when it needs it (spaces, quotes, backslashes, empty).
std::string quoteValue(const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (c == ' ' || c == '\'' || c == '\\' || c == '\t' || c == '\n') plain = false;
  }
  if (plain) return v;
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  // libpq messages may span lines (DETAIL, HINT): keep the operator sentence on one line.
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

StatusCode codeForSqlstate(const std::string& state) {
  if (state == "40001" || state == "40P01" || state == "23505") return StatusCode::kConflict;
  if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "53300" ||
      state == "25006") {
    return StatusCode::kUnavailable;
  }
  return StatusCode::kInternal;
}

// The hosts named by a conninfo string, for error messages.
std::string hostsOf(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  if (opts == nullptr) return "(unparsable connection string)";
  std::string hosts = "localhost";
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "host" && o->val != nullptr && *o->val) hosts = o->val;
  }
  PQconninfoFree(opts);
  return hosts;
}

}  // namespace

std::string connectionString(const std::vector<std::string>& addresses, const std::string& dbname,
                             const std::string& password, bool read_write,
                             int connect_timeout_s) {
  std::string hosts, ports;
  for (const auto& a : addresses) {
    std::string host = a, port = "5432";
    size_t colon = a.rfind(':');
    if (colon != std::string::npos && a.find(':') == colon) {  // not IPv6
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
    }
    hosts += (hosts.empty() ? "" : ",") + host;
    ports += (ports.empty() ? "" : ",") + port;
  }
  std::string s = "host=" + quoteValue(hosts) + " port=" + quoteValue(ports) +
                  " dbname=" + quoteValue(dbname) + " user=tandem password=" + quoteValue(password) +
                  " target_session_attrs=" + (read_write ? "read-write" : "any") +
                  " connect_timeout=" + std::to_string(connect_timeout_s < 2 ? 2 : connect_timeout_s);
  return s;
}

const std::string& Row::operator[](size_t i) const {
  static const std::string kEmpty;
  const auto& c = cols.at(i);
  return c ? *c : kEmpty;
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return fail(unavailable("libpq could not allocate a connection"));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return fail(unavailable("cannot connect to a " +
                            std::string(conninfo.find("read-write") != std::string::npos
                                            ? "writable "
                                            : "") +
                            "PostgreSQL at " + hostsOf(conninfo) + ": " + why));
  }
  // Server NOTICEs ("relation already exists, skipping") are not errors: keep them off stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool Connection::isOk() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

std::string Connection::host() const {
  const char* h = conn_ ? PQhost(conn_) : nullptr;
  return h ? h : "";
}

namespace {

// Turns a failed PGresult (or none) into a Status; frees nothing.
Status errorFrom(PGconn* conn, PGresult* res) {
  const char* st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string state = st ? st : "";
  std::string msg = trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (msg.empty()) msg = trimmed(PQerrorMessage(conn));
  if (state.empty()) {
    if (PQstatus(conn) != CONNECTION_OK) {
      return unavailable("lost the connection to PostgreSQL at " +
                         std::string(PQhost(conn) ? PQhost(conn) : "?") + ": " + msg);
    }
    return internalError("PostgreSQL error: " + msg);
  }
  return Status(codeForSqlstate(state), "PostgreSQL error " + state + ": " + msg);
}

}  // namespace

Result<QueryResult> Connection::exec(const std::string& sql,
                                     const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);
  ExecStatusType est = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (est != PGRES_COMMAND_OK && est != PGRES_TUPLES_OK) {
    Status s = errorFrom(conn_, res);
    if (res) PQclear(res);
    return fail(s);
  }
  QueryResult out;
  int ncols = PQnfields(res), nrows = PQntuples(res);
  for (int c = 0; c < ncols; ++c) out.columns.emplace_back(PQfname(res, c));
  out.rows.reserve(nrows);
  for (int r = 0; r < nrows; ++r) {
    Row row;
    row.cols.reserve(ncols);
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res, r, c)) {
        row.cols.emplace_back(std::nullopt);
      } else {
        row.cols.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      }
    }
    out.rows.push_back(std::move(row));
  }
  const char* affected = PQcmdTuples(res);
  out.affected = (affected && *affected) ? std::strtol(affected, nullptr, 10) : 0;
  PQclear(res);
  return out;
}

Status Connection::execAll(const std::string& sql) {
  if (PQsendQuery(conn_, sql.c_str()) == 0) return errorFrom(conn_, nullptr);
  Status first;
  // Drain every result so the connection is ready for the next command; keep the first error.
  while (PGresult* res = PQgetResult(conn_)) {
    ExecStatusType est = PQresultStatus(res);
    if (first.isOk() && est != PGRES_COMMAND_OK && est != PGRES_TUPLES_OK &&
        est != PGRES_EMPTY_QUERY) {
      first = errorFrom(conn_, res);
    }
    PQclear(res);
  }
  if (first.isOk() && PQstatus(conn_) != CONNECTION_OK) return errorFrom(conn_, nullptr);
  return first;
}

}  // namespace tandem::store
