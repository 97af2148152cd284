// CMS settings: the typed keys every module reads from its replica, and their validation.
//
// A setting is a key (docs/architecture.md "CMS settings used across modules") and a JSON value.
// Known keys:
//   chat.<chat pool>.state           "Normal" | "FailedOver"
//   chat.<chat pool>.active_servers  ["chat1a.example.test", ...]  (servers of that pool; may be [])
//   chat.<chat pool>.frontend_pool   "pool1.example.test"           (a front-end pool)
//   chat.<chat pool>.default_category "general": the category a room created over XMPP starts
//                                    in (its creator must be among its creators unless the
//                                    room's first configuration form names another category)
//   users.<name>                     {"pool": "<front-end pool>", ...other string fields kept}
//   frontend.<front-end pool>.redirect  "redirect" | "proxy" | "auto": what a server does with a
//                                    client of a user served by another server (see-other-host,
//                                    relay to the owner, or redirect then relay a client that
//                                    comes back). Unset means "auto".
// Any other key is refused. Every published version carries the complete settings: defaults
// derived from the topology (state Normal, the file's active_servers and frontend_pool,
// default_category general, its users) are filled in for keys the operator has not set. Pure
// functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::cms {

// OK when `key` is a known key for this topology and `value` has the right type and refers to
// things the topology has. A null `value` means "remove" and is accepted only for users.<name>
// and frontend.<pool>.redirect.
// Errors: InvalidArgument naming the key and saying what is expected.
Status validateSetting(const topology::Topology& topology, const std::string& key,
                       const nlohmann::json& value);

// The settings a freshly published topology implies (see above), as a JSON object key -> value.
nlohmann::json defaultSettings(const topology::Topology& topology);

// `settings` completed for `topology`: keys of pools that no longer exist (or changed role) are
// dropped, missing keys get their defaults; existing valid values are kept.
nlohmann::json reconcileSettings(const topology::Topology& topology, const nlohmann::json& settings);

// "key: old -> new" lines for every key whose value differs (added, removed or changed).
std::vector<std::string> diffSettings(const nlohmann::json& before, const nlohmann::json& after);

// Known key patterns, for `config get` listings and error hints.
std::vector<std::string> settingKeyPatterns();

}  // namespace tandem::cms
