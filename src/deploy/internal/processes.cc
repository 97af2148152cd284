// Run records, liveness, ports, health probes, postmasters and signals for deploy.
#include "deploy/internal/processes.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/files.h"
#include "common/process.h"
#include "rpc/client.h"

namespace tandem::deploy::internal {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- run records ------------------------------------------------------------------------------

json toJson(const RunRecord& r) {
  return {{"name", r.name}, {"kind", r.kind},       {"site", r.site},
          {"role", r.role}, {"address", r.address}, {"pid", r.pid},
          {"argv", r.argv}, {"log", r.log},         {"started_at", r.started_at}};
}

std::string runRecordPath(const std::string& state_dir, const std::string& name) {
  return state_dir + "/run/" + name + ".json";
}

Status writeRunRecord(const std::string& state_dir, const RunRecord& r) {
  return writeFileAtomic(runRecordPath(state_dir, r.name), toJson(r).dump(2) + "\n", 0644);
}

namespace {
std::optional<RunRecord> parseRecord(const std::string& text) {
  try {
    json j = json::parse(text);
    RunRecord r;
    r.name = j.value("name", "");
    r.kind = j.value("kind", "");
    r.site = j.value("site", "");
    r.role = j.value("role", "");
    r.address = j.value("address", "");
    r.log = j.value("log", "");
    r.pid = j.value("pid", 0);
    r.started_at = j.value("started_at", "");
    if (j.contains("argv")) r.argv = j["argv"].get<std::vector<std::string>>();
    if (r.name.empty()) return std::nullopt;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}
}  // namespace

std::optional<RunRecord> readRunRecord(const std::string& state_dir, const std::string& name) {
  auto text = readFile(runRecordPath(state_dir, name));
  if (!text) return std::nullopt;
  return parseRecord(*text);
}

std::vector<RunRecord> readRunRecords(const std::string& state_dir) {
  std::vector<RunRecord> out;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(state_dir + "/run", ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto text = readFile(f.string());
    if (!text) continue;
    if (auto r = parseRecord(*text)) out.push_back(std::move(*r));
  }
  return out;
}

// ---- liveness ----------------------------------------------------------------------------------

namespace {
std::string cmdline(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}
}  // namespace

bool isOurProcess(int pid) {
  return isProcessAlive(pid) && cmdline(pid).find("tandemd") != std::string::npos;
}

std::optional<int> livePostmaster(const std::string& state_dir, const std::string& store) {
  auto text = readFile(state_dir + "/stores/" + store + "/pgdata/postmaster.pid");
  if (!text) return std::nullopt;
  int pid = 0;
  try {
    pid = std::stoi(text->substr(0, text->find('\n')));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!isProcessAlive(pid)) return std::nullopt;
  std::string cl = cmdline(pid);
  if (cl.find("postgres") == std::string::npos && cl.find("postmaster") == std::string::npos) {
    return std::nullopt;  // a recycled pid: not our postmaster
  }
  return pid;
}

namespace {
std::string pgCtl() {
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(e.path() / "bin/pg_ctl", ec))
      found.push_back((e.path() / "bin/pg_ctl").string());
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? "pg_ctl" : found.back();
}
}  // namespace

Status stopPostmaster(const std::string& state_dir, const std::string& store,
                      std::chrono::seconds timeout) {
  auto pid = livePostmaster(state_dir, store);
  if (!pid) return Status::ok();
  std::string pgdata = state_dir + "/stores/" + store + "/pgdata";
  RunOptions o;
  o.user = "postgres";
  o.timeout = timeout + std::chrono::seconds(5);
  (void)runProcess(
      {pgCtl(), "stop", "-D", pgdata, "-m", "fast", "-w", "-t", std::to_string(timeout.count())},
      o);
  if (!livePostmaster(state_dir, store)) return Status::ok();
  // pg_ctl could not stop it (or is missing): make sure no postmaster outlives the deployment.
  signalTree(*pid, SIGKILL);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (livePostmaster(state_dir, store) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (livePostmaster(state_dir, store)) {
    return unavailable("the PostgreSQL postmaster of store `" + store + "` (pid " +
                       std::to_string(*pid) + ") survived pg_ctl stop and SIGKILL");
  }
  return Status::ok();
}

// ---- addresses and ports
// -------------------------------------------------------------------------

Status checkAddressIsLocal(const std::string& address) {
  in_addr a{};
  if (::inet_pton(AF_INET, address.c_str(), &a) != 1) {
    return invalidArgument("address `" + address + "` is not an IPv4 address");
  }
  if ((ntohl(a.s_addr) >> 24) == 127) return Status::ok();  // all of 127/8 is loopback on Linux
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return Status::ok();  // cannot tell: let bind() decide
  bool found = false;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
        reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == a.s_addr) {
      found = true;
    }
  }
  ::freeifaddrs(list);
  if (!found) {
    return failedPrecondition("address `" + address +
                              "` is not on any interface of this machine; add it (ip addr add " +
                              address + "/32 dev lo) or deploy this part on its own host");
  }
  return Status::ok();
}

