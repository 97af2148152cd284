// Deployment certificates: a CA of our own and leaf certificates it issues (OpenSSL 3).
//
// `deploy up` makes one CA per deployment (state dir pki/ca.pem + ca.key) and a leaf for every
// server FQDN and store name, whose subjectAltName lists its DNS names and IP addresses, so TLS
// clients (AdminClient, XMPP clients, libpq) can verify whichever they connect to. Keys are
// ECDSA P-256; certificates are valid from one hour ago for ten years. Every function blocks on
// disk I/O only and is thread-safe. Also: the deployment token generator.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tandem::rpc {

// Writes a self-signed CA certificate (CA:TRUE, keyCertSign) and its key (mode 0600). Overwrites
// existing files. Fails with Unavailable naming the path when it cannot write.
Status generateCa(const std::string& cert_path, const std::string& key_path,
                  const std::string& common_name);

// Issues a leaf certificate for `common_name` signed by the CA, with SANs `dns_names` and
// `ip_addresses` (serverAuth + clientAuth), and writes it and its new key (mode 0600).
// Fails with NotFound when the CA files are missing, InvalidArgument on a malformed IP address,
// Unavailable when a file cannot be written.
Status issueCertificate(const std::string& ca_cert, const std::string& ca_key,
                        const std::string& common_name, const std::vector<std::string>& dns_names,
                        const std::vector<std::string>& ip_addresses, const std::string& cert_path,
                        const std::string& key_path);

// 64 lowercase hex characters (32 bytes) from OpenSSL's CSPRNG.
std::string generateToken();

}  // namespace tandem::rpc
