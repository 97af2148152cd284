// Compliance feed (mgc -> mgccomp, exactly once) and export (mgccomp -> JSON Lines files).
#include "chat/compliance.h"

#include <dirent.h>

#include <fstream>

#include "chat/archive.h"
#include "common/files.h"
#include "store/transaction.h"

namespace tandem::chat {

Result<size_t> feedCompliance(store::Connection& mgc, store::Connection& comp,
                              const std::string& writer, size_t max_rows) {
  size_t copied = 0;
  Status st = store::inTransaction(comp, [&](store::Connection& tx) -> Status {
    copied = 0;
    auto ins = tx.exec(
        "INSERT INTO feed_cursor(writer, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        {writer});
    if (!ins) return ins.error();
    // The row lock serialises feeders of the same writer (e.g. an old and a new process).
    auto cur = tx.exec("SELECT last_seq FROM feed_cursor WHERE writer = $1 FOR UPDATE", {writer});
    if (!cur) return cur.error();
    std::string last = cur->rows.at(0)[0];
    auto rows = mgc.exec(
        "SELECT seq, room, stanza_id, sender, nick, body, "
        "(extract(epoch from ts) * 1000000)::bigint, written_by FROM messages "
        "WHERE written_by = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        {writer, last, std::to_string(max_rows)});
    if (!rows) return rows.error();
    if (rows->rows.empty()) return Status::ok();
    std::string sql =
        "INSERT INTO queue(mgc_seq, room, stanza_id, sender, nick, body, ts, written_by) VALUES ";
    std::vector<std::optional<std::string>> params;
    for (size_t i = 0; i < rows->rows.size(); ++i) {
      const auto& r = rows->rows[i];
      int b = static_cast<int>(i) * 8;
      auto p = [&](int k) { return "$" + std::to_string(b + k); };
      sql += (i ? ",(" : "(") + p(1) + "::bigint," + p(2) + "," + p(3) + "," + p(4) + "," + p(5) +
             "," + p(6) + ",'epoch'::timestamptz + " + p(7) +
             "::bigint * interval '1 microsecond'," + p(8) + ")";
      for (size_t c = 0; c < 8; ++c) params.push_back(r[c]);
    }
    sql += " ON CONFLICT (mgc_seq) DO NOTHING";
    auto q = tx.exec(sql, params);
    if (!q) return q.error();
    auto up = tx.exec("UPDATE feed_cursor SET last_seq = $2 WHERE writer = $1",
                      {writer, rows->rows.back()[0]});
    if (!up) return up.error();
    copied = rows->rows.size();
    return Status::ok();
  });
  if (!st) return fail(st.withContext("feeding the compliance queue"));
  return copied;
}

namespace {

std::string fileNameFor(int64_t id) {
  std::string ts = formatTimestamp(nowMicros()).substr(0, 19);  // 2026-11-25T13:45:01
  for (char& c : ts) {
    if (c == ':') c = '-';
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012lld", static_cast<long long>(id));
  return std::string("compliance-") + buf + "-" + ts + "Z.jsonl";
}

// The export id in a file name "compliance-<id>-...jsonl"; -1 when the name does not match.
int64_t idOfFile(const std::string& name) {
  const std::string prefix = "compliance-";
  if (name.rfind(prefix, 0) != 0 || name.size() < prefix.size() + 12 ||
      name.substr(name.size() - 6) != ".jsonl") {
    return -1;
  }
  try {
    return std::stoll(name.substr(prefix.size(), 12));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

Result<ExportedFile> exportCompliance(store::Connection& comp, const std::string& dir,
                                      const std::string& service, size_t max_rows) {
  ExportedFile out;
  if (Status mk = makeDirs(dir); !mk) return fail(mk);
  Status st = store::inTransaction(
      comp,
      [&](store::Connection& tx) -> Status {
        out = {};
        auto rows = tx.exec(
            "SELECT mgc_seq, room, stanza_id, sender, nick, body, "
            "(extract(epoch from ts) * 1000000)::bigint, written_by FROM queue "
            "ORDER BY mgc_seq LIMIT $1 FOR UPDATE",
            {std::to_string(max_rows)});
        if (!rows) return rows.error();
        if (rows->rows.empty()) return Status::ok();
        auto id = tx.exec("SELECT nextval('export_ids')");
        if (!id) return id.error();
        int64_t export_id = std::stoll(id->rows[0][0]);
        std::string text, seqs = "{";
        for (const auto& r : rows->rows) {
          nlohmann::json line = {{"mgc_seq", std::stoll(r[0])},
                                 {"room", r[1] + "@" + service},
                                 {"stanza_id", r[2]},
                                 {"sender", r[3]},
                                 {"nick", r[4]},
                                 {"body", r[5]},
                                 {"ts", formatTimestamp(std::stoll(r[6]))},
                                 {"written_by", r[7]}};
          text += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
          seqs += (seqs.size() > 1 ? "," : "") + r[0];
        }
        seqs += "}";
        std::string name = fileNameFor(export_id);
        TANDEM_RETURN_IF_ERROR(writeFileAtomic(dir + "/" + name, text, 0640));
        auto del = tx.exec("DELETE FROM queue WHERE mgc_seq = ANY($1::bigint[])", {seqs});
        if (!del) return del.error();
        auto rec = tx.exec("INSERT INTO exports(id, file, messages) VALUES ($1, $2, $3)",
                           {std::to_string(export_id), name, std::to_string(rows->rows.size())});
        if (!rec) return rec.error();
        out.path = dir + "/" + name;
        out.messages = rows->rows.size();
        return Status::ok();
      },
      1);
  if (!st) return fail(st.withContext("exporting the compliance queue"));
  return out;
}

Result<size_t> recoverExports(store::Connection& comp, const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return size_t{0};
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  size_t recovered = 0;
  for (const auto& name : names) {
    int64_t id = idOfFile(name);
    if (id < 0) continue;
    auto known = comp.exec("SELECT 1 FROM exports WHERE id = $1", {std::to_string(id)});
    if (!known) return fail(known.error());
    if (!known->rows.empty()) continue;
    std::ifstream in(dir + "/" + name);
    std::string line, seqs = "{";
    size_t n = 0;
    while (std::getline(in, line)) {
      try {
        auto j = nlohmann::json::parse(line);
        seqs += (n ? "," : "") + std::to_string(j.at("mgc_seq").get<int64_t>());
        ++n;
      } catch (const std::exception&) {
        return fail(dataLoss("compliance file " + dir + "/" + name +
                             " is not valid JSON Lines; inspect it before restarting"));
      }
    }
    seqs += "}";
    Status st = store::inTransaction(comp, [&](store::Connection& tx) -> Status {
      auto del = tx.exec("DELETE FROM queue WHERE mgc_seq = ANY($1::bigint[])", {seqs});
      if (!del) return del.error();
      auto rec = tx.exec(
          "INSERT INTO exports(id, file, messages) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
          {std::to_string(id), name, std::to_string(n)});
      return rec ? Status::ok() : rec.error();
    });
    if (!st) return fail(st);
    ++recovered;
  }
  return recovered;
}

Result<nlohmann::json> complianceStatus(store::Connection& comp) {
  auto q = comp.exec(
      "SELECT count(*), coalesce(to_char(min(queued_at) AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') FROM queue");
  if (!q) return fail(q.error());
  nlohmann::json out = {{"queue_depth", std::stoll(q->rows[0][0])},
                        {"oldest_queued_at", q->rows[0][1]},
                        {"last_export", nullptr}};
  auto e = comp.exec(
      "SELECT file, messages, to_char(written_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), (SELECT count(*) FROM exports), "
      "(SELECT coalesce(sum(messages), 0) FROM exports) FROM exports ORDER BY id DESC LIMIT 1");
  if (!e) return fail(e.error());
  out["exports_total"] = 0;
  out["messages_exported_total"] = 0;
  if (!e->rows.empty()) {
    out["last_export"] = {{"file", e->rows[0][0]},
                          {"messages", std::stoll(e->rows[0][1])},
                          {"written_at", e->rows[0][2]}};
    out["exports_total"] = std::stoll(e->rows[0][3]);
    out["messages_exported_total"] = std::stoll(e->rows[0][4]);
  }
  auto c = comp.exec("SELECT writer, last_seq FROM feed_cursor ORDER BY writer");
  if (!c) return fail(c.error());
  out["cursors"] = nlohmann::json::object();
  for (const auto& r : c->rows) out["cursors"][r[0]] = std::stoll(r[1]);
  return out;
}

}  // namespace tandem::chat
