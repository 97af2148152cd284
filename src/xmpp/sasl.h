// Server side of SASL for XMPP (RFC 6120 §6): SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802, RFC 7677)
// and PLAIN (RFC 4616, only ever offered over TLS).
//
// The server stores, per user and hash, only the SCRAM credentials (salt, iteration count,
// StoredKey, ServerKey), never the password. A ScramServer handles one exchange; it is a value
// owned by one session and not thread-safe. Everything here is CPU only (no I/O).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tandem::xmpp {

enum class ScramHash { kSha1, kSha256 };

// What the server keeps for one user and one hash. Keys are raw bytes.
struct ScramCredentials {
  std::string salt;
  int iterations = 4096;
  std::string stored_key;
  std::string server_key;
};

// Derives the credentials from a password (PBKDF2 with `iterations`; ~1 ms at 4096). A random
// 16-byte salt when `salt` is empty.
ScramCredentials deriveScramCredentials(ScramHash hash, std::string_view password,
                                        std::string salt = "", int iterations = 4096);

// True when `password` matches `creds` (for PLAIN): recomputes StoredKey with PBKDF2.
bool verifyPassword(ScramHash hash, const ScramCredentials& creds, std::string_view password);

std::string base64Encode(std::string_view raw);
// Decodes standard base64; fails with InvalidArgument on bad input.
Result<std::string> base64Decode(std::string_view text);
std::string randomBytes(size_t n);
std::string sha1Hex(std::string_view data);

// One SCRAM exchange, server side:
//   start(client-first) -> username; the caller looks the user up; then
//   serverFirst(creds) -> challenge; finish(client-final) -> server-final ("v=...") or error.
class ScramServer {
 public:
  explicit ScramServer(ScramHash hash) : hash_(hash) {}

  // Parses client-first-message. Returns the authentication identity (SASLprep-lite: as sent,
  // with =2C and =3D decoded). Fails with InvalidArgument (SASL condition malformed-request) on
  // a malformed message or when channel binding "p=" is requested (we offer no -PLUS).
  Result<std::string> start(std::string_view client_first);
  // The server-first-message for these credentials (or, for an unknown user, made-up ones so
  // the exchange fails only at the proof, RFC 5802 §5.1).
  std::string serverFirst(const ScramCredentials& creds);
  // Verifies client-final-message. Returns server-final-message on success; fails with
  // InvalidArgument (condition not-authorized) on a wrong proof, nonce or binding.
  Result<std::string> finish(std::string_view client_final);

 private:
  ScramHash hash_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string client_nonce_;
  std::string nonce_;  // combined nonce
  std::string server_first_;
  ScramCredentials creds_;
};

struct PlainCredentials {
  std::string authzid, authcid, password;
};
// Parses the PLAIN message "authzid\0authcid\0password"; InvalidArgument when malformed.
Result<PlainCredentials> parsePlain(std::string_view message);

}  // namespace tandem::xmpp
