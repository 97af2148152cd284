// FrontendConfig: everything a front-end server needs to know, derived from the topology, the
// state directory and its own FQDN. A plain value, read-only after construction.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "topology/topology.h"

namespace tandem::frontend {

struct PeerServer {
  std::string fqdn;
  std::string address;
  std::string pool;
};

struct ChatPoolInfo {
  std::string fqdn;           // the MUC service domain, e.g. chat.example.test
  std::string frontend_pool;  // the front-end pool its chat servers attach to
  std::vector<std::string> active_servers;
};

struct FrontendConfig {
  std::string domain;       // example.test
  std::string server_fqdn;  // this server
  std::string address;      // this server's IP address (all listeners bind it)
  std::string pool_fqdn;    // this server's pool
  std::string site;         // this server's site
  std::string topology_file;  // bootstrap topology for the CMS replica
  std::string state_dir;
  std::string token;  // deployment secret: PostgreSQL password, link and component secret
  std::string cert_file, key_file, ca_file;  // pki/<fqdn>.pem/.key, pki/ca.pem
  std::vector<std::string> store_addresses;  // this pool's store and its mirror

  std::map<std::string, std::vector<PeerServer>> frontend_pools;       // pool -> servers
  std::map<std::string, std::vector<std::string>> pool_store_addresses;  // pool -> store+mirror
  std::map<std::string, ChatPoolInfo> chat_pools;
  std::map<std::string, std::string> directory;  // topology users: name -> home pool
  std::vector<topology::User> demo_users;        // created at first start (idempotent)

  // Ports (docs/architecture.md). Tests never change them: every server has its own address.
  int c2s_port = 5222, c2s_tls_port = 5223, link_port = 5270, component_port = 5347,
      admin_port = 8443;

  // A client of a user owned by another server is redirected (see-other-host) or proxied to
  // the owner as the CMS setting frontend.<pool>.redirect says (internal/proxy.h; default auto).
  // Largest stanza accepted from a client, bytes (hostile-input bound; RFC 6120 §13.12).
  size_t max_stanza_bytes = 256 * 1024;
  // Per-connection token bucket: sustained bytes per second and burst, bytes. Exceeding it ends
  // the stream with policy-violation. Generous for people, stops floods.
  double rate_bytes_per_s = 256 * 1024;
  double rate_burst_bytes = 1024 * 1024;
  // The same for stanzas, counted apart from bytes: a flood of tiny stanzas (a 20-byte
  // <presence/> 5,000 times a second is under 100 KiB/s) costs us per stanza, not per byte.
  // 500 a second sustained is far beyond any person; the burst covers a client's sign-in
  // (roster, presence, carbons, disco, queued messages after a resumption).
  double rate_stanzas_per_s = 500;
  double rate_burst_stanzas = 2000;
  // Output queued for one client connection beyond the write in flight, bytes. A client that
  // stops reading while stanzas pile up past it has its connection closed (counted in
  // tandem_frontend_policy_violations_total; under stream management the session detaches as for
  // a lost connection, unacknowledged stanzas kept). Default 4 MiB: minutes of busy rooms for
  // a slow link, while a stalled client cannot make us hold much.
  size_t max_output_bytes = 4 * 1024 * 1024;
  // How long a stream-management session waits for resumption after its connection is lost.
  std::chrono::seconds sm_resume_timeout{60};
  // Failed sign-ins from one client address within auth_failure_window before that address
  // is refused outright (policy-violation) until the window passes. Per address, not per
  // user, so a guesser cannot lock the real user out; a large NAT shares the budget.
  int max_auth_failures_per_address = 30;
  std::chrono::seconds auth_failure_window{60};
  // How long a client has to authenticate and bind before we close the connection.
  std::chrono::seconds auth_timeout{30};
  // Worker threads for PostgreSQL calls.
  int db_threads = 2;
};

// Builds the configuration of `server_fqdn` (a front-end server of `topology`) and reads the
// token from `<state_dir>/secret/token`. Fails with NotFound when the server is not a front-end
// server of the topology or the token is missing (hint: `tandemctl deploy up`).
Result<FrontendConfig> configFromTopology(const topology::Topology& topology,
                                          const std::string& server_fqdn,
                                          const std::string& state_dir);

// The store addresses (store + mirror) of a front-end pool in `topology`; empty when unknown.
std::vector<std::string> poolStoreAddresses(const topology::Topology& topology,
                                            const std::string& pool_fqdn);

}  // namespace tandem::frontend
