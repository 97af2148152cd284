// MAM and history queries over mgc.messages, and XEP-0082 timestamps.
#include "chat/archive.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace tandem::chat {

namespace {

constexpr const char* kColumns =
    "seq, room, stanza_id, origin_id, sender, nick, body, stanza, "
    "(extract(epoch from ts) * 1000000)::bigint";
constexpr const char* kTsParam = "('epoch'::timestamptz + $%d::bigint * interval '1 microsecond')";

StoredMessage fromRow(const store::Row& r) {
  StoredMessage m;
  m.seq = std::stoll(r[0]);
  m.room = r[1];
  m.stanza_id = r[2];
  m.origin_id = r[3];
  m.sender = r[4];
  m.nick = r[5];
  m.body = r[6];
  m.stanza = r[7];
  m.ts_us = std::stoll(r[8]);
  return m;
}

std::string tsParam(int n) {
  char buf[96];
  std::snprintf(buf, sizeof buf, kTsParam, n);
  return buf;
}

// Builds "room = $1 AND ..." for the filters every page shares; appends their parameters.
std::string baseFilter(const ArchiveQuery& q, std::vector<std::optional<std::string>>& params) {
  params.push_back(q.room);
  std::string where = "room = $1";
  if (q.start_us) {
    params.push_back(std::to_string(*q.start_us));
    where += " AND ts >= " + tsParam(static_cast<int>(params.size()));
  }
  if (q.end_us) {
    params.push_back(std::to_string(*q.end_us));
    where += " AND ts <= " + tsParam(static_cast<int>(params.size()));
  }
  if (!q.with_nick.empty()) {
    params.push_back(q.with_nick);
    where += " AND nick = $" + std::to_string(params.size());
  }
  return where;
}

Result<int64_t> seqOf(store::Connection& c, const std::string& room, const std::string& id) {
  auto r = c.exec("SELECT seq FROM messages WHERE room = $1 AND stanza_id = $2", {room, id});
  if (!r) return fail(r.error());
  if (r->rows.empty()) {
    return fail(invalidArgument("room `" + room + "` has no archived message with id `" + id +
                                "`"));
  }
  return std::stoll(r->rows[0][0]);
}

}  // namespace

Result<ArchivePage> queryArchive(store::Connection& c, const ArchiveQuery& q) {
  std::vector<std::optional<std::string>> params;
  std::string where = baseFilter(q, params);
  ArchivePage page;
  auto counted = c.exec("SELECT count(*) FROM messages WHERE " + where, params);
  if (!counted) return fail(counted.error());
  page.count = std::stoll(counted->rows[0][0]);

  bool descending = q.last_page;
  if (!q.after_id.empty()) {
    auto s = seqOf(c, q.room, q.after_id);
    if (!s) return fail(s.error());
    params.push_back(std::to_string(*s));
    where += " AND seq > $" + std::to_string(params.size());
  }
  if (!q.before_id.empty()) {
    auto s = seqOf(c, q.room, q.before_id);
    if (!s) return fail(s.error());
    params.push_back(std::to_string(*s));
    where += " AND seq < $" + std::to_string(params.size());
    descending = true;
  }
  size_t limit = q.max + 1;  // one more than asked tells whether the page is the last one
  auto r = c.exec(std::string("SELECT ") + kColumns + " FROM messages WHERE " + where +
                      " ORDER BY seq " + (descending ? "DESC" : "ASC") + " LIMIT " +
                      std::to_string(limit),
                  params);
  if (!r) return fail(r.error());
  for (const auto& row : r->rows) page.messages.push_back(fromRow(row));
  page.complete = page.messages.size() <= q.max;
  if (!page.complete) page.messages.pop_back();
  if (descending) std::reverse(page.messages.begin(), page.messages.end());
  return page;
}

Result<std::vector<StoredMessage>> recentHistory(store::Connection& c, const std::string& room,
                                                 size_t max_stanzas,
                                                 std::optional<int64_t> since_us) {
  std::vector<std::optional<std::string>> params{room, std::to_string(max_stanzas)};
  std::string where = "room = $1";
  if (since_us) {
    params.push_back(std::to_string(*since_us));
    where += " AND ts >= " + tsParam(3);
  }
  auto r = c.exec(std::string("SELECT ") + kColumns + " FROM messages WHERE " + where +
                      " ORDER BY seq DESC LIMIT $2",
                  params);
  if (!r) return fail(r.error());
  std::vector<StoredMessage> out;
  for (auto it = r->rows.rbegin(); it != r->rows.rend(); ++it) out.push_back(fromRow(*it));
  return out;
}

Result<int64_t> countMessages(store::Connection& c, const std::string& room) {
  auto r = c.exec("SELECT count(*) FROM messages WHERE room = $1", {room});
  if (!r) return fail(r.error());
  return std::stoll(r->rows[0][0]);
}

std::string formatTimestamp(int64_t ts_us) {
  std::time_t secs = static_cast<std::time_t>(ts_us / 1000000);
  int64_t frac = ts_us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

std::optional<int64_t> parseTimestamp(const std::string& text) {
  int y, mo, d, h, mi, s;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s,
                  &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  size_t i = 19;
  int64_t frac_us = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    int64_t scale = 100000;
    size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (scale > 0) frac_us += (text[i] - '0') * scale;
      scale /= 10;
      ++i;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (i < text.size() && text[i] == 'Z') {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh = std::atoi(text.substr(i + 1, 2).c_str()), om = std::atoi(text.substr(i + 4, 2).c_str());
    offset_s = (oh * 3600 + om * 60) * (text[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_s;
  return secs * 1000000 + frac_us;
}

int64_t nowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tandem::chat
