// Loading a topology file into the model, keeping line numbers.
//
// Loading only parses and checks shapes (types, unknown and missing keys); the cross-reference
// rules live in validator.h. Both report every problem they find, not just the first.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::topology {

// One problem in a topology file: "FILE:LINE: sentence".
struct Problem {
  std::string file;
  int line = 0;  // 1-based; 0 when the problem concerns the whole file
  std::string rule;     // stable rule id, e.g. "unknown-key", "mirror-other-site"
  std::string message;  // one plain sentence
  std::string toString() const;  // "FILE:LINE: message"
};

struct LoadResult {
  Topology topology;              // best effort even when problems is not empty
  std::vector<Problem> problems;  // shape problems (syntax, unknown/missing keys, types)
};

// Parses YAML text. `file` is used only in messages. Never throws, never crashes on any input.
LoadResult parseTopology(const std::string& text, const std::string& file);

// Reads and parses a file; a missing file is one problem at line 0.
LoadResult loadTopologyFile(const std::string& path);

// Loads and validates; OK only when there are no problems at all. The error message lists the
// first problem and the count of the rest; use loadTopologyFile + validate for all of them.
Result<Topology> loadValidTopology(const std::string& path);

}  // namespace tandem::topology
