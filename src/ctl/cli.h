// The tandemctl framework: shared flags, output (tables or --json), errors and exit codes.
//
// Each noun registers its verbs from its own file (topology_cmds.cc, db_cmds.cc, ...) through a
// `register<Noun>Commands(CLI::App&, Context&)` function listed in commands.h. A verb's callback
// stores its outcome in Context::exit_code via finish(). Single-threaded.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tandem::ctl {

// Exit codes (STYLE.md §9).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,
  kExitUsage = 2,
  kExitRefused = 3,   // a precondition refused; nothing changed
  kExitPartWay = 4,   // stopped part-way; resumable
};

struct Context {
  std::string state_dir;  // --state-dir; default $TANDEM_STATE_DIR or /var/lib/tandem
  bool json = false;      // --json: one JSON document on stdout, no colour, no progress
  int exit_code = kExitOk;
};

// An aligned text table for people.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void addRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string render() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Prints "error: <sentence>" (and "hint: <hint>" when given) to stderr and returns the exit
// code that matches the status (FailedPrecondition -> 3, InvalidArgument/NotFound -> 2 when
// `usage` is true, otherwise 1).
int reportError(const Status& status, const std::string& hint = "");

// The exit code for a status (0 when OK).
int exitCodeFor(const Status& status);

// Prints a JSON document (pretty, 2 spaces) to stdout.
void printJson(const nlohmann::json& doc);

// Standard flags, so they read the same on every command.
void addJsonFlag(CLI::App* cmd, Context& ctx);
void addWhatIfFlag(CLI::App* cmd, bool& what_if);
void addYesFlag(CLI::App* cmd, bool& yes);

// True when stdin is a terminal and the operator typed "yes" to `question`, or `yes` is set.
// Without a terminal and without --yes, prints why and returns false.
bool confirm(const std::string& question, bool yes);

// The state directory's deployment secret (admin token), or NotFound with a hint to deploy up.
Result<std::string> readDeploymentToken(const std::string& state_dir);

// Cmdlet aliases (DESIGN.md §7): "Set-CsPersistentChatState" -> a translator that turns the
// cmdlet's parameters into tandemctl arguments. Registered by each noun's file.
struct CmdletParam {
  std::string name;    // e.g. "Identity" (matched case-insensitively, leading '-')
  bool is_switch = false;
};
using CmdletTranslator = std::function<Result<std::vector<std::string>>(
    const std::map<std::string, std::string>& params)>;
struct Cmdlet {
  std::string name;         // e.g. "Set-CsPersistentChatState"
  std::string maps_to;      // e.g. "chat state set" (for `help cmdlets`)
  std::vector<CmdletParam> params;
  CmdletTranslator translate;
};
void registerCmdlet(Cmdlet cmdlet);
const std::vector<Cmdlet>& cmdlets();

// Strips a "service:" / "PersistentChatServer:" style prefix from an -Identity value.
std::string stripIdentityPrefix(const std::string& identity);

}  // namespace tandem::ctl
