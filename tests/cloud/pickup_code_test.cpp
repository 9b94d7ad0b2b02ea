#include "lostcard/cloud/pickup_code.hpp"

#include <catch2/catch.hpp>
#include <regex>
#include <set>
#include <string>

using namespace lostcard::cloud;

namespace {
// Tests hash with few rounds; the strength of PBKDF2 is not what they check.
constexpr int kFastIterations = 1000;
}  // namespace

TEST_CASE("a pickup code is ten digits shown as ddd-ddd-dddd") {
  const std::regex format("[0-9]{3}-[0-9]{3}-[0-9]{4}");
  for (int i = 0; i < 50; ++i) {
    CHECK(std::regex_match(generatePickupCode(), format));
  }
}

TEST_CASE("codes come from a random source: 200 draws are all different") {
  // With 10^10 codes, a repeat among 200 draws has probability ~2e-6; a generator that is not
  // fed by RAND_bytes (a constant or a clock-seeded sequence restarted per call) repeats at once.
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    seen.insert(generatePickupCode());
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("random bytes map to codes uniformly, rejecting the biased top of the range") {
  CHECK(pickupCodeFromRandom({0, 0, 0, 0, 0, 0, 0, 0}) == "000-000-0000");
  CHECK(pickupCodeFromRandom({0, 0, 0, 0, 0, 0, 0, 42}) == "000-000-0042");
  // 0x00000002540BE3FF = 9999999999
  CHECK(pickupCodeFromRandom({0, 0, 0, 0x02, 0x54, 0x0b, 0xe3, 0xff}) == "999-999-9999");
  // 10^10 wraps to 0
  CHECK(pickupCodeFromRandom({0, 0, 0, 0x02, 0x54, 0x0b, 0xe4, 0x00}) == "000-000-0000");
  CHECK(pickupCodeFromRandom({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}).empty());
}

TEST_CASE("typed codes are normalized") {
  CHECK(normalizePickupCode("123-456-7890") == "1234567890");
  CHECK(normalizePickupCode("123 456 7890") == "1234567890");
  CHECK(normalizePickupCode("1234567890") == "1234567890");
  CHECK(normalizePickupCode("123456789").empty());
  CHECK(normalizePickupCode("12345678901").empty());
  CHECK(normalizePickupCode("123-456-789a").empty());
}

TEST_CASE("verifyCode accepts the right code and refuses wrong ones") {
  const std::string code = "123-456-7890";
  const std::string stored = hashCode(code, kFastIterations);
  CHECK(verifyCode("123-456-7890", stored));
  CHECK(verifyCode("1234567890", stored));
  CHECK_FALSE(verifyCode("123-456-7891", stored));
  CHECK_FALSE(verifyCode("023-456-7890", stored));
  CHECK_FALSE(verifyCode("", stored));
  CHECK_FALSE(verifyCode("123456789", stored));
}

TEST_CASE("the stored form is salted PBKDF2 and never the code") {
  const std::string code = "555-123-4567";
  const std::string a = hashCode(code);
  const std::string b = hashCode(code);
  CHECK(a != b);  // a fresh salt each time
  CHECK(a.find("5551234567") == std::string::npos);
  CHECK(a.find("555-123-4567") == std::string::npos);
  CHECK(a.rfind("pbkdf2-sha256$" + std::to_string(kPickupCodeIterations) + "$", 0) == 0);
  CHECK(kPickupCodeIterations >= 100000);
  // salt: 16 bytes (32 hex), hash: 32 bytes (64 hex)
  CHECK(std::regex_match(a, std::regex(R"(pbkdf2-sha256\$[0-9]+\$[0-9a-f]{32}\$[0-9a-f]{64})")));
  CHECK(verifyCode(code, a));
  CHECK(verifyCode(code, b));
}

TEST_CASE("malformed stored hashes never verify") {
  const std::string good = hashCode("123-456-7890", kFastIterations);
  CHECK_FALSE(verifyCode("123-456-7890", ""));
  CHECK_FALSE(verifyCode("123-456-7890", "plain$1234567890"));
  CHECK_FALSE(verifyCode("123-456-7890", "pbkdf2-sha256$0$00$00"));
  CHECK_FALSE(verifyCode("123-456-7890", "pbkdf2-sha256$1000$zz$00"));
  CHECK_FALSE(verifyCode("123-456-7890", good.substr(0, good.size() - 2)));
  CHECK_THROWS_AS(hashCode("not a code"), std::invalid_argument);
}

TEST_CASE("constant-time comparison compares whole strings") {
  CHECK(constantTimeEquals("abc", "abc"));
  CHECK(constantTimeEquals("", ""));
  CHECK_FALSE(constantTimeEquals("abc", "abd"));
  CHECK_FALSE(constantTimeEquals("abc", "xbc"));
  CHECK_FALSE(constantTimeEquals("abc", "abcd"));
  CHECK_FALSE(constantTimeEquals(std::string("a\0c", 3), std::string("a\0d", 3)));
}
