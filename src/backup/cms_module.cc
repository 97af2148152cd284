// The Cms module's status and sync, from the CMS's own standby copy (cms_module.h).
#include "backup/cms_module.h"

#include "cms/client.h"
#include "cms/failover.h"
#include "common/clock.h"

namespace tandem::backup {

CmsModuleStatus cmsStatus(const topology::Topology& topology, const std::string& state_dir,
                          const std::string& pool) {
  CmsModuleStatus out;
  auto client = cms::Client::connect(topology, state_dir, "tandemctl backup status");
  auto st = client ? (*client)->status() : Result<cms::CmsStatus>(fail(client.error()));
  if (!st) {
    out.state.export_state = ExportState::kErrorState;
    out.state.export_reason = "the CMS does not answer: " + st.error().message();
    return out;
  }
  out.active_pool = st->active_pool;
  out.active_store = st->active_store;
  out.standby_store = st->standby_store;
  out.current_version = st->current_version;
  if (st->current_version_created) out.current_version_at = formatUtc(*st->current_version_created);
  out.standby_version = st->standby_version;
  if (st->standby_synced_at) out.standby_synced_at = formatUtc(*st->standby_synced_at);
  if (st->active_pool != pool) {
    out.state.export_state = ExportState::kNotInitialized;
    out.state.export_reason =
        "pool `" + pool + "` does not hold the active CMS (pool `" + st->active_pool + "` does)";
    return out;
  }
  if (st->standby_store.empty()) {
    out.state.export_state = ExportState::kNotInitialized;
    out.state.export_reason = "the CMS pool has no backup pool to copy the CMS to";
    return out;
  }
  if (st->standby_version >= 0)
    out.lag_changes = std::max<int64_t>(0, st->current_version - st->standby_version);
  if (!st->standby_error.empty() || st->standby_version < 0) {
    out.state.export_state = ExportState::kErrorState;
    out.state.export_reason =
        "the CMS copy in store `" + st->standby_store +
        "` is not fed: " + (st->standby_error.empty() ? "it does not answer" : st->standby_error);
    out.state.import_state = ImportState::kErrorState;
    out.state.import_reason = out.state.export_reason;
    return out;
  }
  out.state.export_state =
      out.lag_changes.value_or(0) == 0 ? ExportState::kSteadyState : ExportState::kNonSteadyState;
  if (out.state.export_state == ExportState::kNonSteadyState) {
    out.state.export_reason =
        "the CMS copy is " + std::to_string(*out.lag_changes) + " version(s) behind";
  }
  return out;
}

Status cmsSync(const topology::Topology& topology, const std::string& state_dir,
               const std::string& pool) {
  const topology::Pool* p = topology.findPool(pool);
  if (p == nullptr || !p->cms) {
    // The CMS may have been failed over: ask where it is.
    CmsModuleStatus s = cmsStatus(topology, state_dir, pool);
    if (s.active_pool != pool) {
      return failedPrecondition("pool `" + pool + "` does not hold the active CMS; sync pool `" +
                                s.active_pool + "` with --module Cms");
    }
  }
  auto n = cms::syncStandbyNow(topology, state_dir);
  return n ? Status::ok() : n.error().withContext("backup sync of the Cms module");
}

}  // namespace tandem::backup
