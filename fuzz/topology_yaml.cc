// libFuzzer target: arbitrary bytes through the topology loader and validator, which must never
// throw or crash (DESIGN.md §9: bad input never crashes), and must keep their invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "topology/loader.h"
#include "topology/validator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  tandem::topology::LoadResult r = tandem::topology::checkTopology(text, "fuzz.yaml");
  for (const auto& p : r.problems) {
    // Every problem has a rule and a sentence, and a line inside the text (0 = whole file).
    if (p.rule.empty() || p.message.empty() || p.line < 0) std::abort();
    (void)p.toString();
  }
  if (r.problems.empty()) {
    // A valid model must print: `topology show --json` relies on it.
    (void)tandem::topology::toJson(r.topology).dump();
  }
  return 0;
}
