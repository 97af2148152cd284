// GroupCommitWriter: the single writer that makes room messages durable before anyone sees them.
//
// Design (DESIGN.md §9: one commit costs PostgreSQL ~0.3 ms of CPU, so one commit per message
// caps a room; many messages per commit does not):
// - submit() queues a message and returns at once; the caller broadcasts it only from `done`.
// - One thread takes EVERYTHING queued while the previous commit ran (up to max_batch) and
//   stores it with one INSERT statement, i.e. one transaction and one WAL flush; with a
//   synchronous mirror the commit returns only once the mirror has it.
// - The insert is idempotent (ON CONFLICT (stanza_id) DO NOTHING), so after a lost connection
//   whose COMMIT outcome is unknown the same batch is simply sent again.
// - A store that is down is retried (with the pool's backoff) for `retry_for`; after that the
//   batch fails with Unavailable and the senders get an error instead of a reflection.
// Thread rule: submit(), stats() and stop() are thread-safe; `done` runs on the writer thread
// and must be quick (post the work to the caller's executor).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "chat/archive.h"
#include "common/status.h"
#include "store/pool.h"

namespace tandem::chat {

struct GroupCommitOptions {
  // This server's FQDN, stored in messages.written_by (compliance feed cursor). Required.
  std::string writer;
  // Most messages in one transaction. Default 512: ~100 KB of SQL, far past where the per-
  // commit cost stops mattering; bigger only grows the latency of the first message.
  size_t max_batch = 512;
  // How long a batch keeps being retried while the store is unreachable (e.g. a mirror
  // failover, which takes up to ~15 s with a witness). Default 20 s.
  std::chrono::milliseconds retry_for{20000};
};

struct GroupCommitStats {
  uint64_t batches = 0;          // committed transactions
  uint64_t messages = 0;         // messages committed
  uint64_t failed = 0;           // messages failed back to their senders
  size_t last_batch_size = 0;
  size_t max_batch_size = 0;
  double last_commit_ms = 0;     // latency of the last successful commit (insert round trip)
  size_t queued = 0;             // waiting for the next batch
};

class GroupCommitWriter {
 public:
  // `done(status, stored)`: OK with `stored.seq` set once committed; Unavailable (one sentence)
  // when the store stayed unreachable for retry_for, or the writer stopped first.
  using Done = std::function<void(const Status&, const StoredMessage&)>;

  // Requires: `pool` (connections to mgc) outlives the writer. Starts the writer thread.
  GroupCommitWriter(store::ConnectionPool& pool, GroupCommitOptions options);
  ~GroupCommitWriter();  // stop()
  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;

  // Queues `m` (stanza_id, room, sender, nick, stanza and ts_us set by the caller).
  void submit(StoredMessage m, Done done);

  // Fails everything still queued with Unavailable and joins the thread. Idempotent.
  void stop();

  GroupCommitStats stats() const;

  // Stores one batch synchronously on `c` (one statement); exposed for tests and tools.
  // On success fills each message's seq. Errors from the store, unchanged.
  static Status storeBatch(store::Connection& c, const std::string& writer,
                           std::vector<StoredMessage>& batch);

 private:
  struct Item {
    StoredMessage message;
    Done done;
  };
  void run();
  Status commitWithRetry(std::vector<StoredMessage>& batch);

  store::ConnectionPool& pool_;
  const GroupCommitOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;   // GUARDED_BY(mu_)
  bool stopping_ = false;    // GUARDED_BY(mu_)
  GroupCommitStats stats_;   // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace tandem::chat
