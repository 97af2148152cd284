// tandemctl framework: tables, errors, exit codes, confirmation, cmdlet registry.
#include "ctl/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <iostream>

#include "common/files.h"

namespace tandem::ctl {

std::string Table::render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(headers_);
  for (const auto& r : rows_) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string l;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < row.size() ? row[i] : "";
      l += cell;
      if (i + 1 < widths.size()) l += std::string(widths[i] - cell.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
  return out;
}

int exitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kConflict: return kExitRefused;
    case StatusCode::kInvalidArgument: return kExitUsage;
    default: return kExitFailed;
  }
}

int reportError(const Status& status, const std::string& hint) {
  std::cerr << "error: " << status.message() << "\n";
  if (!hint.empty()) std::cerr << "hint: " << hint << "\n";
  return exitCodeFor(status);
}

void printJson(const nlohmann::json& doc) { std::cout << doc.dump(2) << "\n"; }

void addJsonFlag(CLI::App* cmd, Context& ctx) {
  cmd->add_flag("--json", ctx.json, "Print one JSON document instead of a table");
}

void addWhatIfFlag(CLI::App* cmd, bool& what_if) {
  cmd->add_flag("--what-if", what_if, "Print what would be done against the live state; change nothing");
}

void addYesFlag(CLI::App* cmd, bool& yes) {
  cmd->add_flag("--yes,-y", yes, "Do not ask for confirmation (needed without a terminal)");
}

bool confirm(const std::string& question, bool yes) {
  if (yes) return true;
  if (!::isatty(STDIN_FILENO)) {
    std::cerr << "error: " << question
              << " needs confirmation; there is no terminal, so pass --yes\n";
    return false;
  }
  std::cerr << question << " Type yes to continue: ";
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "yes";
}

Result<std::string> readDeploymentToken(const std::string& state_dir) {
  auto token = readFile(state_dir + "/secret/token");
  if (!token) {
    return fail(notFound("no deployment in `" + state_dir +
                         "`: there is no admin token; run `tandemctl deploy up FILE` first"));
  }
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

namespace {
std::vector<Cmdlet>& registry() {
  static std::vector<Cmdlet> r;
  return r;
}
}  // namespace

void registerCmdlet(Cmdlet cmdlet) { registry().push_back(std::move(cmdlet)); }
const std::vector<Cmdlet>& cmdlets() { return registry(); }

std::string stripIdentityPrefix(const std::string& identity) {
  size_t colon = identity.find(':');
  if (colon == std::string::npos) return identity;
  // "service: pool1.example.test" (a space after the colon, as some runbooks type it).
  size_t start = identity.find_first_not_of(' ', colon + 1);
  return start == std::string::npos ? "" : identity.substr(start);
}

}  // namespace tandem::ctl
