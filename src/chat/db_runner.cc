// Blocking store work off the MUC event loop.
#include "chat/db_runner.h"

namespace tandem::chat {

DbRunner::DbRunner(asio::any_io_executor home, store::ConnectionPool& pool, int threads)
    : home_(home), pool_(pool), threads_(threads), write_strand_(threads_.get_executor()) {}

DbRunner::~DbRunner() { stop(); }

void DbRunner::stop() { threads_.join(); }

void DbRunner::run(Work work) {
  std::function<void()> then;
  auto lease = pool_.acquire(std::chrono::seconds(5));
  if (!lease) {
    then = work(fail(lease.error()));
  } else {
    then = work(&lease->get());
    if (!lease->get().isOk()) lease->discard();
  }
  if (then) asio::post(home_, std::move(then));
}

void DbRunner::read(Work work) {
  asio::post(threads_, [this, w = std::move(work)]() mutable { run(std::move(w)); });
}

void DbRunner::write(Work work) {
  asio::post(write_strand_, [this, w = std::move(work)]() mutable { run(std::move(w)); });
}

}  // namespace tandem::chat
