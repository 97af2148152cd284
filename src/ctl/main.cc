// tandemctl: the operator's shell. Parses `tandemctl <noun> <verb> [--flags]`, or a reference
// system cmdlet name (case-insensitive) which it translates into the same command first.
#include <cstdlib>
#include <iostream>

#include "common/log.h"
#include "ctl/cmdlet_alias.h"
#include "ctl/commands.h"

int main(int argc, char** argv) {
  using namespace tandem::ctl;
  tandem::initLogging({.name = "tandemctl", .file = "", .level = "warn"});

  std::vector<std::string> args(argv + 1, argv + argc);
  Context ctx;
  const char* env_dir = std::getenv("TANDEM_STATE_DIR");
  ctx.state_dir = env_dir ? env_dir : "/var/lib/tandem";

  CLI::App app{"tandemctl: manage a Tandem deployment (topology, stores, CMS, pools, chat, runbooks)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  app.add_option("--state-dir", ctx.state_dir, "Deployment state directory")
      ->envname("TANDEM_STATE_DIR")
      ->capture_default_str();
  app.fallthrough();
  registerTopologyCommands(app, ctx);
  registerDeployCommands(app, ctx);
  registerDbCommands(app, ctx);
  registerCmsCommands(app, ctx);
  registerUserCommands(app, ctx);
  registerChatCommands(app, ctx);
  registerRunbookCommands(app, ctx);
  registerBackupCommands(app, ctx);
  registerHelpCommands(app, ctx);

  // A cmdlet name as the first word: translate it into our own command line.
  // Global options (--state-dir X, --state-dir=X) may come before it.
  size_t first = 0;
  while (first < args.size() && args[first].rfind("--", 0) == 0) {
    first += (args[first] == "--state-dir") ? 2 : 1;
  }
  if (first < args.size() && looksLikeCmdlet(args[first])) {
    std::vector<std::string> cmdlet(args.begin() + static_cast<long>(first), args.end());
    auto translated = translateCmdlet(cmdlet);
    if (!translated) return reportError(translated.error(), "tandemctl help cmdlets");
    args.resize(first);
    args.insert(args.end(), translated->begin(), translated->end());
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return ctx.exit_code;
}
