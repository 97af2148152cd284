// Copying versions from the active xds to the standby copy (internal; master and `cms sync`).
#pragma once

#include <cstdint>

#include "cms/export.h"
#include "cms/internal/xds.h"

namespace tandem::cms::internal {

// Makes `standby` hold every version of `active`: appends the missing ones (keeping number,
// epoch and time); when the standby diverged (a version with the same number but another time
// or author, e.g. an old active that came back after `cms failover`), it drops its versions from
// the first difference and copies from there. Gives the standby epoch 0 (an old active copy
// that came back loses its epoch here, so it can never be taken for the active one).
// Records standby_version / standby_synced_at / standby_error in the active's meta.
// Returns the number of versions copied. Errors: FailedPrecondition when the "standby" has a
// higher epoch (it is the active one), or the store's errors.
Result<int64_t> syncStandby(Xds& active, Xds& standby);

// Every version of `xds` (oldest first, with documents), its store, pool and epoch.
Result<ExportFile> exportFrom(Xds& xds);

// Loads every version of `file` into `xds` in one transaction (numbers, epochs and times kept).
// Returns the number of versions loaded; 0 when `xds` already holds exactly the file's newest
// version (a rerun). Errors: FailedPrecondition when `xds` holds other versions (it is not an
// empty CMS store: `tandemctl cms install-db --clean` first), the store's errors (nothing is
// loaded then). Does not touch the epoch.
Result<int64_t> importInto(Xds& xds, const ExportFile& file);

}  // namespace tandem::cms::internal
