// inTransaction: BEGIN/COMMIT around a body, with retries on Conflict.
#include "store/transaction.h"

#include <chrono>
#include <thread>

namespace tandem::store {

Status inTransaction(Connection& c, const std::function<Status(Connection&)>& body,
                     int attempts) {
  Status last;
  for (int attempt = 1; attempt <= std::max(1, attempts); ++attempt) {
    if (auto b = c.exec("BEGIN"); !b) return b.error().withContext("cannot begin a transaction");
    Status st = body(c);
    if (st.isOk()) {
      auto commit = c.exec("COMMIT");
      if (commit) return Status::ok();
      st = commit.error();
    } else if (c.isOk()) {
      (void)c.exec("ROLLBACK");  // the body's error is what matters; a failed rollback adds nothing
    }
    if (st.code() != StatusCode::kConflict) return st;
    last = st;
    // Back off a little so that two conflicting writers do not collide again at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
  }
  return last.withContext("transaction still conflicting after " + std::to_string(attempts) +
                          " attempts");
}

}  // namespace tandem::store
