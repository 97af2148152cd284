// The state directory's secret, certificates, folders and topology copy (see state_dir.h).
#include "deploy/state_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "common/files.h"
#include "common/process.h"
#include "rpc/certs.h"

namespace tandem::deploy {

namespace fs = std::filesystem;

namespace {

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

Status ensureCertificate(const std::string& pki, const std::string& name,
                         std::vector<std::string> dns, std::vector<std::string> ips) {
  std::string cert = pki + "/" + name + ".pem", key = pki + "/" + name + ".key";
  if (exists(cert) && exists(key)) return Status::ok();
  Status st = rpc::issueCertificate(pki + "/ca.pem", pki + "/ca.key", name, dns, ips, cert, key);
  if (!st.isOk()) return st.withContext("issuing the certificate of `" + name + "`");
  return Status::ok();
}

// Gives `postgres` a folder so PostgreSQL (running as that user) can write its log into it.
void handToPostgres(const std::string& dir) {
  auto ids = lookupUser("postgres");
  if (!ids) return;  // no PostgreSQL on this machine: the agent will say so
  if (::chown(dir.c_str(), ids->uid, ids->gid) != 0) {
    // Not fatal: the agent reports the permission problem with the path it could not write.
  }
}

}  // namespace

Status prepareStateDir(const topology::Topology& topology, const std::string& state_dir) {
  TANDEM_RETURN_IF_ERROR(makeDirs(state_dir, 0755));
  ::chmod(state_dir.c_str(), 0755);
  TANDEM_RETURN_IF_ERROR(makeDirs(state_dir + "/secret", 0700));
  // pki/ holds the public CA certificate clients must read; each key file is itself 0600.
  for (const char* sub : {"pki", "run", "stores", "servers"}) {
    TANDEM_RETURN_IF_ERROR(makeDirs(state_dir + "/" + sub, 0755));
  }
  std::string token_file = state_dir + "/secret/token";
  if (!exists(token_file)) {
    TANDEM_RETURN_IF_ERROR(writeFileAtomic(token_file, rpc::generateToken() + "\n", 0600));
  }
  std::string pki = state_dir + "/pki";
  if (!exists(pki + "/ca.pem") || !exists(pki + "/ca.key")) {
    Status st = rpc::generateCa(pki + "/ca.pem", pki + "/ca.key",
                                "Tandem deployment CA (" + topology.domain + ")");
    if (!st.isOk()) return st.withContext("creating the deployment CA");
    ::chmod((pki + "/ca.pem").c_str(), 0644);
  }
  for (const auto& store : topology.stores) {
    TANDEM_RETURN_IF_ERROR(ensureCertificate(pki, store.name, {store.name}, {store.address}));
    std::string dir = state_dir + "/stores/" + store.name;
    TANDEM_RETURN_IF_ERROR(makeDirs(dir, 0755));
    handToPostgres(dir);
  }
  for (const auto& pool : topology.pools) {
    for (const auto& server : pool.servers) {
      std::vector<std::string> dns{server.fqdn};
      if (pool.role == topology::PoolRole::kFrontend) {
        dns.push_back(topology.domain);
        dns.push_back(pool.fqdn);
      }
      TANDEM_RETURN_IF_ERROR(ensureCertificate(pki, server.fqdn, dns, {server.address}));
      TANDEM_RETURN_IF_ERROR(makeDirs(state_dir + "/servers/" + server.fqdn, 0755));
    }
  }
  return Status::ok();
}

Status installTopology(const std::string& topology_file, const std::string& state_dir) {
  auto text = readFile(topology_file);
  if (!text) return text.error();
  std::error_code ec;
  if (fs::exists(state_dir + "/topology.yaml", ec) &&
      fs::equivalent(topology_file, state_dir + "/topology.yaml", ec)) {
    return Status::ok();
  }
  return writeFileAtomic(state_dir + "/topology.yaml", *text, 0644);
}

bool hasDeployment(const std::string& state_dir) {
  std::error_code ec;
  if (fs::exists(state_dir + "/secret/token", ec)) return true;
  if (!fs::is_directory(state_dir + "/run", ec)) return false;
  for (const auto& e : fs::directory_iterator(state_dir + "/run", ec)) {
    if (e.path().extension() == ".json") return true;
  }
  return false;
}

Status purgeStateDir(const std::string& state_dir) {
  std::error_code ec;
  if (!fs::is_directory(state_dir, ec)) return Status::ok();
  for (const auto& e : fs::directory_iterator(state_dir, ec)) {
    std::error_code rm;
    fs::remove_all(e.path(), rm);
    if (rm) {
      return unavailable("cannot remove `" + e.path().string() + "`: " + rm.message());
    }
  }
  if (ec) return unavailable("cannot list `" + state_dir + "`: " + ec.message());
  return Status::ok();
}

}  // namespace tandem::deploy
