// SCRAM (RFC 5802/7677) and PLAIN server mechanics on OpenSSL.
#include "xmpp/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <map>

namespace tandem::xmpp {

namespace {

const EVP_MD* md(ScramHash h) { return h == ScramHash::kSha1 ? EVP_sha1() : EVP_sha256(); }

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md(h), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string digest(ScramHash h, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md(h), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string saltedPassword(ScramHash h, std::string_view password, std::string_view salt,
                           int iterations) {
  std::string out(static_cast<size_t>(EVP_MD_get_size(md(h))), '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, md(h), static_cast<int>(out.size()),
                    reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string xorBytes(std::string a, std::string_view b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) a[i] = static_cast<char>(a[i] ^ b[i]);
  return a;
}

// Splits "a=1,b=2" into attributes; values may contain '='.
std::map<char, std::string> attributes(std::string_view msg) {
  std::map<char, std::string> out;
  while (!msg.empty()) {
    size_t comma = msg.find(',');
    std::string_view part = msg.substr(0, comma);
    if (part.size() >= 2 && part[1] == '=') out[part[0]] = std::string(part.substr(2));
    if (comma == std::string_view::npos) break;
    msg.remove_prefix(comma + 1);
  }
  return out;
}

bool equalConstTime(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

tl::unexpected<Status> malformed(std::string why) {
  return fail(StatusCode::kInvalidArgument, "the SCRAM message is malformed: " + why);
}

}  // namespace

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

std::string base64Encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return fail(StatusCode::kInvalidArgument, "base64 text has a bad length");
  if (text.empty()) return std::string();
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return fail(StatusCode::kInvalidArgument, "base64 text is invalid");
  size_t len = static_cast<size_t>(n);
  if (text.size() >= 1 && text[text.size() - 1] == '=') len--;
  if (text.size() >= 2 && text[text.size() - 2] == '=') len--;
  out.resize(len);
  return out;
}

std::string sha1Hex(std::string_view data) {
  unsigned char out[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : out) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

ScramCredentials deriveScramCredentials(ScramHash hash, std::string_view password,
                                        std::string salt, int iterations) {
  if (salt.empty()) salt = randomBytes(16);
  std::string salted = saltedPassword(hash, password, salt, iterations);
  ScramCredentials c;
  c.salt = std::move(salt);
  c.iterations = iterations;
  c.stored_key = digest(hash, hmac(hash, salted, "Client Key"));
  c.server_key = hmac(hash, salted, "Server Key");
  return c;
}

bool verifyPassword(ScramHash hash, const ScramCredentials& creds, std::string_view password) {
  if (creds.stored_key.empty()) return false;
  ScramCredentials again = deriveScramCredentials(hash, password, creds.salt, creds.iterations);
  return equalConstTime(again.stored_key, creds.stored_key);
}

Result<std::string> ScramServer::start(std::string_view client_first) {
  // gs2-header: ("n" | "y" | "p=...") "," [authzid] ","
  if (client_first.empty()) return malformed("it is empty");
  if (client_first[0] == 'p') {
    return fail(StatusCode::kInvalidArgument, "channel binding was requested but not offered");
  }
  if (client_first[0] != 'n' && client_first[0] != 'y') return malformed("bad GS2 header");
  size_t c1 = client_first.find(',');
  size_t c2 = c1 == std::string_view::npos ? c1 : client_first.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return malformed("bad GS2 header");
  gs2_header_ = std::string(client_first.substr(0, c2 + 1));
  client_first_bare_ = std::string(client_first.substr(c2 + 1));
  auto attrs = attributes(client_first_bare_);
  if (!attrs.count('n') || !attrs.count('r') || attrs['r'].empty()) {
    return malformed("user name or nonce missing");
  }
  client_nonce_ = attrs['r'];
  std::string user;
  const std::string& raw = attrs['n'];
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw.compare(i, 3, "=2C") == 0) {
      user += ',';
      i += 2;
    } else if (raw.compare(i, 3, "=3D") == 0) {
      user += '=';
      i += 2;
    } else if (raw[i] == '=') {
      return malformed("bad escape in user name");
    } else {
      user += raw[i];
    }
  }
  return user;
}

std::string ScramServer::serverFirst(const ScramCredentials& creds) {
  creds_ = creds;
  if (creds_.stored_key.empty()) {
    // Unknown user: a fake but stable-looking challenge; the proof can never match.
    creds_.salt = randomBytes(16);
    creds_.iterations = 4096;
    creds_.stored_key = randomBytes(32);
    creds_.server_key = randomBytes(32);
  }
  nonce_ = client_nonce_ + base64Encode(randomBytes(18));
  server_first_ = "r=" + nonce_ + ",s=" + base64Encode(creds_.salt) +
                  ",i=" + std::to_string(creds_.iterations);
  return server_first_;
}

Result<std::string> ScramServer::finish(std::string_view client_final) {
  size_t p = client_final.rfind(",p=");
  if (p == std::string_view::npos) return malformed("proof missing");
  std::string without_proof(client_final.substr(0, p));
  auto attrs = attributes(client_final);
  auto bad = fail(StatusCode::kInvalidArgument, "the SCRAM proof is wrong");
  if (attrs['r'] != nonce_) return bad;
  if (attrs['c'] != base64Encode(gs2_header_)) return bad;
  auto proof = base64Decode(attrs['p']);
  if (!proof) return bad;
  std::string auth_message = client_first_bare_ + "," + server_first_ + "," + without_proof;
  std::string client_signature = hmac(hash_, creds_.stored_key, auth_message);
  std::string client_key = xorBytes(*proof, client_signature);
  if (proof->size() != client_signature.size() ||
      !equalConstTime(digest(hash_, client_key), creds_.stored_key)) {
    return bad;
  }
  return "v=" + base64Encode(hmac(hash_, creds_.server_key, auth_message));
}

Result<PlainCredentials> parsePlain(std::string_view message) {
  size_t a = message.find('\0');
  size_t b = a == std::string_view::npos ? a : message.find('\0', a + 1);
  if (b == std::string_view::npos) {
    return fail(StatusCode::kInvalidArgument, "the PLAIN message is malformed");
  }
  PlainCredentials c{std::string(message.substr(0, a)), std::string(message.substr(a + 1, b - a - 1)),
                     std::string(message.substr(b + 1))};
  if (c.authcid.empty()) return fail(StatusCode::kInvalidArgument, "the PLAIN user name is empty");
  return c;
}

}  // namespace tandem::xmpp
