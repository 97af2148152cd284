// tandemctl runbook commands: `chat failover` and `chat failback` (docs/runbooks/persistent-chat.md),
// and runRunbookCommand(), the one way a runbook runs from the command line.
#include "ctl/runbook_cmds.h"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>

#include "ctl/commands.h"
#include "hadr/chat_runbooks.h"

namespace tandem::ctl {

int runRunbookCommand(Context& ctx, hadr::Env& env, const hadr::Runbook& runbook,
                      const RunbookFlags& flags, const std::string& question) {
  if (!flags.what_if && !confirm(question, flags.yes)) return kExitRefused;
  std::unique_ptr<hadr::JournalStore> journal = env.journalStore();
  hadr::Runner runner(*journal);
  hadr::RunOptions options;
  options.what_if = flags.what_if;
  options.resume = flags.resume;
  options.progress = ctx.json ? nullptr : &std::cerr;
  if (const char* die = std::getenv("TANDEM_RUNBOOK_DIE_AFTER_STEP")) {
    int n = std::atoi(die);
    options.after_step = [n](int step) {
      if (step == n) {
        std::cerr << "TANDEM_RUNBOOK_DIE_AFTER_STEP=" << n << ": killing myself after step " << n
                  << std::endl;
        std::raise(SIGKILL);
      }
    };
  }
  hadr::RunReport report = runner.run(runbook, options);
  if (ctx.json) {
    printJson(report.toJson());
  } else {
    std::cout << report.render();
  }
  if (!report.status.isOk()) {
    std::cerr << "error: " << report.status.message() << "\n";
    if (!report.next_command.empty()) std::cerr << "hint: " << report.next_command << "\n";
  }
  return report.exitCode();
}

namespace {

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct FailoverArgs {
  hadr::ChatFailoverOptions options;
  std::string active_servers;
  RunbookFlags flags;
};

int runChatFailover(Context& ctx, FailoverArgs& a) {
  auto env = hadr::Env::load(ctx.state_dir);
  if (!env) return reportError(env.error());
  a.options.active_servers = splitList(a.active_servers);
  hadr::Runbook rb = hadr::chatFailoverRunbook(**env, a.options);
  return runRunbookCommand(ctx, **env, rb, a.flags,
                           "Fail chat pool `" + a.options.pool +
                               "` over to its backup store (recover it writable, set the pool "
                               "FailedOver)?");
}

struct FailbackArgs {
  hadr::ChatFailbackOptions options;
  std::string active_servers;
  RunbookFlags flags;
};

int runChatFailback(Context& ctx, FailbackArgs& a) {
  auto env = hadr::Env::load(ctx.state_dir);
  if (!env) return reportError(env.error());
  a.options.active_servers = splitList(a.active_servers);
  hadr::Runbook rb = hadr::chatFailbackRunbook(**env, a.options);
  return runRunbookCommand(ctx, **env, rb, a.flags,
                           "Fail chat pool `" + a.options.pool +
                               "` back to its primary store (overwrite the primary with the "
                               "backup store's data, reseed the backup store)?");
}

void addRunbookFlags(CLI::App* cmd, Context& ctx, RunbookFlags& f) {
  addJsonFlag(cmd, ctx);
  addWhatIfFlag(cmd, f.what_if);
  addYesFlag(cmd, f.yes);
  cmd->add_flag("--resume", f.resume, "Continue a run that stopped or died, from its journal");
}

// The `chat` noun is created by chat_cmds.cc; create it here if that file has not yet.
CLI::App* chatNoun(CLI::App& app) {
  try {
    return app.get_subcommand("chat");
  } catch (const CLI::OptionNotFound&) {
    CLI::App* chat = app.add_subcommand("chat", "Persistent chat pools");
    chat->require_subcommand(1);
    return chat;
  }
}

}  // namespace

void registerRunbookCommands(CLI::App& app, Context& ctx) {
  CLI::App* chat = chatNoun(app);

  auto fo = std::make_shared<FailoverArgs>();
  CLI::App* failover = chat->add_subcommand(
      "failover", "Recover a chat pool on its backup store in the other site (runbook, 8 steps)");
  failover->add_option("--pool", fo->options.pool, "Chat pool FQDN")->required();
  failover->add_option("--frontend-pool", fo->options.frontend_pool,
                       "Front-end pool the chat servers attach to afterwards (a reachable one)");
  failover->add_flag("--force", fo->options.force,
                     "Fail over although the primary store still answers (it is fenced first)");
  failover->add_option("--active-servers", fo->active_servers,
                       "Comma-separated active servers (default: the new primary's site)");
  failover->add_option("--acknowledged-ids", fo->options.acknowledged_ids_file,
                       "File of acknowledged message ids: the report counts those lost");
  addRunbookFlags(failover, ctx, fo->flags);
  failover->callback([&ctx, fo] { ctx.exit_code = runChatFailover(ctx, *fo); });

  auto fb = std::make_shared<FailbackArgs>();
  CLI::App* failback = chat->add_subcommand(
      "failback", "Move a failed-over chat pool back to its rebuilt primary store (runbook, 7 steps)");
  failback->add_option("--pool", fb->options.pool, "Chat pool FQDN")->required();
  failback->add_option("--active-servers", fb->active_servers,
                       "Comma-separated active servers (default: the primary's site)");
  addRunbookFlags(failback, ctx, fb->flags);
  failback->callback([&ctx, fb] { ctx.exit_code = runChatFailback(ctx, *fb); });
}

}  // namespace tandem::ctl