namespace {
// Listening sockets as (address, port); address "0.0.0.0" stands for any wildcard (v4 or v6).
std::vector<std::pair<std::string, int>> listeners() {
  std::vector<std::pair<std::string, int>> out;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, st;
      ls >> sl >> local >> remote >> st;
      if (st != "0A") continue;  // TCP_LISTEN
      size_t colon = local.find(':');
      if (colon == std::string::npos) continue;
      std::string hex = local.substr(0, colon);
      int port = static_cast<int>(std::stoul(local.substr(colon + 1), nullptr, 16));
      if (hex.size() == 8) {
        uint32_t v = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
        // The kernel prints the address as a host-order number of network-order bytes.
        out.push_back({std::to_string(v & 0xff) + "." + std::to_string((v >> 8) & 0xff) + "." +
                           std::to_string((v >> 16) & 0xff) + "." + std::to_string(v >> 24),
                       port});
      } else if (hex.find_first_not_of('0') == std::string::npos) {
        out.push_back({"0.0.0.0", port});
      }
    }
  }
  return out;
}
}  // namespace

Status checkPortsFree(const std::string& who, const std::string& address,
                      const std::vector<int>& ports) {
  auto ls = listeners();
  for (int port : ports) {
    for (const auto& [a, p] : ls) {
      if (p == port && (a == address || a == "0.0.0.0")) {
        return failedPrecondition(
            "cannot start `" + who + "`: something else already listens on " + a + ":" +
            std::to_string(port) + "; stop it (ss -ltnp 'sport = :" + std::to_string(port) +
            "' names it) or pick other addresses in the topology (TANDEM_TEST_NET in tests)");
      }
    }
  }
  return Status::ok();
}

// ---- health -------------------------------------------------------------------------------------

Status probeHealth(const std::string& state_dir, const std::string& address,
                   std::chrono::milliseconds timeout) {
  auto options = rpc::clientOptionsFromStateDir(state_dir);
  if (!options) return options.error();
  options->timeout = timeout;
  rpc::AdminClient client(address, 8443, *options);
  auto doc = client.get("/health");
  if (!doc) return doc.error();
  if (!doc->is_object() || !doc->value("ok", false)) {
    return unavailable(address + ":8443/health answered but not ok: " + doc->dump());
  }
  return Status::ok();
}

// ---- logs, children, signals, time -------------------------------------------------------------

std::string lastLogLine(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::streamoff size = in.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - 4096);
  in.seekg(start);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream ls(tail);
  std::string line, last;
  while (std::getline(ls, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) last = line;
  }
  if (last.size() > 300) last = last.substr(0, 300) + "…";
  return last;
}

void reapIfChild(int pid) {
  int status = 0;
  (void)::waitpid(pid, &status, WNOHANG);
}

void signalTree(int pid, int sig) {
  if (pid <= 0) return;
  if (::getpgid(pid) == pid) ::kill(-pid, sig);
  ::kill(pid, sig);
}

std::string nowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ProcessState stateOf(const ProcessSpec& spec) {
  ProcessState s;
  s.name = spec.name;
  s.kind = spec.kind;
  s.site = spec.site;
  s.role = spec.role;
  s.pool = spec.pool;
  s.address = spec.address;
  s.log = spec.log;
  return s;
}

}  // namespace tandem::deploy::internal
