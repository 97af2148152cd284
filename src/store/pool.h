// A thread-safe pool of connections to one store, with reconnection and backoff.
//
// The pool opens connections lazily, up to max_size, and hands each out by Lease: the lease
// returns the connection to the pool when it goes out of scope, or drops it when it broke (or
// the pool was reset meanwhile). After a failed connection attempt the pool waits before the
// next one (50 ms doubling to 1 s) so that a store that is down costs little; any acquire that
// arrives meanwhile waits out the backoff within its own deadline. All members are thread-safe;
// a Lease belongs to the thread that holds it.
#pragma once

#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "store/connection.h"

namespace tandem::store {

class ConnectionPool;

// Exclusive use of one pooled connection. Movable, not copyable. Requires: the pool outlives it.
class Lease {
 public:
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();

  Connection& operator*() { return *conn_; }
  Connection* operator->() { return conn_.get(); }
  Connection& get() { return *conn_; }
  // Drops the connection instead of returning it (e.g. after an Unavailable error whose state
  // is unclear). Broken connections are dropped anyway.
  void discard() { discard_ = true; }

 private:
  friend class ConnectionPool;
  Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn, uint64_t generation)
      : pool_(pool), conn_(std::move(conn)), generation_(generation) {}
  void release();
  ConnectionPool* pool_ = nullptr;
  std::unique_ptr<Connection> conn_;
  uint64_t generation_ = 0;
  bool discard_ = false;
};

class ConnectionPool {
 public:
  // `conninfo` as built by connectionString(); `max_size` (≥ 1) bounds open connections.
  ConnectionPool(std::string conninfo, size_t max_size);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // An idle connection, or a new one when fewer than max_size are open. Blocks up to `wait`
  // (for a free slot, the reconnect backoff and the connection attempt itself, which libpq
  // bounds by connect_timeout per host). Fails with Unavailable naming the hosts when the store
  // cannot be reached, or Timeout when every connection stayed leased for `wait`.
  Result<Lease> acquire(std::chrono::milliseconds wait = std::chrono::seconds(5));

  // Drops every idle connection and marks leased ones to be dropped on return (e.g. after a
  // failover, so nobody keeps talking to a demoted principal). Also clears the backoff.
  void resetAll();

  // Uses a new connection string from now on (implies resetAll()).
  void setConninfo(std::string conninfo);

  // Open connections (idle + leased), for metrics and tests.
  size_t openCount() const;

 private:
  friend class Lease;
  void giveBack(std::unique_ptr<Connection> conn, uint64_t generation, bool discard);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string conninfo_;                           // GUARDED_BY(mu_)
  const size_t max_size_;
  std::deque<std::unique_ptr<Connection>> idle_;   // GUARDED_BY(mu_)
  size_t open_ = 0;                                // GUARDED_BY(mu_): idle + leased + opening
  uint64_t generation_ = 0;                        // GUARDED_BY(mu_)
  std::chrono::milliseconds backoff_{0};           // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point next_attempt_{};  // GUARDED_BY(mu_)
};

}  // namespace tandem::store
