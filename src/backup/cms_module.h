// The Cms module of the Backup Service: the CMS's own versioned copy of xds in its backup
// pool's store (src/cms: the master copies every new version to the standby xds within ~2 s),
// reported in the Backup Service's vocabulary, so `backup status|sync` cover both modules.
// Lag is counted in CMS versions (each published change is one version).
// Functions block on the CMS stores (bounded by libpq's connect timeout). Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backup/state.h"
#include "common/status.h"
#include "topology/topology.h"

namespace tandem::backup {

struct CmsModuleStatus {
  ModuleState state;
  std::string active_pool, active_store, standby_store;
  int64_t current_version = 0;
  std::string current_version_at;  // creation time of the newest version (UTC), "" unknown
  int64_t standby_version = -1;    // -1 unknown
  std::string standby_synced_at;
  std::optional<int64_t> lag_changes;  // versions the standby lacks
};

// The Cms module as seen from `pool`: exported (SteadyState/NonSteadyState/ErrorState) when
// `pool` holds the active CMS, NotInitialized with the reason otherwise. Never fails: a CMS that
// does not answer is an ErrorState with its sentence.
CmsModuleStatus cmsStatus(const topology::Topology& topology, const std::string& state_dir,
                          const std::string& pool);

// Copies every version the standby lacks now (`cms sync`). FailedPrecondition when `pool` does
// not hold the active CMS; Unavailable when either copy does not answer.
Status cmsSync(const topology::Topology& topology, const std::string& state_dir,
               const std::string& pool);

}  // namespace tandem::backup
