// Operator-side database commands (`tandemctl db …`): mirror state of a mirrored pair, and the
// manual mirror failover as a runbook (fence the principal, promote the mirror, rejoin the old
// principal as the new mirror).
//
// Functions block on the store agents. The Env must outlive the returned runbook.
#pragma once

#include <string>
#include <vector>

#include "hadr/env.h"
#include "hadr/runbook.h"

namespace tandem::hadr {

// One member of a mirrored pair as `db mirror state` shows it.
struct MemberState {
  std::string store;
  bool reachable = false;
  std::string role;    // Principal | Mirror | Standalone | BackupRestoring | Fenced | … ("" if unreachable)
  std::string status;  // SYNCHRONIZED | SYNCHRONIZING | SUSPENDED | DISCONNECTED | ""
  long lag_bytes = 0;
  double lag_seconds = 0;
  std::string partner;
  std::string divergence;  // what its last rejoin discarded (one sentence; "" = nothing)
  std::string error;   // why it is unreachable
};
nlohmann::json toJson(const MemberState& m);

// The two stores of the pair `store` belongs to (itself and its mirror, or its principal and
// itself, per the topology): {principal-in-topology, mirror}. NotFound for an unknown store;
// FailedPrecondition when the store has no mirror and is no store's mirror.
Result<std::pair<std::string, std::string>> mirroredPair(const Env& env, const std::string& store);

// Both members' live state (unreachable members are reported, not an error).
Result<std::vector<MemberState>> mirrorState(const Env& env, const std::string& store);

// `db failover --store S`: the pair of S; the current principal (the writable member) is fenced,
// the other promoted, and the old principal, when it answers, rejoined as the new mirror.
// Steps: 1 fence the principal  2 promote the mirror  3 rejoin the old principal as mirror.
// Without `force` the gate refuses when the principal does not answer, saying what may be lost.
Runbook dbFailoverRunbook(Env& env, const std::string& store, bool force);

}  // namespace tandem::hadr
