// Deployment CA and leaf certificates with OpenSSL 3 (EC P-256 keys, SHA-256 signatures).
#include "rpc/certs.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/files.h"

namespace tandem::rpc {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

constexpr long kValiditySeconds = 10L * 365 * 24 * 3600;

KeyPtr newKey() { return KeyPtr(EVP_EC_gen("P-256")); }

Status setCommon(X509* cert, const std::string& cn) {
  X509_set_version(cert, 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), kValiditySeconds);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Tandem"), -1, -1, 0);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0))
    return invalidArgument("certificate common name `" + cn + "` is not acceptable");
  return Status::ok();
}

Status addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return invalidArgument("certificate extension `" + value + "` is malformed");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return Status::ok();
}

Result<std::string> pemOf(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return fail(internalError("cannot encode certificate"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> pemOf(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
    return fail(internalError("cannot encode private key"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Status writeBoth(X509* cert, EVP_PKEY* key, const std::string& cert_path,
                 const std::string& key_path) {
  auto key_pem = pemOf(key);
  if (!key_pem) return key_pem.error();
  auto cert_pem = pemOf(cert);
  if (!cert_pem) return cert_pem.error();
  TANDEM_RETURN_IF_ERROR(writeFileAtomic(key_path, *key_pem, 0600));
  return writeFileAtomic(cert_path, *cert_pem, 0644);
}

Result<CertPtr> loadCert(const std::string& path) {
  auto pem = readFile(path);
  if (!pem) return fail(pem.error().withContext("loading the deployment CA"));
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return fail(invalidArgument("`" + path + "` is not a PEM certificate"));
  return cert;
}

Result<KeyPtr> loadKey(const std::string& path) {
  auto pem = readFile(path);
  if (!pem) return fail(pem.error().withContext("loading the deployment CA key"));
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return fail(invalidArgument("`" + path + "` is not a PEM private key"));
  return key;
}

bool isIpAddress(const std::string& ip) {
  unsigned char buf[16];
  return inet_pton(AF_INET, ip.c_str(), buf) == 1 || inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

}  // namespace

Status generateCa(const std::string& cert_path, const std::string& key_path,
                  const std::string& common_name) {
  KeyPtr key = newKey();
  CertPtr cert(X509_new());
  if (!key || !cert) return internalError("OpenSSL cannot create a CA key");
  TANDEM_RETURN_IF_ERROR(setCommon(cert.get(), common_name));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  TANDEM_RETURN_IF_ERROR(addExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  TANDEM_RETURN_IF_ERROR(
      addExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  TANDEM_RETURN_IF_ERROR(addExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256()))
    return internalError("OpenSSL cannot sign the CA certificate");
  return writeBoth(cert.get(), key.get(), cert_path, key_path);
}

Status issueCertificate(const std::string& ca_cert, const std::string& ca_key,
                        const std::string& common_name, const std::vector<std::string>& dns_names,
                        const std::vector<std::string>& ip_addresses, const std::string& cert_path,
                        const std::string& key_path) {
  auto ca = loadCert(ca_cert);
  if (!ca) return ca.error();
  auto cakey = loadKey(ca_key);
  if (!cakey) return cakey.error();
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : ip_addresses) {
    if (!isIpAddress(ip))
      return invalidArgument("`" + ip + "` is not an IP address (certificate for `" +
                             common_name + "`)");
    san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  }
  KeyPtr key = newKey();
  CertPtr cert(X509_new());
  if (!key || !cert) return internalError("OpenSSL cannot create a key");
  TANDEM_RETURN_IF_ERROR(setCommon(cert.get(), common_name));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca->get()));
  X509_set_pubkey(cert.get(), key.get());
  X509* issuer = ca->get();
  TANDEM_RETURN_IF_ERROR(addExt(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  TANDEM_RETURN_IF_ERROR(
      addExt(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  TANDEM_RETURN_IF_ERROR(addExt(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  TANDEM_RETURN_IF_ERROR(addExt(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  TANDEM_RETURN_IF_ERROR(addExt(cert.get(), issuer, NID_authority_key_identifier, "keyid"));
  if (!san.empty())
    TANDEM_RETURN_IF_ERROR(addExt(cert.get(), issuer, NID_subject_alt_name, san));
  if (!X509_sign(cert.get(), cakey->get(), EVP_sha256()))
    return internalError("OpenSSL cannot sign the certificate for `" + common_name + "`");
  return writeBoth(cert.get(), key.get(), cert_path, key_path);
}

std::string generateToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no CSPRNG: nothing safe to do
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace tandem::rpc
