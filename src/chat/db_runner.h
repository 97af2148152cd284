// DbRunner: runs blocking store work off the chat service's event loop and hands the outcome
// back to it.
//
// The MUC logic runs on one executor (one thread) and must never block on PostgreSQL. read()
// work runs on a small thread pool, in any order; write() work runs in submission order on one
// strand (room, affiliation and subject changes must land in the order they were made). Each
// work function returns a continuation that is posted back to the home executor.
// Thread rule: read()/write() from the home executor (or any thread); continuations run on home.
#pragma once

#include <functional>
#include <memory>

#include <asio.hpp>

#include "common/status.h"
#include "store/pool.h"

namespace tandem::chat {

class DbRunner {
 public:
  // Work gets a connection (or the error that prevented getting one) and returns what to run
  // on the home executor afterwards (may be empty).
  using Work = std::function<std::function<void()>(Result<store::Connection*>)>;

  // Requires: `pool` outlives the runner. `threads` ≥ 2 (one is the write strand's share).
  DbRunner(asio::any_io_executor home, store::ConnectionPool& pool, int threads = 3);
  ~DbRunner();  // waits for work in flight
  DbRunner(const DbRunner&) = delete;
  DbRunner& operator=(const DbRunner&) = delete;

  void read(Work work);
  void write(Work work);
  void stop();

 private:
  void run(Work work);
  asio::any_io_executor home_;
  store::ConnectionPool& pool_;
  asio::thread_pool threads_;
  asio::strand<asio::thread_pool::executor_type> write_strand_;
};

}  // namespace tandem::chat
