#include "lostcard/cloud/card_hasher.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "registry_hex.hpp"

namespace lostcard::cloud {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}
}  // namespace

std::string cardDigits(std::string_view number) {
  std::string digits;
  digits.reserve(number.size());
  for (char c : number) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c != ' ' && c != '-') {
      return "";
    }
  }
  return digits;
}

CardHasher::CardHasher(std::string key_id, std::string key_bytes)
    : key_id_(std::move(key_id)), key_(std::move(key_bytes)) {
  if (key_id_.empty()) {
    throw std::invalid_argument("card key: empty key id");
  }
  for (char c : key_id_) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ':') {
      throw std::invalid_argument("card key: the key id must not contain spaces or ':'");
    }
  }
  if (key_.size() < kMinKeyBytes) {
    throw std::invalid_argument("card key: the key must be at least " +
                                std::to_string(kMinKeyBytes) + " bytes");
  }
}

CardHasher CardHasher::fromText(std::string_view text, char separator) {
  text = trim(text);
  const auto split = separator == ' ' ? text.find_first_of(" \t") : text.find(separator);
  if (split == std::string_view::npos) {
    throw std::invalid_argument("card key: expected \"<key_id>" + std::string(1, separator) +
                                "<hex key>\"");
  }
  const std::string_view id = trim(text.substr(0, split));
  const std::string_view hex = trim(text.substr(split + 1));
  if (hex.size() < 2 * kMinKeyBytes) {
    throw std::invalid_argument("card key: the hex key must have at least " +
                                std::to_string(2 * kMinKeyBytes) + " hex digits");
  }
  auto key = detail::fromHex(hex);
  if (!key) {
    throw std::invalid_argument("card key: the key is not valid hex");
  }
  return CardHasher(std::string(id), std::move(*key));
}

CardHasher CardHasher::fromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("card key: cannot read " + path);
  }
  std::string line;
  while (std::getline(in, line)) {
    const auto content = trim(line);
    if (content.empty() || content.front() == '#') {
      continue;
    }
    return fromText(content, ' ');
  }
  throw std::invalid_argument("card key: no key line in " + path);
}

CardHasher CardHasher::fromEnv() {
  const char* value = std::getenv(kEnvVar);
  if (value == nullptr || *value == '\0') {
    throw std::invalid_argument(std::string("card key: $") + kEnvVar + " is not set");
  }
  return fromText(value, ':');
}

std::string CardHasher::hash(std::string_view number) const {
  const std::string digits = cardDigits(number);
  if (digits.empty()) {
    throw std::invalid_argument("card hash: not a card number");
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(digits.data()), digits.size(), mac,
           &mac_len) == nullptr ||
      mac_len != kHashBytes) {
    throw std::runtime_error("card hash: HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

Cleanse::~Cleanse() { OPENSSL_cleanse(s.data(), s.size()); }

}  // namespace lostcard::cloud
