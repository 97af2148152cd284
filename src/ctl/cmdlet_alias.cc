// Cmdlet name translation: parse -Param value pairs case-insensitively and hand them to the
// translator the noun registered.
#include "ctl/cmdlet_alias.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "ctl/cli.h"

namespace tandem::ctl {

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
}  // namespace

bool looksLikeCmdlet(const std::string& word) {
  // The one non-cmdlet the runbooks type as is (seed 004 6e): `Bootstrapper /Setup`.
  if (lower(word) == "bootstrapper" || lower(word) == "bootstrapper.exe") return true;
  auto dash = word.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 3 > word.size()) return false;
  return lower(word.substr(dash + 1, 2)) == "cs";
}

Result<std::vector<std::string>> translateCmdlet(const std::vector<std::string>& args) {
  std::string name = lower(args[0]);
  if (name == "bootstrapper.exe") name = "bootstrapper";
  const Cmdlet* found = nullptr;
  for (const auto& c : cmdlets()) {
    if (lower(c.name) == name) found = &c;
  }
  if (found == nullptr) {
    return fail(invalidArgument("`" + args[0] + "` is not a cmdlet tandemctl knows"));
  }
  std::map<std::string, std::string> params;
  std::vector<std::string> passthrough;  // our own flags (--state-dir, --json, --yes) pass through
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0) {
      passthrough.push_back(a);
      continue;
    }
    // Bootstrapper takes /Switch parameters (console program, not a cmdlet).
    if (a.empty() || (a[0] != '-' && !(a[0] == '/' && name == "bootstrapper"))) {
      return fail(invalidArgument("`" + a + "` is not a parameter of " + found->name +
                                  " (parameters start with -)"));
    }
    std::string pname = a.substr(1);
    std::string value;
    auto colon = pname.find(':');
    if (colon != std::string::npos) {  // -Switch:$true
      value = pname.substr(colon + 1);
      pname = pname.substr(0, colon);
    }
    const CmdletParam* p = nullptr;
    for (const auto& cp : found->params) {
      if (lower(cp.name) == lower(pname)) p = &cp;
    }
    if (p == nullptr) {
      return fail(invalidArgument("`-" + pname + "` is not a parameter of " + found->name));
    }
    if (p->is_switch) {
      params[p->name] = value.empty() ? "$true" : value;
    } else if (colon == std::string::npos) {
      if (i + 1 >= args.size()) {
        return fail(invalidArgument("parameter -" + p->name + " of " + found->name +
                                    " needs a value"));
      }
      params[p->name] = args[++i];
    } else {
      params[p->name] = value;
    }
  }
  auto out = found->translate(params);
  if (!out) return out;
  out->insert(out->end(), passthrough.begin(), passthrough.end());
  return out;
}

}  // namespace tandem::ctl
