// Preparing a deployment's state directory (docs/architecture.md "State directory"): the
// deployment secret, the CA and one certificate per server and store, the per-process folders
// and the deployed copy of the topology.
//
// Every function blocks on disk I/O and is idempotent: what exists is kept (the token, the CA and
// every certificate already issued), so `deploy up` after `deploy down` keeps the data and the
// trust. Not safe to run twice at once on one directory.
#pragma once

#include <string>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::deploy {

// Creates `state_dir` (mode 0755, so the `postgres` user can traverse it), `secret/token` (a new
// rpc::generateToken(), mode 0600) when absent, `pki/ca.pem` + `ca.key` when absent, and for every
// store name and server FQDN without one, `pki/<name>.pem` + `.key` (SANs: the name, its address;
// front ends also the domain and their pool FQDN). Creates `stores/<store>/` (owned by
// `postgres` when that user exists, so PostgreSQL can write its log there), `servers/<fqdn>/` and
// `run/`. Errors: Unavailable naming the path that could not be written.
Status prepareStateDir(const topology::Topology& topology, const std::string& state_dir);

// Copies the topology file's text to `<state_dir>/topology.yaml` (atomically). Errors: NotFound
// or Unavailable naming the file.
Status installTopology(const std::string& topology_file, const std::string& state_dir);

// True when `<state_dir>` holds a deployment (a token or any run record).
bool hasDeployment(const std::string& state_dir);

// Removes everything inside `state_dir` (not the directory itself). Errors: Unavailable naming
// what could not be removed.
Status purgeStateDir(const std::string& state_dir);

}  // namespace tandem::deploy
