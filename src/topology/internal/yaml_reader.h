// Typed, line-keeping reads of yaml-cpp nodes for the topology loader (internal).
//
// Everything here reports problems into a ProblemSink instead of throwing, so that the loader
// can report every problem of a file in one pass. Nothing here throws: yaml-cpp calls that can
// throw are wrapped.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "topology/loader.h"

namespace tandem::topology::internal {

// Collects problems for one file, and bounds the work done on hostile input.
class ProblemSink {
 public:
  explicit ProblemSink(std::string file) : file_(std::move(file)) {}
  void add(int line, std::string rule, std::string message);
  std::vector<Problem>& problems() { return problems_; }

  // Counts one list item read. Aliases let a few bytes of YAML describe millions of elements
  // (a list of aliases of a list of aliases); past kMaxItems the loader stops reading items and
  // reports `too-large` once. Returns false when the item must be skipped.
  bool takeItem(int line);
  static constexpr int kMaxItems = 10000;

  // Counts one map key read; past kMaxEntries keys are skipped and `too-large` reported once.
  bool takeEntry(int line);
  static constexpr int kMaxEntries = 100000;

  // Longest name, address or path accepted. An alias of a long scalar repeated in a list would
  // otherwise copy it thousands of times (a few bytes of YAML, gigabytes of strings).
  static constexpr size_t kMaxScalarBytes = 1024;

 private:
  std::string file_;
  std::vector<Problem> problems_;
  int items_ = 0;
  int entries_ = 0;
  bool reported_too_large_ = false;
};

// `message` with control characters (newlines, tabs, escapes from quoted YAML strings) replaced
// by `?`, so that every problem prints as one line and cannot drive a terminal.
std::string oneLine(std::string message);

// The 1-based line of a node, or `fallback` when the node carries no position.
int nodeLine(const YAML::Node& node, int fallback);

// "a list", "a map", "a value", "nothing": for wrong-type messages.
const char* nodeKindName(const YAML::Node& node);

// Reads the keys of one YAML map describing one element (a store, a pool, ...). Keys are
// recorded into `lines`; unknown and duplicate keys are reported by finish().
class MapReader {
 public:
  MapReader(const YAML::Node& node, ProblemSink& sink, KeyLines& lines, int line,
            std::string subject);

  // How messages name the element, e.g. "store `sql1`" (default: "<kind> at line N").
  void setSubject(std::string subject) { subject_ = std::move(subject); }
  const std::string& subject() const { return subject_; }
  int line() const { return line_; }

  bool has(const std::string& key) const;
  // The value of the first occurrence of `key`; nullptr when absent. Owned by the reader.
  const YAML::Node* value(const std::string& key) const;
  int keyLine(const std::string& key) const;

  // Typed reads. Absent (or null) keys leave `out` untouched; when `required`, they are
  // reported as missing-key with `hint` after a semicolon. Wrong types are reported as
  // wrong-type. Each returns true when `out` was set from the file.
  bool readString(const std::string& key, std::string& out, bool required,
                  const std::string& hint = "");
  bool readBool(const std::string& key, bool& out);
  bool readInt(const std::string& key, int& out);
  bool readStringList(const std::string& key, std::vector<std::string>& out);

  // Reports every key not in `allowed` (unknown-key, at the key's line, with a suggestion when
  // one is close) and every repeated key (duplicate-key).
  void finish(const std::vector<std::string>& allowed);

 private:
  struct Entry {
    std::string key;
    int line = 0;
    YAML::Node value;
  };
  void reportWrongType(const std::string& key, const YAML::Node& v, const char* expected);
  bool checkLength(const std::string& key, const YAML::Node& scalar);  // too-long otherwise

  ProblemSink& sink_;
  KeyLines& lines_;
  int line_;
  std::string subject_;
  std::vector<Entry> entries_;
};

// Reads `node` as a list, reporting wrong-type (naming `what`, e.g. "`stores`") when it is not
// one. Returns the items (empty when absent, null or not a list).
std::vector<YAML::Node> listItems(const YAML::Node& node, ProblemSink& sink, int line,
                                  const std::string& what);

// The closest of `candidates` to `word` (edit distance ≤ 2), or "" when none is close.
std::string closestWord(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tandem::topology::internal
