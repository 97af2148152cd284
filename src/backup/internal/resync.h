// The full copy (resync) of the UserData module; see userdata.h for what it guarantees.
// Internal to src/backup.
#pragma once

#include <string>

#include "backup/link.h"
#include "common/status.h"
#include "store/connection.h"

namespace tandem::backup::internal {

// Steps, in order:
//   1 record "resync running" in the copy's metadata
//   2 detach the old subscription from its slot (disable, slot_name = NONE)
//   3 drop P's old slot, terminating its walsender first
//   4 create the new slot on P over a replication connection, exporting its snapshot
//   5 in ONE transaction of the copy: drop the subscription and the old tables, create P's
//     schema (pg_dump --schema-only at that snapshot), COPY every table read at that snapshot,
//     create the subscription on the new slot (copy_data = false, it starts at the slot's
//     position), record the metadata; commit
//   6 release the snapshot
// On failure the copy keeps its previous content (step 5 rolls back), the new slot is dropped
// (it would hold WAL), the failure is recorded as last_resync_error and returned.
// Requires: the caller holds the link's lock on `copy` (a connection to the copy database).
Status resync(const Link& link, store::Connection& copy, const std::string& reason);

}  // namespace tandem::backup::internal
