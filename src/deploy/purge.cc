// deploy revive-site --purge: a site rebuilt empty (deploy.h).
#include <filesystem>

#include "deploy/deploy.h"
#include "topology/loader.h"

namespace tandem::deploy {

namespace fs = std::filesystem;

Result<UpReport> reviveSitePurged(const std::string& state_dir, const std::string& site,
                                  const std::string& tandemd, Progress progress) {
  auto topo = topology::loadValidTopology(state_dir + "/topology.yaml");
  if (!topo) return fail(topo.error().withContext("reading the deployed topology"));
  auto killed = killSite(state_dir, site);  // also validates `site`
  if (!killed) return fail(killed.error());
  std::vector<std::string> dirs;
  for (const auto& s : topo->stores) {
    if (s.site == site) dirs.push_back(state_dir + "/stores/" + s.name);
  }
  for (const auto& p : topo->pools) {
    for (const auto& s : p.servers) {
      if ((s.site.empty() ? p.site : s.site) == site)
        dirs.push_back(state_dir + "/servers/" + s.fqdn);
    }
  }
  for (const auto& d : dirs) {
    std::error_code ec;
    fs::remove_all(d, ec);
    if (ec) return fail(unavailable("cannot remove " + d + ": " + ec.message()));
    if (progress) progress("purged " + d);
  }
  return reviveSite(state_dir, site, tandemd, std::move(progress));
}

}  // namespace tandem::deploy
