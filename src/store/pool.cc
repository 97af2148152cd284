// Connection pool: lazy connections, leases, reset after failover, reconnect backoff.
#include "store/pool.h"

#include <spdlog/spdlog.h>

namespace tandem::store {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

// ---- Lease ------------------------------------------------------------------------------------

Lease::Lease(Lease&& o) noexcept
    : pool_(o.pool_), conn_(std::move(o.conn_)), generation_(o.generation_), discard_(o.discard_) {
  o.pool_ = nullptr;
}

Lease& Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = o.pool_;
    conn_ = std::move(o.conn_);
    generation_ = o.generation_;
    discard_ = o.discard_;
    o.pool_ = nullptr;
  }
  return *this;
}

Lease::~Lease() { release(); }

void Lease::release() {
  if (pool_ != nullptr && conn_) pool_->giveBack(std::move(conn_), generation_, discard_);
  pool_ = nullptr;
}

// ---- ConnectionPool ---------------------------------------------------------------------------

ConnectionPool::ConnectionPool(std::string conninfo, size_t max_size)
    : conninfo_(std::move(conninfo)), max_size_(max_size == 0 ? 1 : max_size) {}

ConnectionPool::~ConnectionPool() = default;

Result<Lease> ConnectionPool::acquire(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  std::unique_lock lock(mu_);
  Status last_error = timeoutError("every connection of the pool stayed in use");
  bool tried = false;
  for (;;) {
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.front());
      idle_.pop_front();
      if (c->isOk()) return Lease(this, std::move(c), generation_);
      --open_;  // broken while idle (e.g. the server restarted): drop it
    }
    const auto now = Clock::now();
    if (open_ < max_size_ && now >= next_attempt_) {
      ++open_;
      std::string conninfo = conninfo_;
      uint64_t gen = generation_;
      lock.unlock();
      auto conn = Connection::open(conninfo);
      lock.lock();
      tried = true;
      if (conn) {
        backoff_ = std::chrono::milliseconds(0);
        if (gen != generation_) {  // reset meanwhile: the connection may point at the old primary
          --open_;
          continue;
        }
        return Lease(this, std::move(*conn), gen);
      }
      --open_;
      cv_.notify_one();
      last_error = conn.error();
      backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
      next_attempt_ = Clock::now() + backoff_;
      spdlog::debug("connection pool: {} (next attempt in {} ms)", last_error.message(),
                    backoff_.count());
    }
    if (Clock::now() >= deadline) {
      if (last_error.code() == StatusCode::kTimeout && !tried && open_ < max_size_) {
        last_error = unavailable("the store is in reconnect backoff after a failed connection");
      }
      return fail(last_error);
    }
    auto until = deadline;
    if (open_ < max_size_ && next_attempt_ < until) until = next_attempt_;
    cv_.wait_until(lock, until);
  }
}

void ConnectionPool::giveBack(std::unique_ptr<Connection> conn, uint64_t generation,
                              bool discard) {
  std::unique_ptr<Connection> dropped;  // closed outside the lock
  {
    std::lock_guard lock(mu_);
    if (discard || generation != generation_ || !conn->isOk()) {
      dropped = std::move(conn);
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  cv_.notify_one();
}

void ConnectionPool::resetAll() {
  std::deque<std::unique_ptr<Connection>> dropped;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    open_ -= idle_.size();
    dropped.swap(idle_);
    backoff_ = std::chrono::milliseconds(0);
    next_attempt_ = Clock::time_point{};
  }
  cv_.notify_all();
}

void ConnectionPool::setConninfo(std::string conninfo) {
  {
    std::lock_guard lock(mu_);
    conninfo_ = std::move(conninfo);
  }
  resetAll();
}

size_t ConnectionPool::openCount() const {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace tandem::store
