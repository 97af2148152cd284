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
  // True when the text was YAML with a map at its root, so `topology` is worth validating;
  // false after a yaml-syntax, empty-file, unreadable-file or root wrong-type problem.
  bool parsed = false;
};

// Parses YAML text. `file` is used only in messages. Never throws, never crashes on any input.
LoadResult parseTopology(const std::string& text, const std::string& file);

// Reads and parses a file; a missing file is one problem at line 0.
LoadResult loadTopologyFile(const std::string& path);

// Parses, then (when the text parsed) validates: every problem of both passes, sorted by line.
// This is what `tandemctl topology validate` prints. Never throws.
LoadResult checkTopology(const std::string& text, const std::string& file);
LoadResult checkTopologyFile(const std::string& path);

// Loads and validates; OK only when there are no problems at all. The error message lists the
// first problem and the count of the rest; use checkTopologyFile for all of them.
// Errors: NotFound when the file does not exist; InvalidArgument for any other problem.
// Blocks on reading the file; no other side effect.
Result<Topology> loadValidTopology(const std::string& path);

// Files larger than this are refused unread (a topology is a few kilobytes).
inline constexpr size_t kMaxTopologyFileBytes = 4 * 1024 * 1024;

}  // namespace tandem::topology
