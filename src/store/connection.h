// One libpq connection to a Tandem store, and the connection string every client uses.
//
// Clients name a store by the addresses of its members (principal and mirror) and let libpq
// pick the writable one (`target_session_attrs=read-write`, docs/architecture.md). A Connection
// is not thread-safe: one thread owns it, or a ConnectionPool (pool.h) hands it out by lease.
// Errors carry the SQLSTATE in their message and map to codes callers act on:
//   Conflict     40001 serialization failure, 40P01 deadlock, 23505 unique violation (retry or
//                treat as "already there");
//   Unavailable  connection lost, 08xxx, 57Pxx (admin shutdown, cannot connect now), 53300 too
//                many connections, 25006 read-only transaction (we reached a standby: reconnect);
//   Internal     anything else (a bug in our SQL, usually).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

typedef struct pg_conn PGconn;

namespace tandem::store {

// The libpq keyword/value string for a store:
// "host=a,b port=5432,5432 dbname=D user=tandem password=P target_session_attrs=read-write
// connect_timeout=2". An address may carry its own port ("127.0.1.10:5433"); the default is
// 5432. `read_write` false gives target_session_attrs=any (e.g. to read a restoring standby).
// `connect_timeout_s` bounds each host's connection attempt (libpq's minimum is 2 s).
std::string connectionString(const std::vector<std::string>& addresses, const std::string& dbname,
                             const std::string& password, bool read_write = true,
                             int connect_timeout_s = 2);

// One result row; a column is nullopt when SQL NULL.
struct Row {
  std::vector<std::optional<std::string>> cols;
  // The column's text; "" for NULL. Requires: i < cols.size().
  const std::string& operator[](size_t i) const;
  bool isNull(size_t i) const { return !cols.at(i).has_value(); }
};

struct QueryResult {
  std::vector<std::string> columns;  // column names, in order
  std::vector<Row> rows;
  long affected = 0;  // rows inserted/updated/deleted (PQcmdTuples), 0 for other commands
};

class Connection {
 public:
  // Connects (blocking, up to connect_timeout per host). Fails with Unavailable naming the
  // hosts and libpq's reason. The caller owns the connection.
  static Result<std::unique_ptr<Connection>> open(const std::string& conninfo);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with text parameters $1..$n (nullopt = NULL) and returns every row.
  // Blocks until the server answers. Errors as described at the top of this file; after an
  // Unavailable the connection is usually dead (isOk() false) and should be dropped.
  Result<QueryResult> exec(const std::string& sql,
                           const std::vector<std::optional<std::string>>& params = {});

  // Runs several ';'-separated statements without parameters (simple query protocol: outside
  // an explicit BEGIN they run as one implicit transaction). Errors as exec().
  Status execAll(const std::string& sql);

  // True while the connection is usable (not broken by a server or network failure).
  bool isOk() const;
  // The underlying libpq handle, for what this class does not wrap (COPY, notifications).
  PGconn* raw() { return conn_; }
  // The host (address) libpq actually connected to, e.g. "127.0.1.10".
  std::string host() const;

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
};

}  // namespace tandem::store
