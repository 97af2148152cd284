// Typed, line-keeping reads of yaml-cpp nodes; every failure becomes a Problem, never a throw.
#include "topology/internal/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <climits>

namespace tandem::topology::internal {

std::string oneLine(std::string message) {
  for (char& c : message) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return message;
}

void ProblemSink::add(int line, std::string rule, std::string message) {
  problems_.push_back(Problem{file_, line, std::move(rule), oneLine(std::move(message))});
}

bool ProblemSink::takeItem(int line) {
  if (++items_ <= kMaxItems) return true;
  if (!reported_too_large_) {
    reported_too_large_ = true;
    add(line, "too-large",
        "the topology describes more than " + std::to_string(kMaxItems) +
            " sites, stores, pools, servers, users, rooms and list items; the rest were not "
            "read");
  }
  return false;
}

bool ProblemSink::takeEntry(int line) {
  if (++entries_ <= kMaxEntries) return true;
  if (!reported_too_large_) {
    reported_too_large_ = true;
    add(line, "too-large",
        "the topology has more than " + std::to_string(kMaxEntries) +
            " keys; the rest were not read");
  }
  return false;
}

int nodeLine(const YAML::Node& node, int fallback) {
  try {
    YAML::Mark m = node.Mark();
    if (m.is_null() || m.line < 0) return fallback;
    return m.line + 1;
  } catch (const std::exception&) {
    return fallback;
  }
}

const char* nodeKindName(const YAML::Node& node) {
  try {
    switch (node.Type()) {
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a map";
      case YAML::NodeType::Scalar: return "a single value";
      case YAML::NodeType::Null: return "empty";
      case YAML::NodeType::Undefined: return "undefined";
    }
  } catch (const std::exception&) {
  }
  return "undefined";
}

namespace {

bool isNull(const YAML::Node& n) {
  try {
    return !n.IsDefined() || n.IsNull();
  } catch (const std::exception&) {
    return true;
  }
}

bool isScalar(const YAML::Node& n);

// What a wrong value looked like, cut short: messages stay one readable line.
std::string shown(const YAML::Node& n) {
  if (!isScalar(n)) return nodeKindName(n);
  const std::string& s = n.Scalar();
  return s.size() <= 40 ? s : s.substr(0, 40) + "...";
}

bool isScalar(const YAML::Node& n) {
  try {
    return n.IsScalar();
  } catch (const std::exception&) {
    return false;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

MapReader::MapReader(const YAML::Node& node, ProblemSink& sink, KeyLines& lines, int line,
                     std::string subject)
    : sink_(sink), lines_(lines), line_(line), subject_(std::move(subject)) {
  try {
    if (!node.IsMap()) return;
    for (auto it = node.begin(); it != node.end(); ++it) {
      int key_line = nodeLine(it->first, line_);
      if (!isScalar(it->first)) {
        sink_.add(key_line, "wrong-type",
                  "a key in " + subject_ + " is " + nodeKindName(it->first) +
                      "; keys must be plain words such as `name`");
        continue;
      }
      if (!sink_.takeEntry(key_line)) break;
      if (it->first.Scalar().size() > ProblemSink::kMaxScalarBytes) {
        sink_.add(key_line, "too-long",
                  "a key in " + subject_ + " is " + std::to_string(it->first.Scalar().size()) +
                      " characters long; keys are short words such as `name`");
        continue;
      }
      entries_.push_back(Entry{it->first.Scalar(), key_line, it->second});
      lines_.emplace(it->first.Scalar(), key_line);  // keeps the first occurrence
    }
  } catch (const std::exception&) {
    // yaml-cpp iterators do not throw on a parsed document; a partial read is still reported.
  }
}

bool MapReader::has(const std::string& key) const { return value(key) != nullptr; }

const YAML::Node* MapReader::value(const std::string& key) const {
  for (const auto& e : entries_) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

int MapReader::keyLine(const std::string& key) const { return lineOf(lines_, key, line_); }

void MapReader::reportWrongType(const std::string& key, const YAML::Node& v,
                                const char* expected) {
  sink_.add(nodeLine(v, keyLine(key)), "wrong-type",
            "`" + key + "` of " + subject_ + " must be " + expected + ", not " +
                nodeKindName(v));
}

bool MapReader::readString(const std::string& key, std::string& out, bool required,
                           const std::string& hint) {
  const YAML::Node* v = value(key);
  bool empty = v == nullptr || isNull(*v) || (isScalar(*v) && v->Scalar().empty());
  if (empty) {
    if (required) {
      int line = v == nullptr ? line_ : keyLine(key);
      sink_.add(line, "missing-key",
                subject_ + " has no `" + key + "`" + (hint.empty() ? "" : "; " + hint));
    }
    return false;
  }
  if (!isScalar(*v)) {
    reportWrongType(key, *v, "a single value");
    return false;
  }
  if (!checkLength(key, *v)) return false;
  out = v->Scalar();
  return true;
}

bool MapReader::checkLength(const std::string& key, const YAML::Node& v) {
  size_t size = v.Scalar().size();
  if (size <= ProblemSink::kMaxScalarBytes) return true;
  sink_.add(nodeLine(v, keyLine(key)), "too-long",
            "`" + key + "` of " + subject_ + " is " + std::to_string(size) +
                " characters long; at most " + std::to_string(ProblemSink::kMaxScalarBytes) +
                " are accepted");
  return false;
}

bool MapReader::readBool(const std::string& key, bool& out) {
  const YAML::Node* v = value(key);
  if (v == nullptr || isNull(*v)) return false;
  if (isScalar(*v)) {
    std::string s = lower(v->Scalar());
    if (s == "true" || s == "yes") return out = true, true;
    if (s == "false" || s == "no") return out = false, true;
  }
  sink_.add(nodeLine(*v, keyLine(key)), "wrong-type",
            "`" + key + "` of " + subject_ + " must be true or false, not `" +
                shown(*v) + "`");
  return false;
}

bool MapReader::readInt(const std::string& key, int& out) {
  const YAML::Node* v = value(key);
  if (v == nullptr || isNull(*v)) return false;
  if (isScalar(*v)) {
    const std::string& s = v->Scalar();
    long long n = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ptr == s.data() + s.size() && !s.empty()) {
      // Out-of-range numbers clamp, so that the validator reports the range rule once.
      if (ec == std::errc::result_out_of_range) n = s.front() == '-' ? LLONG_MIN : LLONG_MAX;
      if (ec == std::errc() || ec == std::errc::result_out_of_range) {
        out = static_cast<int>(std::clamp<long long>(n, INT_MIN, INT_MAX));
        return true;
      }
    }
  }
  sink_.add(nodeLine(*v, keyLine(key)), "wrong-type",
            "`" + key + "` of " + subject_ + " must be a whole number, not `" +
                shown(*v) + "`");
  return false;
}

bool MapReader::readStringList(const std::string& key, std::vector<std::string>& out) {
  const YAML::Node* v = value(key);
  if (v == nullptr || isNull(*v)) return false;
  // A single name where a list is expected is accepted: `active_servers: chat1a.example.test`.
  if (isScalar(*v)) {
    if (!checkLength(key, *v)) return false;
    out = {v->Scalar()};
    lines_[key + "[0]"] = nodeLine(*v, keyLine(key));
    return true;
  }
  if (!v->IsSequence()) {
    reportWrongType(key, *v, "a list of names");
    return false;
  }
  out.clear();
  try {
    for (const auto& item : *v) {
      int line = nodeLine(item, keyLine(key));
      if (!sink_.takeItem(line)) break;
      if (!isScalar(item)) {
        sink_.add(line, "wrong-type",
                  "an item of `" + key + "` in " + subject_ + " is " + nodeKindName(item) +
                      "; it must be a name");
        continue;
      }
      if (!checkLength(key, item)) continue;
      lines_[key + "[" + std::to_string(out.size()) + "]"] = line;
      out.push_back(item.Scalar());
    }
  } catch (const std::exception&) {
  }
  return true;
}

void MapReader::finish(const std::vector<std::string>& allowed) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end()) {
      std::string near = closestWord(e.key, allowed);
      sink_.add(e.line, "unknown-key",
                "unknown key `" + e.key + "` in " + subject_ +
                    (near.empty() ? "" : "; did you mean `" + near + "`?"));
      continue;
    }
    for (size_t j = 0; j < i; ++j) {
      if (entries_[j].key == e.key) {
        sink_.add(e.line, "duplicate-key",
                  "key `" + e.key + "` appears twice in " + subject_ + " (first at line " +
                      std::to_string(entries_[j].line) + "); only the first is used");
        break;
      }
    }
  }
}

std::vector<YAML::Node> listItems(const YAML::Node& node, ProblemSink& sink, int line,
                                  const std::string& what) {
  std::vector<YAML::Node> items;
  if (isNull(node)) return items;
  try {
    if (!node.IsSequence()) {
      sink.add(nodeLine(node, line), "wrong-type",
               what + " must be a list (items starting with `-`), not " + nodeKindName(node));
      return items;
    }
    for (const auto& item : node) {
      if (!sink.takeItem(nodeLine(item, line))) break;
      items.push_back(item);
    }
  } catch (const std::exception&) {
  }
  return items;
}

std::string closestWord(const std::string& word, const std::vector<std::string>& candidates) {
  if (word.size() > 64) return "";
  std::string best;
  size_t best_d = 3;
  for (const auto& c : candidates) {
    // Levenshtein distance, two rows.
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        size_t sub = prev[j - 1] + (std::tolower(static_cast<unsigned char>(word[i - 1])) ==
                                            std::tolower(static_cast<unsigned char>(c[j - 1]))
                                        ? 0
                                        : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_d) {
      best_d = prev[c.size()];
      best = c;
    }
  }
  return best;
}

}  // namespace tandem::topology::internal
