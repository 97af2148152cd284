// Divergence: what a cluster that rejoins a newer principal held beyond their fork point,
// measured and kept before pg_rewind or a base backup discards it.
//
// - The fork point is pg_rewind's own answer (`--dry-run`: "servers diverged at WAL location X
//   on timeline N"); "no rewind required" means nothing diverged.
// - Our end and the transactions after the fork come from pg_waldump over our pg_wal, from the
//   fork on our timeline: the last record's LSN and the number of COMMIT records.
// - The WAL files from the fork's segment on are copied to <store>/diverged/<UTC>/, so what was
//   discarded can still be read (pg_waldump) by an operator.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "sqlagent/internal/agent.h"
#include "sqlagent/internal/postgres.h"

namespace tandem::sqlagent {

namespace fs = std::filesystem;

namespace {

constexpr unsigned long long kWalSegmentBytes = 16ull << 20;  // PostgreSQL's default

// "0/3000148" -> 0x3000148; 0 when malformed.
unsigned long long lsnValue(const std::string& lsn) {
  unsigned hi = 0, lo = 0;
  if (std::sscanf(lsn.c_str(), "%X/%X", &hi, &lo) != 2) return 0;
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

std::string walFileName(int timeline, unsigned long long lsn) {
  const unsigned long long seg = lsn / kWalSegmentBytes;
  const unsigned long long per_id = 0x100000000ull / kWalSegmentBytes;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", timeline, static_cast<unsigned>(seg / per_id),
                static_cast<unsigned>(seg % per_id));
  return buf;
}

std::string orUnknown(const std::string& v) { return v.empty() ? "unknown" : v; }

}  // namespace

std::string Divergence::summary() const {
  if (fork_lsn.empty()) {
    return "could not compare with `" + source + "` before discarding this store's WAL after " +
           "its last common point (" + note + "); our WAL ended at " + orUnknown(end_lsn);
  }
  std::string s = "diverged from `" + source + "` at " + fork_lsn + " (timeline " +
                  std::to_string(fork_timeline) + "): " + std::to_string(bytes) +
                  " bytes of WAL up to " + orUnknown(end_lsn) + ", ";
  s += transactions < 0 ? "transactions not determinable (" + note + ")"
                        : std::to_string(transactions) + " committed transaction(s)";
  s += " discarded by the rejoin";
  if (!kept_in.empty()) s += "; WAL kept in " + kept_in;
  return s;
}

nlohmann::json Divergence::toJson() const {
  return {{"at", at_utc},         {"source", source},   {"fork_lsn", fork_lsn},
          {"fork_timeline", fork_timeline}, {"end_lsn", end_lsn}, {"bytes", bytes},
          {"transactions", transactions},   {"kept_in", kept_in}, {"note", note},
          {"summary", summary()}};
}

Divergence PgCluster::measureDivergence(const std::string& source, const std::string& source_name,
                                        int timeline, const std::string& keep_dir) {
  Divergence d;
  d.at_utc = isoUtc(std::chrono::system_clock::now());
  d.source = source_name;
  // 1. The fork point, as pg_rewind sees it (CHECKPOINT first: see rewindFrom).
  if (auto src = connectTo(source)) (void)(*src)->exec("CHECKPOINT");
  auto dry = runAsPostgres("pg_rewind --dry-run from " + source,
                           {std::string(kBinDir) + "pg_rewind", "--dry-run",
                            "--target-pgdata=" + pgdata_,
                            "--source-server=" + conninfoFor(source, false)},
                           std::chrono::seconds(120));
  if (!dry) {
    d.note = dry.error().message();
  } else {
    const std::string out = dry->err + dry->out;
    std::smatch m;
    if (std::regex_search(out, m, std::regex("diverged at WAL location ([0-9A-F]+/[0-9A-F]+) on timeline ([0-9]+)"))) {
      d.fork_lsn = m[1];
      d.fork_timeline = std::stoi(m[2]);
    } else if (out.find("no rewind required") != std::string::npos) {
      d.note = "no rewind required";
    } else {
      d.note = "pg_rewind did not say where the timelines forked";
    }
  }
  if (d.fork_lsn.empty()) return d;
  // 2. Our WAL after the fork: last record and commits (pg_waldump stops with an error at the
  // end of the WAL; what it printed before is the answer).
  const int tl = timeline > 0 ? timeline : d.fork_timeline;
  RunOptions ro;
  ro.timeout = std::chrono::seconds(120);
  auto dump = runProcess({std::string(kBinDir) + "pg_waldump", "-p", pgdata_ + "/pg_wal", "-t",
                          std::to_string(tl), "-s", d.fork_lsn},
                         ro);
  if (dump) {
    std::istringstream lines(dump->out);
    std::string line;
    int commits = 0;
    static const std::regex kLsn("lsn: ([0-9A-F]+/[0-9A-F]+)");
    while (std::getline(lines, line)) {
      std::smatch m;
      if (!std::regex_search(line, m, kLsn)) continue;
      d.end_lsn = m[1];
      if (line.find("rmgr: Transaction") != std::string::npos &&
          line.find("desc: COMMIT") != std::string::npos) {
        ++commits;
      }
    }
    if (d.end_lsn.empty()) d.end_lsn = d.fork_lsn;  // nothing after the fork
    d.transactions = commits;
    d.bytes = static_cast<long long>(lsnValue(d.end_lsn) - std::min(lsnValue(d.fork_lsn), lsnValue(d.end_lsn)));
  } else {
    d.note = "pg_waldump: " + dump.error().message();
  }
  // 3. Keep the WAL files from the fork's segment on.
  const std::string first = walFileName(tl, lsnValue(d.fork_lsn));
  std::error_code ec;
  const std::string dir = keep_dir + "/" + d.at_utc;
  for (const auto& e : fs::directory_iterator(pgdata_ + "/pg_wal", ec)) {
    const std::string n = e.path().filename().string();
    if (n.size() != 24 || n.substr(0, 8) != first.substr(0, 8) || n < first) continue;
    fs::create_directories(dir, ec);
    fs::copy_file(e.path(), dir + "/" + n, fs::copy_options::overwrite_existing, ec);
    if (!ec) d.kept_in = dir;
  }
  return d;
}

}  // namespace tandem::sqlagent
