#include "lostcard/cloud/card_proof.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace lostcard::cloud {

namespace {

// 31 digits are never a card number (8 to 19): this HMAC of the card key is looked up nowhere,
// and differs from the notice key's input (32 digits, delivery.cpp).
constexpr std::string_view kCardKeyDerivationInput = "0000000000000000000000000000001";
constexpr std::string_view kPurpose = "lostcard issuer card proof v1\n";

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) ==
      nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string issuerProofKey(const CardHasher& hasher, std::string_view issuer_id) {
  std::string secret = hasher.hash(kCardKeyDerivationInput);
  std::string key = hmacSha256(secret, std::string(kPurpose) + std::string(issuer_id));
  OPENSSL_cleanse(secret.data(), secret.size());
  return key;
}

std::string cardProof(std::string_view issuer_proof_key, std::string_view holder_id,
                      std::string_view digits) {
  const std::string mac =
      hmacSha256(issuer_proof_key, std::string(holder_id) + "\n" + std::string(digits));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : mac) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

bool checkCardProof(const CardHasher& hasher, std::string_view issuer_id,
                    std::string_view holder_id, std::string_view digits, std::string_view proof) {
  std::string key = issuerProofKey(hasher, issuer_id);
  const std::string want = cardProof(key, holder_id, digits);
  OPENSSL_cleanse(key.data(), key.size());
  std::string got(proof);
  std::transform(got.begin(), got.end(), got.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
}

}  // namespace lostcard::cloud
