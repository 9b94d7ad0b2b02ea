#include "lostcard/cloud/password_hash.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lostcard::cloud {

namespace {

void requireSodium() {
  // sodium_init() is thread-safe and cheap after the first call.
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium could not be initialized");
  }
}

constexpr unsigned long long kOpsLimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
constexpr std::size_t kMemLimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;

}  // namespace

std::string passwordRuleViolation(std::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    return "the password is longer than " + std::to_string(kMaxPasswordBytes) + " bytes";
  }
  // UTF-8: every byte but continuation bytes (10xxxxxx) starts a character.
  const auto chars = static_cast<std::size_t>(std::count_if(
      password.begin(), password.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  if (chars < kMinPasswordChars) {
    return "the password needs at least " + std::to_string(kMinPasswordChars) + " characters";
  }
  return "";
}

std::string hashPassword(std::string_view password) {
  requireSodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), kOpsLimit, kMemLimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("out of memory while hashing a password");
  }
  return out;
}

bool verifyPassword(const std::string& stored_hash, std::string_view password) {
  requireSodium();
  if (stored_hash.rfind("$argon2id$", 0) != 0) {
    return false;
  }
  return crypto_pwhash_str_verify(stored_hash.c_str(), password.data(), password.size()) == 0;
}

bool passwordNeedsRehash(const std::string& stored_hash) {
  requireSodium();
  return crypto_pwhash_str_needs_rehash(stored_hash.c_str(), kOpsLimit, kMemLimit) != 0;
}

}  // namespace lostcard::cloud
