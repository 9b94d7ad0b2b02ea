#include "lostcard/cloud/pickup_code.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <limits>
#include <stdexcept>
#include <vector>

#include "registry_hex.hpp"

namespace lostcard::cloud {

namespace {
constexpr std::uint64_t kCodeSpace = 10'000'000'000ULL;  // 10^kPickupCodeDigits
constexpr const char* kScheme = "pbkdf2-sha256";
constexpr std::size_t kDerivedBytes = 32;

std::string pbkdf2(std::string_view digits, std::string_view salt, int iterations) {
  std::string out(kDerivedBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(digits.data(), static_cast<int>(digits.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    throw std::runtime_error("pickup code: PBKDF2 failed");
  }
  return out;
}

std::vector<std::string_view> splitDollar(std::string_view s) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto pos = s.find('$');
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) {
      return parts;
    }
    s.remove_prefix(pos + 1);
  }
}
}  // namespace

std::string pickupCodeFromRandom(const std::array<unsigned char, 8>& random) {
  std::uint64_t value = 0;
  for (unsigned char b : random) {
    value = (value << 8) | b;
  }
  // Reject the incomplete last block of the 64-bit range so every code is equally likely.
  constexpr std::uint64_t kLimit = std::numeric_limits<std::uint64_t>::max() -
                                   std::numeric_limits<std::uint64_t>::max() % kCodeSpace;
  if (value >= kLimit) {
    return "";
  }
  std::string digits(kPickupCodeDigits, '0');
  std::uint64_t code = value % kCodeSpace;
  for (int i = kPickupCodeDigits - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + code % 10);
    code /= 10;
  }
  return digits.substr(0, 3) + "-" + digits.substr(3, 3) + "-" + digits.substr(6);
}

std::string generatePickupCode() {
  while (true) {
    std::array<unsigned char, 8> random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      throw std::runtime_error("pickup code: RAND_bytes failed");
    }
    auto code = pickupCodeFromRandom(random);
    if (!code.empty()) {
      return code;
    }
  }
}

std::string normalizePickupCode(std::string_view typed) {
  std::string digits;
  for (char c : typed) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c != '-' && c != ' ') {
      return "";
    }
  }
  return digits.size() == static_cast<std::size_t>(kPickupCodeDigits) ? digits : "";
}

std::string hashCode(std::string_view code, int iterations) {
  const std::string digits = normalizePickupCode(code);
  if (digits.empty()) {
    throw std::invalid_argument("pickup code: not a pickup code");
  }
  if (iterations < 1) {
    throw std::invalid_argument("pickup code: iterations must be positive");
  }
  std::string salt(kPickupSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
      1) {
    throw std::runtime_error("pickup code: RAND_bytes failed");
  }
  return std::string(kScheme) + "$" + std::to_string(iterations) + "$" + detail::toHex(salt) + "$" +
         detail::toHex(pbkdf2(digits, salt, iterations));
}

bool verifyCode(std::string_view typed, std::string_view stored) {
  const auto parts = splitDollar(stored);
  if (parts.size() != 4 || parts[0] != kScheme) {
    return false;
  }
  int iterations = 0;
  const auto [end, ec] =
      std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
  if (ec != std::errc() || end != parts[1].data() + parts[1].size() || iterations < 1) {
    return false;
  }
  const auto salt = detail::fromHex(parts[2]);
  const auto expected = detail::fromHex(parts[3]);
  if (!salt || !expected || expected->size() != kDerivedBytes) {
    return false;
  }
  const std::string digits = normalizePickupCode(typed);
  if (digits.empty()) {
    return false;
  }
  return constantTimeEquals(pbkdf2(digits, *salt, iterations), *expected);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace lostcard::cloud
