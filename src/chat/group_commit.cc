// The group-commit writer of room messages (see group_commit.h for the design).
#include "chat/group_commit.h"

#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace tandem::chat {

namespace {
constexpr int kColumnsPerRow = 9;
// First key of the transaction-scoped advisory locks that serialise the writers of one room
// (the second is hashtext(room)); an arbitrary constant of ours.
constexpr int kRoomOrderLockSpace = 14014;
}

GroupCommitWriter::GroupCommitWriter(store::ConnectionPool& pool, GroupCommitOptions options)
    : pool_(pool), options_(std::move(options)) {
  thread_ = std::thread([this] { run(); });
}

GroupCommitWriter::~GroupCommitWriter() { stop(); }

void GroupCommitWriter::submit(StoredMessage m, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(Item{std::move(m), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(unavailable("the chat server is stopping; the message was not stored"), m);
}

void GroupCommitWriter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

GroupCommitStats GroupCommitWriter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  GroupCommitStats s = stats_;
  s.queued = queue_.size();
  return s;
}

Status GroupCommitWriter::storeBatch(store::Connection& c, const std::string& writer,
                                     std::vector<StoredMessage>& batch) {
  if (batch.empty()) return Status::ok();
  // The archive order of a room is `seq`, and it must also be the order in which messages
  // become visible, or a MAM pager reading "after seq N" could pass a smaller seq that commits
  // later (#14). One room has one writing server, whose writer commits batches one after the
  // other; while rooms move between servers two writers may briefly hold the same room, so the
  // statement first takes a transaction-scoped lock per room (in name order: no deadlock)
  // before any row draws its seq. The lock is held until this statement's commit.
  std::string sql =
      "WITH locked AS (SELECT pg_advisory_xact_lock(" + std::to_string(kRoomOrderLockSpace) +
      ", hashtext(r)) FROM (SELECT DISTINCT unnest($1::text[]) AS r ORDER BY 1) rooms) "
      "INSERT INTO messages(room, stanza_id, origin_id, sender, nick, body, stanza, ts, "
      "written_by) SELECT * FROM (VALUES ";
  std::vector<std::optional<std::string>> params;
  params.reserve(batch.size() * kColumnsPerRow + 1);
  std::string rooms = "{";
  for (size_t i = 0; i < batch.size(); ++i) {
    rooms += (i ? ",\"" : "\"");
    for (char ch : batch[i].room) {
      if (ch == '"' || ch == '\\') rooms += '\\';
      rooms += ch;
    }
    rooms += '"';
  }
  params.push_back(rooms + "}");
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& m = batch[i];
    int b = static_cast<int>(i) * kColumnsPerRow + 1;
    auto p = [&](int k) { return "$" + std::to_string(b + k); };
    sql += (i ? ",(" : "(") + p(1) + "," + p(2) + "," + p(3) + "," + p(4) + "," + p(5) + "," +
           p(6) + "," + p(7) + ",'epoch'::timestamptz + " + p(8) +
           "::bigint * interval '1 microsecond'," + p(9) + ")";
    params.insert(params.end(), {m.room, m.stanza_id, m.origin_id, m.sender, m.nick, m.body,
                                 m.stanza, std::to_string(m.ts_us), writer});
  }
  sql += ") AS v WHERE (SELECT count(*) FROM locked) >= 0"
         " ON CONFLICT (stanza_id) DO NOTHING RETURNING seq, stanza_id";
  auto r = c.exec(sql, params);
  if (!r) return r.error();
  std::unordered_map<std::string, int64_t> seqs;
  for (const auto& row : r->rows) seqs[row[1]] = std::stoll(row[0]);
  for (auto& m : batch) {
    auto it = seqs.find(m.stanza_id);
    if (it != seqs.end()) {
      m.seq = it->second;
      continue;
    }
    // Stored by an earlier attempt whose COMMIT answer we lost: read its seq back.
    auto again = c.exec("SELECT seq FROM messages WHERE stanza_id = $1", {m.stanza_id});
    if (!again) return again.error();
    if (again->rows.empty()) {
      return internalError("message `" + m.stanza_id + "` was neither inserted nor found");
    }
    m.seq = std::stoll(again->rows[0][0]);
  }
  return Status::ok();
}

Status GroupCommitWriter::commitWithRetry(std::vector<StoredMessage>& batch) {
  auto deadline = std::chrono::steady_clock::now() + options_.retry_for;
  Status last;
  for (int attempt = 0;; ++attempt) {
    auto now = std::chrono::steady_clock::now();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (attempt > 0 && left.count() <= 0) break;
    auto lease = pool_.acquire(std::max(left, std::chrono::milliseconds(100)));
    if (!lease) {
      last = lease.error();
    } else {
      last = storeBatch(lease->get(), options_.writer, batch);
      if (last.isOk()) return last;
      if (last.code() != StatusCode::kUnavailable) {
        // Not a store outage (e.g. a bug in our SQL, or a unique violation we cannot explain):
        // retrying will not help.
        return last;
      }
      lease->discard();
    }
    if (attempt == 0) spdlog::warn("group commit: store unavailable, retrying: {}", last.message());
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) break;
    cv_.wait_for(lock, std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 5))));
  }
  return unavailable("the chat store stayed unreachable; the message was not stored (" +
                     last.message() + ")");
}

void GroupCommitWriter::run() {
  for (;;) {
    std::vector<Item> items;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_ && queue_.empty()) return;
      size_t n = std::min(options_.max_batch, queue_.size());
      items.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<StoredMessage> batch;
    batch.reserve(items.size());
    for (auto& it : items) batch.push_back(std::move(it.message));
    auto started = std::chrono::steady_clock::now();
    Status st = commitWithRetry(batch);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          started)
                    .count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (st.isOk()) {
        stats_.batches++;
        stats_.messages += batch.size();
        stats_.last_batch_size = batch.size();
        stats_.max_batch_size = std::max(stats_.max_batch_size, batch.size());
        stats_.last_commit_ms = ms;
      } else {
        stats_.failed += batch.size();
      }
    }
    if (!st.isOk()) spdlog::error("group commit: {} messages failed: {}", batch.size(), st.message());
    for (size_t i = 0; i < items.size(); ++i) items[i].done(st, batch[i]);
  }
}

}  // namespace tandem::chat
