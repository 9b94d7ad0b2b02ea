#pragma once
// The keyed hash of a whole card number (HMAC-SHA256, OpenSSL), the only form in which a card
// number is ever stored or compared in the cloud (PCI DSS 3.5.1.1). Each hash is stored with
// the id of the key that made it, so keys can be rotated: cards are looked up by
// (key id, hash).
//
//   auto hasher = CardHasher::fromFile("/etc/lostcard/card.key");  // "<key_id> <hex key>"
//   std::string h = hasher.hash("4111111111111111");              // 32 raw bytes
//   store.findCardsByHash(hasher.keyId(), h);
//
// The key is secret: whoever holds it can test guessed numbers against the hashes.
#include <cstddef>
#include <string>
#include <string_view>

namespace lostcard::cloud {

class CardHasher {
 public:
  static constexpr std::size_t kMinKeyBytes = 32;
  static constexpr std::size_t kHashBytes = 32;
  static constexpr const char* kEnvVar = "LOSTCARD_CARD_KEY";

  // `key_bytes` are raw bytes, at least kMinKeyBytes long; a shorter key or an empty key id
  // (or one with whitespace or ':') throws std::invalid_argument.
  CardHasher(std::string key_id, std::string key_bytes);

  // Key file: the first line that is neither blank nor a '#' comment reads
  // "<key_id> <hex key of 64+ hex chars>". Throws std::runtime_error (unreadable file) or
  // std::invalid_argument (malformed line).
  static CardHasher fromFile(const std::string& path);
  // $LOSTCARD_CARD_KEY = "<key_id>:<hex key>". Throws std::invalid_argument if unset/malformed.
  static CardHasher fromEnv();
  // Parses one key line ("<key_id> <hex>") or env value ("<key_id>:<hex>").
  static CardHasher fromText(std::string_view text, char separator);

  // HMAC-SHA256 of the digits of `number` (spaces and dashes between digit groups are ignored);
  // returns kHashBytes raw bytes. Anything else than digits, spaces and dashes, or no digit at
  // all, throws std::invalid_argument.
  std::string hash(std::string_view number) const;

  const std::string& keyId() const { return key_id_; }

 private:
  std::string key_id_;
  std::string key_;
};

// Overwrites a string holding a typed card number (or its digits) when the scope ends, so the
// number does not linger in freed memory:  const Cleanse cleanse{number};
struct Cleanse {
  std::string& s;
  ~Cleanse();
};

// The digits of a card number typed or printed with spaces or dashes ("4111 1111-1111 1111");
// "" when anything else is in it or it has no digit.
std::string cardDigits(std::string_view number);

}  // namespace lostcard::cloud
