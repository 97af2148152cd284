// Cross-reference validation of a loaded topology (DESIGN.md §8 rules).
#pragma once

#include <vector>

#include "topology/loader.h"

namespace tandem::topology {

// Returns every rule violation in the model (empty when valid). Pure function.
std::vector<Problem> validate(const Topology& topology);

}  // namespace tandem::topology
