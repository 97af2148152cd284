// `tandemctl help cmdlets`: the map from the reference system's cmdlets to our commands.
#include <iostream>

#include "ctl/commands.h"

namespace tandem::ctl {

void registerHelpCommands(CLI::App& app, Context& ctx) {
  auto* help = app.add_subcommand("help", "Help topics");
  help->require_subcommand(1);
  auto* list = help->add_subcommand("cmdlets", "List the reference system's cmdlet names tandemctl accepts");
  addJsonFlag(list, ctx);
  list->callback([&ctx] {
    if (ctx.json) {
      nlohmann::json doc = nlohmann::json::array();
      for (const auto& c : cmdlets()) {
        nlohmann::json params = nlohmann::json::array();
        for (const auto& p : c.params) params.push_back(p.name);
        doc.push_back({{"cmdlet", c.name}, {"command", "tandemctl " + c.maps_to}, {"parameters", params}});
      }
      printJson(doc);
      return;
    }
    Table t({"CMDLET", "TANDEMCTL COMMAND", "PARAMETERS"});
    for (const auto& c : cmdlets()) {
      std::string params;
      for (const auto& p : c.params) params += (params.empty() ? "-" : " -") + p.name;
      t.addRow({c.name, "tandemctl " + c.maps_to, params});
    }
    std::cout << t.render();
  });
}

}  // namespace tandem::ctl
