#pragma once
// Passwords of people (holders, operators, issuer staff) as Argon2id hashes, with libsodium's
// crypto_pwhash_str: a random salt and the cost parameters are inside the string
// ("$argon2id$v=19$m=65536,t=2,p=1$..."), so hashes made with other costs still verify.
// Interactive limits: about 64 MiB of memory and a few tens of milliseconds per hash.
//
//   const std::string stored = hashPassword(password);        // keep this, never the password
//   if (verifyPassword(stored, typed)) { ... }                  // constant time in the password
#include <cstddef>
#include <string>
#include <string_view>

namespace lostcard::cloud {

// The rules a password chosen by a person (sign-up) must follow: at least kMinPasswordChars
// characters (UTF-8 code points), at most kMaxPasswordBytes bytes (Argon2id reads every byte).
inline constexpr std::size_t kMinPasswordChars = 12;
inline constexpr std::size_t kMaxPasswordBytes = 1024;
// Why `password` breaks the rules, in a sentence; "" when it follows them.
std::string passwordRuleViolation(std::string_view password);

// Throws std::runtime_error when libsodium cannot start or runs out of memory.
std::string hashPassword(std::string_view password);

// False for a wrong password and for a hash that is not an Argon2id string.
bool verifyPassword(const std::string& stored_hash, std::string_view password);

// Whether a stored hash was made with weaker limits than hashPassword uses today (rehash it on
// the next successful login).
bool passwordNeedsRehash(const std::string& stored_hash);

}  // namespace lostcard::cloud
