// Replica: the local replica file, its watchers, its follower thread and its admin routes.
#include "cms/replica.h"

#include <sys/stat.h>

#include <cstdio>

#include "common/files.h"
#include "common/log.h"
#include "rpc/server.h"

namespace tandem::cms {

Result<std::unique_ptr<Replica>> Replica::open(const ReplicaOptions& options) {
  std::unique_ptr<Replica> r(new Replica());
  r->options_ = options;
  r->path_ = options.state_dir + "/servers/" + options.name + "/replica.json";
  std::shared_ptr<const Snapshot> snap;
  if (struct stat st {}; ::stat(r->path_.c_str(), &st) == 0) {
    r->opened_mtime_ns_ = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    r->opened_inode_ = st.st_ino;
  }
  auto text = readFile(r->path_);
  if (text) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    auto v = j.is_discarded() ? Result<Version>(fail(invalidArgument("not JSON")))
                              : versionFromJson(j);
    auto s = v ? Snapshot::make(*v) : Result<std::shared_ptr<const Snapshot>>(fail(v.error()));
    if (s) {
      snap = *s;
    } else if (!options.follow_only) {
      spdlog::warn("CMS replica `{}` is unreadable ({}); set aside as {}.corrupt, starting from the "
                   "bootstrap topology until the CMS pushes a version",
                   r->path_, s.error().message(), r->path_);
      std::rename(r->path_.c_str(), (r->path_ + ".corrupt").c_str());
    }
  }
  if (!snap) {
    if (options.bootstrap_topology.empty())
      return fail(invalidArgument("server `" + options.name + "` has no CMS replica (" + r->path_ +
                                  ") and no topology file to start from"));
    auto b = Snapshot::bootstrap(options.bootstrap_topology);
    if (!b) return fail(b.error().withContext("server `" + options.name + "`"));
    snap = *b;
  }
  r->current_ = snap;
  r->received_at_ = std::chrono::steady_clock::now();
  r->received_wall_ = realClock().wallNow();
  if (options.follow_only) {
    Replica* self = r.get();
    r->follower_ = std::thread([self] { self->followLoop(); });
  } else {
    (void)makeDirs(options.state_dir + "/servers/" + options.name);
  }
  return r;
}

Replica::~Replica() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  if (follower_.joinable()) follower_.join();
}

std::shared_ptr<const Snapshot> Replica::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

int Replica::watch(Callback cb) {
  std::lock_guard<std::mutex> lock(mu_);
  int id = next_watch_id_++;
  watchers_.emplace_back(id, std::move(cb));
  return id;
}

void Replica::unwatch(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(watchers_, [id](const auto& w) { return w.first == id; });
}

void Replica::notify(const std::shared_ptr<const Snapshot>& snap) {
  std::vector<Callback> cbs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& w : watchers_) cbs.push_back(w.second);
  }
  for (const auto& cb : cbs) cb(snap);
}

Status Replica::apply(const nlohmann::json& pushed) {
  if (options_.follow_only)
    return failedPrecondition("the CMS replica of `" + options_.name +
                              "` is only followed by this process; push to its owner");
  auto v = versionFromJson(pushed);
  if (!v) return v.error();
  std::lock_guard<std::mutex> apply_lock(apply_mu_);
  if (!v->isNewerThan(current()->version())) return Status::ok();
  auto snap = Snapshot::make(*v);
  if (!snap) return snap.error();
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(path_, toJson(*v).dump(), 0644));
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = *snap;
    received_at_ = std::chrono::steady_clock::now();
    received_wall_ = realClock().wallNow();
  }
  spdlog::info("CMS replica now holds version {} (epoch {}): {}", v->number, v->epoch, v->summary);
  notify(*snap);
  return Status::ok();
}

double Replica::ageSeconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - received_at_).count();
}

nlohmann::json Replica::report() const {
  auto snap = current();
  SystemTime received;
  {
    std::lock_guard<std::mutex> lock(mu_);
    received = received_wall_;
  }
  const Version& v = snap->version();
  return {{"name", options_.name},
          {"version", v.number},
          {"epoch", v.epoch},
          {"created_at", formatUtc(v.created_at)},
          {"received_at", formatUtc(received)},
          {"product_version", kProductVersion},
          {"age_seconds", ageSeconds()}};
}

void Replica::followLoop() {
  int64_t last_mtime_ns = opened_mtime_ns_;
  uint64_t last_inode = opened_inode_;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return;
    }
    // Sleep in small slices so destruction is quick.
    auto until = std::chrono::steady_clock::now() + options_.follow_interval;
    while (std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    struct stat now {};
    if (::stat(path_.c_str(), &now) != 0) continue;
    int64_t mtime_ns = int64_t{now.st_mtim.tv_sec} * 1000000000 + now.st_mtim.tv_nsec;
    if (mtime_ns == last_mtime_ns && now.st_ino == last_inode) continue;
    last_mtime_ns = mtime_ns;
    last_inode = now.st_ino;
    auto text = readFile(path_);
    if (!text) continue;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded()) continue;
    auto v = versionFromJson(j);
    if (!v || !v->isNewerThan(current()->version())) continue;
    auto snap = Snapshot::make(*v);
    if (!snap) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = *snap;
      received_at_ = std::chrono::steady_clock::now();
      received_wall_ = realClock().wallNow();
    }
    notify(*snap);
  }
}

void serveReplica(rpc::AdminServer& server, Replica& replica) {
  auto apply = [&replica](const rpc::Request& req) {
    auto body = req.json();
    if (!body) return rpc::Response::error(body.error());
    Status st = replica.apply(*body);
    if (!st.isOk()) return rpc::Response::error(st);
    return rpc::Response::json(replica.report());
  };
  server.route("PUT", "/cms/replica", apply);
  server.route("POST", "/cms/replica", apply);
  server.route("GET", "/cms/replica", [&replica](const rpc::Request& req) {
    nlohmann::json rep = replica.report();
    auto full = req.params.find("full");
    if (full != req.params.end() && full->second == "1")
      rep["full"] = toJson(replica.current()->version());
    return rpc::Response::json(rep);
  });
}

}  // namespace tandem::cms
