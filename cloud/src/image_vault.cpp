#include "lostcard/cloud/image_vault.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>

namespace lostcard::cloud {

namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherCtx newContext() {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  if (!ctx) {
    throw std::runtime_error("image vault: EVP_CIPHER_CTX_new failed");
  }
  return ctx;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// "<id><separator><hex>" -> a key; `where` names the line in errors (never its content).
ImageVault::Key parseKey(std::string_view text, char separator, const std::string& where) {
  text = trim(text);
  const auto split = separator == ' ' ? text.find_first_of(" \t") : text.find(separator);
  if (split == std::string_view::npos) {
    throw std::invalid_argument("image key " + where + ": expected \"<key id>" +
                                std::string(1, separator) + "<hex key>\"");
  }
  const std::string hex(trim(text.substr(split + 1)));
  if (hex.size() != 2 * ImageVault::kKeyBytes) {
    throw std::invalid_argument("image key " + where + ": the key must be " +
                                std::to_string(2 * ImageVault::kKeyBytes) + " hex digits");
  }
  long length = 0;
  unsigned char* raw = OPENSSL_hexstr2buf(hex.c_str(), &length);
  if (raw == nullptr) {
    throw std::invalid_argument("image key " + where + ": the key is not valid hex");
  }
  ImageVault::Key key{std::string(trim(text.substr(0, split))),
                      std::string(reinterpret_cast<const char*>(raw), length)};
  OPENSSL_clear_free(raw, length);
  return key;
}

}  // namespace

ImageVault::ImageVault(std::vector<Key> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) {
    throw std::invalid_argument("image key: no key");
  }
  std::set<std::string> ids;
  for (const auto& key : keys_) {
    if (key.id.empty()) {
      throw std::invalid_argument("image key: empty key id");
    }
    for (char c : key.id) {
      if (std::isspace(static_cast<unsigned char>(c)) || c == ':') {
        throw std::invalid_argument("image key: a key id must not contain spaces or ':'");
      }
    }
    if (key.bytes.size() != kKeyBytes) {
      throw std::invalid_argument("image key '" + key.id + "': an AES-256 key is " +
                                  std::to_string(kKeyBytes) + " bytes");
    }
    if (!ids.insert(key.id).second) {
      throw std::invalid_argument("image key '" + key.id + "' appears twice");
    }
  }
}

ImageVault::~ImageVault() {
  for (auto& key : keys_) {
    OPENSSL_cleanse(key.bytes.data(), key.bytes.size());
  }
}

ImageVault ImageVault::fromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("image key: cannot read " + path);
  }
  std::vector<Key> keys;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    const auto content = trim(line);
    if (!content.empty() && content.front() != '#') {
      keys.push_back(parseKey(content, ' ', path + ":" + std::to_string(line_no)));
    }
    OPENSSL_cleanse(line.data(), line.size());
  }
  if (keys.empty()) {
    throw std::invalid_argument("image key: no key line in " + path);
  }
  return ImageVault(std::move(keys));
}

bool ImageVault::envIsSet() { return envIsSet(kEnvVar); }

bool ImageVault::envIsSet(const char* env_var) { return std::getenv(env_var) != nullptr; }

ImageVault ImageVault::fromEnv() { return fromEnv(kEnvVar); }

ImageVault ImageVault::fromEnv(const char* env_var) {
  const char* value = std::getenv(env_var);
  if (value == nullptr || *value == '\0') {
    throw std::invalid_argument(std::string("image key: $") + env_var + " is not set");
  }
  return ImageVault({parseKey(value, ':', std::string("$") + env_var)});
}

