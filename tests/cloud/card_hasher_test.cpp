#include "lostcard/cloud/card_hasher.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "lostcard/test/child_process.hpp"

using lostcard::cloud::CardHasher;

namespace {
const std::string kKeyA(32, 'a');
const std::string kKeyB(32, 'b');
const std::string kHexKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

std::string writeFile(const std::string& name, const std::string& content) {
  const std::string path = lostcard::test::makeTestDir("card_hasher_test") + "/" + name;
  std::ofstream(path) << content;
  return path;
}
}  // namespace

TEST_CASE("the same number under the same key hashes the same") {
  CardHasher a("k1", kKeyA);
  CardHasher again("k1", kKeyA);
  const auto h = a.hash("4111111111111111");
  CHECK(h.size() == CardHasher::kHashBytes);
  CHECK(again.hash("4111111111111111") == h);
  // Separators a person types between digit groups do not change the hash.
  CHECK(a.hash("4111 1111-1111 1111") == h);
}

TEST_CASE("a different key or a different number gives a different hash") {
  CardHasher a("k1", kKeyA);
  CardHasher b("k2", kKeyB);
  CHECK(a.hash("4111111111111111") != b.hash("4111111111111111"));
  CHECK(a.hash("4111111111111111") != a.hash("4111111111111112"));
  // The hash is not the number, nor contains its digits in clear.
  CHECK(a.hash("4111111111111111").find("1111") == std::string::npos);
}

TEST_CASE("known HMAC-SHA256 answer (checked with the openssl command line)") {
  // HMAC-SHA256(key = 32 x 'a', "1234567890123456"), computed independently with
  // `printf %s 1234567890123456 | openssl dgst -sha256 -hmac aaaa...a`.
  CardHasher a("k1", kKeyA);
  const auto h = a.hash("1234567890123456");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : h) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  CHECK(hex == "fec6bd2bec75700ef6e1378140702d400148424926db23d5c8b8238ebfeafc60");
}

TEST_CASE("keys shorter than 32 bytes and bad key ids are refused") {
  CHECK_THROWS_AS(CardHasher("k1", std::string(31, 'x')), std::invalid_argument);
  CHECK_THROWS_AS(CardHasher("", kKeyA), std::invalid_argument);
  CHECK_THROWS_AS(CardHasher("k 1", kKeyA), std::invalid_argument);
  CHECK_THROWS_AS(CardHasher("k:1", kKeyA), std::invalid_argument);
}

TEST_CASE("hash refuses what is not a card number") {
  CardHasher a("k1", kKeyA);
  CHECK_THROWS_AS(a.hash(""), std::invalid_argument);
  CHECK_THROWS_AS(a.hash("4111x111"), std::invalid_argument);
  CHECK_THROWS_AS(a.hash(" - "), std::invalid_argument);
}

TEST_CASE("key file: comments and blank lines, then '<key_id> <hex>'") {
  const auto path = writeFile("good.key", "# card key\n\n  2024-01 " + kHexKey + "  \n");
  const auto hasher = CardHasher::fromFile(path);
  CHECK(hasher.keyId() == "2024-01");
  CardHasher direct("2024-01", std::string("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc"
                                           "\xdd\xee\xff\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99"
                                           "\xaa\xbb\xcc\xdd\xee\xff",
                                           32));
  CHECK(hasher.hash("4111111111111111") == direct.hash("4111111111111111"));
}

TEST_CASE("malformed key files are refused") {
  CHECK_THROWS_AS(CardHasher::fromFile("/nonexistent/card.key"), std::runtime_error);
  CHECK_THROWS_AS(CardHasher::fromFile(writeFile("empty.key", "# nothing\n")),
                  std::invalid_argument);
  CHECK_THROWS_AS(CardHasher::fromFile(writeFile("short.key", "k1 0011223344\n")),
                  std::invalid_argument);
  CHECK_THROWS_AS(CardHasher::fromFile(writeFile("nothex.key", "k1 " + std::string(64, 'z'))),
                  std::invalid_argument);
  CHECK_THROWS_AS(CardHasher::fromFile(writeFile("noid.key", kHexKey)), std::invalid_argument);
}

TEST_CASE("key from the environment: LOSTCARD_CARD_KEY=<key_id>:<hex>") {
  ::setenv(CardHasher::kEnvVar, ("env-key:" + kHexKey).c_str(), 1);
  const auto hasher = CardHasher::fromEnv();
  CHECK(hasher.keyId() == "env-key");
  CHECK(hasher.hash("4111111111111111") ==
        CardHasher::fromText("env-key " + kHexKey, ' ').hash("4111111111111111"));
  ::setenv(CardHasher::kEnvVar, kHexKey.c_str(), 1);
  CHECK_THROWS_AS(CardHasher::fromEnv(), std::invalid_argument);
  ::unsetenv(CardHasher::kEnvVar);
  CHECK_THROWS_AS(CardHasher::fromEnv(), std::invalid_argument);
}
