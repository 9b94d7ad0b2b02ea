#pragma once
// Encryption of the photos the cloud keeps of difficult cards (AES-256-GCM, OpenSSL EVP). Only
// difficult cards keep photos, redacted first (image_redaction.hpp), and only sealed by this
// vault; every other photo lives in memory for recognition and is gone after it.
//
//   auto vault = ImageVault::fromFile("/etc/lostcard/image.key");   // "<key id> <64 hex>" lines
//   SealedImage sealed = vault.seal(jpeg, deposit_id);              // random nonce per image
//   std::string why;
//   auto jpeg_again = vault.open(sealed, deposit_id, &why);         // nullopt: tampered, wrong
//                                                                   // deposit, unknown key
//
// The deposit id is the associated data: a sealed image moved to another deposit's row does not
// open. Each sealed image names its key, so keys rotate: the key file's first key seals, every
// key in it opens what it sealed. Retiring a key (removing its line) after the retention period
// makes whatever it sealed unreadable for good, copies in backups and freed disk pages included.
// The notice outbox seals its notices with a vault of its own key(s) (delivery.hpp).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lostcard::cloud {

struct SealedImage {
  std::string key_id;      // the id of the key that sealed it
  std::string nonce;       // ImageVault::kNonceBytes random bytes, fresh for each image
  std::string ciphertext;  // the encrypted bytes followed by the ImageVault::kTagBytes GCM tag
};

class ImageVault {
 public:
  static constexpr std::size_t kKeyBytes = 32;  // AES-256
  static constexpr std::size_t kNonceBytes = 12;
  static constexpr std::size_t kTagBytes = 16;
  static constexpr const char* kEnvVar = "LOSTCARD_IMAGE_KEY";

  struct Key {
    std::string id;     // no whitespace or ':'
    std::string bytes;  // kKeyBytes raw bytes
  };

  // keys.front() seals; each key opens what it sealed. Throws std::invalid_argument for no key,
  // a key of the wrong size, an empty or malformed id, or the same id twice.
  explicit ImageVault(std::vector<Key> keys);
  ~ImageVault();
  ImageVault(const ImageVault&) = default;
  ImageVault& operator=(const ImageVault&) = default;

  // Key file: one key per line, "<key id> <64 hex digits>", blank lines and '#' comments
  // allowed; the first key seals. Throws std::runtime_error (unreadable file) or
  // std::invalid_argument (malformed line: the message names the line, never the key).
  static ImageVault fromFile(const std::string& path);
  // $LOSTCARD_IMAGE_KEY = "<key id>:<64 hex digits>". Throws std::invalid_argument if malformed.
  static ImageVault fromEnv();
  // Whether $LOSTCARD_IMAGE_KEY is set (to anything).
  static bool envIsSet();
  // The same for another variable (the notice key's $LOSTCARD_NOTICE_KEY, delivery.hpp).
  static ImageVault fromEnv(const char* env_var);
  static bool envIsSet(const char* env_var);
  // One key, `key_id`, derived from `secret` (at least 32 secret bytes) with HKDF-SHA256 for
  // `purpose` (a label: one purpose, one key). For keys kept in no file of their own.
  static ImageVault derived(std::string_view secret, std::string key_id, std::string_view purpose);

  // Encrypts `plain` under the sealing key with a fresh random nonce; `associated_data` (the
  // deposit id) is authenticated, not stored. Throws std::runtime_error if OpenSSL fails.
  SealedImage seal(std::string_view plain, std::string_view associated_data) const;

  // The plain bytes, or nullopt with the reason in *why: an unknown key id, a malformed nonce or
  // ciphertext, or a failed authentication (changed bytes, another associated data).
  std::optional<std::string> open(const SealedImage& sealed, std::string_view associated_data,
                                  std::string* why = nullptr) const;

  // The id of the key that seals.
  const std::string& keyId() const { return keys_.front().id; }

 private:
  std::vector<Key> keys_;
};

}  // namespace lostcard::cloud
