#pragma once
// One-time pickup codes: what a holder types on the box's keypad to open the slot that holds
// their card.
//
// A code is 10 decimal digits (about 33 bits of entropy) drawn from OpenSSL's RAND_bytes and
// shown in groups, "123-456-7890". Only a salted slow hash of it is stored
// (PBKDF2-HMAC-SHA256, 16-byte random salt, kPickupCodeIterations rounds), encoded as
// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>"; verification compares in constant time.
//
//   std::string code = generatePickupCode();          // goes into the notice only
//   std::string stored = hashCode(code);              // goes into pickup_codes.code_hash
//   bool ok = verifyCode("1234567890", stored);       // typed digits, with or without dashes
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lostcard::cloud {

inline constexpr int kPickupCodeDigits = 10;
inline constexpr int kPickupCodeIterations = 120000;
inline constexpr std::size_t kPickupSaltBytes = 16;

// A fresh random code "ddd-ddd-dddd". Throws std::runtime_error if OpenSSL has no entropy.
std::string generatePickupCode();

// The code that 8 random bytes map to, uniformly over the 10^10 codes when the bytes are
// uniform, or "" when this draw must be rejected (the top of the 64-bit range that would bias
// the result). generatePickupCode() draws until a code comes out; exposed for tests.
std::string pickupCodeFromRandom(const std::array<unsigned char, 8>& random);

// The digits of a typed code ("123-456-7890", "123 456 7890" or "1234567890"); "" when it is
// not exactly kPickupCodeDigits digits with optional dashes/spaces.
std::string normalizePickupCode(std::string_view typed);

// The stored form of a code (salted PBKDF2). `iterations` is lowered only by tests.
std::string hashCode(std::string_view code, int iterations = kPickupCodeIterations);

// True when `typed` is the code `stored` was made from. A malformed `stored` is false.
bool verifyCode(std::string_view typed, std::string_view stored);

// Constant-time equality of two byte strings of the same length (CRYPTO_memcmp); different
// lengths are unequal.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace lostcard::cloud