ImageVault ImageVault::derived(std::string_view secret, std::string key_id,
                               std::string_view purpose) {
  if (secret.size() < kKeyBytes) {
    throw std::invalid_argument("derived key '" + key_id + "': the secret is shorter than " +
                                std::to_string(kKeyBytes) + " bytes");
  }
  using Kdf = std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)>;
  using KdfCtx = std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)>;
  Kdf kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr), &EVP_KDF_free);
  KdfCtx ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr, &EVP_KDF_CTX_free);
  if (!ctx) {
    throw std::runtime_error("derived key: HKDF is not available");
  }
  std::string digest = "SHA256";
  std::string ikm(secret);
  std::string info(purpose);
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm.data(), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string key(kKeyBytes, '\0');
  const bool ok = EVP_KDF_derive(ctx.get(), bytes(key), key.size(), params) == 1;
  OPENSSL_cleanse(ikm.data(), ikm.size());
  if (!ok) {
    throw std::runtime_error("derived key: HKDF-SHA256 failed");
  }
  ImageVault vault({{std::move(key_id), key}});
  OPENSSL_cleanse(key.data(), key.size());
  return vault;
}

SealedImage ImageVault::seal(std::string_view plain, std::string_view associated_data) const {
  const Key& key = keys_.front();
  SealedImage sealed;
  sealed.key_id = key.id;
  sealed.nonce.resize(kNonceBytes);
  if (RAND_bytes(bytes(sealed.nonce), static_cast<int>(kNonceBytes)) != 1) {
    throw std::runtime_error("image vault: no random nonce (RAND_bytes failed)");
  }
  auto ctx = newContext();
  sealed.ciphertext.resize(plain.size() + kTagBytes);
  int length = 0;
  int total = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key.bytes), bytes(sealed.nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), bytes(sealed.ciphertext), &length, bytes(plain),
                        static_cast<int>(plain.size())) != 1) {
    throw std::runtime_error("image vault: AES-256-GCM encryption failed");
  }
  total = length;
  if (EVP_EncryptFinal_ex(ctx.get(), bytes(sealed.ciphertext) + total, &length) != 1) {
    throw std::runtime_error("image vault: AES-256-GCM encryption failed");
  }
  total += length;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          bytes(sealed.ciphertext) + total) != 1) {
    throw std::runtime_error("image vault: no GCM tag");
  }
  sealed.ciphertext.resize(static_cast<std::size_t>(total) + kTagBytes);
  return sealed;
}

std::optional<std::string> ImageVault::open(const SealedImage& sealed,
                                            std::string_view associated_data,
                                            std::string* why) const {
  const auto fail = [why](std::string reason) -> std::optional<std::string> {
    if (why != nullptr) {
      *why = std::move(reason);
    }
    return std::nullopt;
  };
  const Key* key = nullptr;
  for (const auto& k : keys_) {
    if (k.id == sealed.key_id) {
      key = &k;
    }
  }
  if (key == nullptr) {
    return fail("sealed with key '" + sealed.key_id + "', which this vault does not hold");
  }
  if (sealed.nonce.size() != kNonceBytes) {
    return fail("the nonce is not " + std::to_string(kNonceBytes) + " bytes");
  }
  if (sealed.ciphertext.size() < kTagBytes) {
    return fail("the ciphertext is shorter than its tag");
  }
  const std::size_t body = sealed.ciphertext.size() - kTagBytes;
  std::string tag = sealed.ciphertext.substr(body);
  std::string plain(body, '\0');
  auto ctx = newContext();
  int length = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key->bytes), bytes(sealed.nonce)) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), bytes(plain), &length, bytes(sealed.ciphertext),
                        static_cast<int>(body)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          bytes(tag)) != 1) {
    return fail("AES-256-GCM decryption failed");
  }
  int final_length = 0;
  // The tag is checked here: plain is released only when it matches.
  if (EVP_DecryptFinal_ex(ctx.get(), bytes(plain) + length, &final_length) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return fail("the sealed data does not authenticate (changed, another key, or sealed "
                "for another row)");
  }
  plain.resize(static_cast<std::size_t>(length + final_length));
  return plain;
}

}  // namespace lostcard::cloud
