// tandemctl topology commands: `validate FILE` (every problem as FILE:LINE: sentence) and
// `show FILE` (tables, or the model as JSON).
//
// `show` is split into loading (showFromFile) and printing (printTopology) so that a later
// `topology show` without FILE prints the model published in the CMS with the same code.
#include <iostream>

#include "ctl/commands.h"
#include "topology/loader.h"
#include "topology/validator.h"

namespace tandem::ctl {
namespace {

namespace topo = tandem::topology;

size_t serverCount(const topo::Topology& t) {
  size_t n = 0;
  for (const auto& p : t.pools) n += p.servers.size();
  return n;
}

std::string plural(size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out.empty() ? "-" : out;
}

// A missing or unreadable file is an error about the command, not a problem in a topology.
Status checkReadable(const topo::LoadResult& loaded) {
  if (loaded.parsed || loaded.problems.empty()) return Status::ok();
  const topo::Problem& p = loaded.problems.front();
  if (p.rule == "file-not-found") {
    return notFound("topology file `" + p.file + "` does not exist");
  }
  if (p.rule == "unreadable-file") return unavailable(p.message);
  return Status::ok();
}

// ---- validate ---------------------------------------------------------------------------------

int runValidate(const std::string& file, bool json) {
  topo::LoadResult checked = topo::checkTopologyFile(file);
  Status readable = checkReadable(checked);
  if (!readable.isOk()) return reportError(readable);
  const topo::Topology& t = checked.topology;
  if (json) {
    nlohmann::json doc{{"file", file}, {"valid", checked.problems.empty()}};
    doc["problems"] = nlohmann::json::array();
    for (const auto& p : checked.problems) {
      doc["problems"].push_back({{"line", p.line}, {"rule", p.rule}, {"message", p.message}});
    }
    printJson(doc);
    return checked.problems.empty() ? kExitOk : kExitFailed;
  }
  if (checked.problems.empty()) {
    std::cout << file << ": valid (" << plural(t.sites.size(), "site") << ", "
              << plural(t.stores.size(), "store") << ", " << plural(t.pools.size(), "pool")
              << ", " << plural(serverCount(t), "server") << ")\n";
    return kExitOk;
  }
  for (const auto& p : checked.problems) std::cout << p.toString() << "\n";
  std::cerr << "error: topology file `" << file << "` has "
            << plural(checked.problems.size(), "problem") << "\n";
  return kExitFailed;
}

// ---- show -------------------------------------------------------------------------------------

std::string serversOf(const topo::Pool& p) {
  std::vector<std::string> names;
  for (const auto& s : p.servers) names.push_back(s.fqdn);
  return joined(names);
}

// What a pool points at, by role, e.g. "store=sql1 backup_pool=pool2.example.test cms".
std::string poolLinks(const topo::Pool& p) {
  std::string out;
  auto add = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) out += (out.empty() ? "" : " ") + key + "=" + value;
  };
  switch (p.role) {
    case topo::PoolRole::kFrontend:
      add("store", p.store);
      add("backup_pool", p.backup_pool);
      add("edge_pool", p.edge_pool);
      if (p.cms) out += (out.empty() ? "" : " ") + std::string("cms");
      break;
    case topo::PoolRole::kChat:
      add("store", p.store);
      add("backup_store", p.backup_store);
      add("backup_mirror", p.backup_mirror);
      add("frontend_pool", p.frontend_pool);
      if (!p.active_servers.empty()) add("active", joined(p.active_servers));
      break;
    case topo::PoolRole::kEdge:
      add("next_hop", p.next_hop);
      if (p.federation) out += (out.empty() ? "" : " ") + std::string("federation");
      break;
  }
  return orDash(out);
}

}  // namespace

