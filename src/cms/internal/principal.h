// Checking a store an operator named for the CMS (seed 004 steps 5a-5c, 6a) is the principal
// of a CMS location's store now (internal; failover and install-db).
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms::internal {

// Renders what to type instead, given the pool, its store and the member that is principal.
using TypeInstead = std::function<std::string(const std::string& pool, const topology::Store& st,
                                              const std::string& principal)>;

// Returns the pool (CMS pool or its backup pool) whose store or mirror `store` is, when `store`
// is writable now. `named_as` "backup" requires the pool's own store, "mirror" its mirror, ""
// either; `pool`, when given, must be that pool. Errors: InvalidArgument (not such a store, or
// named with the other parameter), FailedPrecondition (not the principal now: the message names
// the principal and type_instead's text), Unavailable (no member of that store is writable).
// Blocks on connecting to the store's members.
Result<std::string> poolOfPrincipal(const topology::Topology& t, const std::string& store,
                                    const std::string& named_as, const std::string& pool,
                                    const std::string& secret, const TypeInstead& type_instead);

}  // namespace tandem::cms::internal