// Prints a topology for people (four tables) or as `topology::toJson` with --json. The model
// may come from a file or from the CMS (showPublishedTopology).
void printTopology(const topo::Topology& t, bool json) {
  if (json) {
    printJson(topo::toJson(t));
    return;
  }
  std::cout << "domain: " << t.domain << "\n\nSITES\n";
  Table sites({"SITE", "LOW LATENCY TO"});
  for (const auto& s : t.sites) sites.addRow({s.name, joined(s.low_latency_to)});
  std::cout << sites.render() << "\nSTORES\n";
  Table stores({"STORE", "SITE", "ADDRESS", "MIRROR", "WITNESS", "LOG SHIPPING"});
  for (const auto& s : t.stores) {
    std::string shipping = "-";
    if (s.log_shipping) {
      shipping = "to " + s.log_shipping->to + " via " + s.log_shipping->share + " every " +
                 std::to_string(s.log_shipping->interval_s) + " s";
    }
    stores.addRow({s.name, s.site, s.address, orDash(s.mirror),
                   s.witness_only ? "(witness only)" : orDash(s.witness), shipping});
  }
  std::cout << stores.render() << "\nPOOLS\n";
  Table pools({"POOL", "ROLE", "SITE", "SERVERS", "LINKS"});
  for (const auto& p : t.pools) {
    pools.addRow({p.fqdn, topo::poolRoleName(p.role), p.site, serversOf(p), poolLinks(p)});
  }
  std::cout << pools.render() << "\nSERVERS\n";
  Table servers({"SERVER", "POOL", "ROLE", "SITE", "ADDRESS", "ACTIVE"});
  for (const auto& p : t.pools) {
    for (const auto& s : p.servers) {
      std::string active = "-";
      if (p.role == topo::PoolRole::kChat) {
        bool on = std::find(p.active_servers.begin(), p.active_servers.end(), s.fqdn) !=
                  p.active_servers.end();
        active = on ? "yes" : "no";
      }
      servers.addRow({s.fqdn, p.fqdn, topo::poolRoleName(p.role), s.site, s.address, active});
    }
  }
  std::cout << servers.render();
  if (!t.users.empty() || !t.rooms.empty()) {
    std::cout << "\n" << plural(t.users.size(), "demo user") << ", "
              << plural(t.rooms.size(), "demo room") << "\n";
  }
}

namespace {

// Shows a file only when it validates: a half-valid model would mislead.
int showFromFile(const std::string& file, bool json) {
  topo::LoadResult checked = topo::checkTopologyFile(file);
  Status readable = checkReadable(checked);
  if (!readable.isOk()) return reportError(readable);
  if (!checked.problems.empty()) {
    for (const auto& p : checked.problems) std::cerr << p.toString() << "\n";
    return reportError(invalidArgument("topology file `" + file + "` has " +
                                       plural(checked.problems.size(), "problem")),
                       "tandemctl topology validate " + file);
  }
  printTopology(checked.topology, json);
  return kExitOk;
}

}  // namespace

void registerTopologyCommands(CLI::App& app, Context& ctx) {
  CLI::App* topology = app.add_subcommand("topology", "Validate and show topology files");
  topology->require_subcommand(1);

  auto validate_file = std::make_shared<std::string>();
  CLI::App* validate = topology->add_subcommand(
      "validate", "Check a topology file; print every problem as FILE:LINE: sentence");
  validate->add_option("FILE", *validate_file, "Topology file (YAML)")->required();
  addJsonFlag(validate, ctx);
  validate->callback([&ctx, validate_file] { ctx.exit_code = runValidate(*validate_file, ctx.json); });

  auto show_file = std::make_shared<std::string>();
  CLI::App* show = topology->add_subcommand(
      "show", "Print a topology's sites, stores, pools and servers (or --json): FILE's, or the published one");
  show->add_option("FILE", *show_file,
                   "Topology file (YAML); without it, the topology published in the CMS");
  addJsonFlag(show, ctx);
  show->callback([&ctx, show_file] {
    ctx.exit_code = show_file->empty() ? showPublishedTopology(ctx)
                                       : showFromFile(*show_file, ctx.json);
  });
}

}  // namespace tandem::ctl
