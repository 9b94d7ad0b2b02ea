#include "lostcard/cloud/webhook_signature.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace lostcard::cloud;

namespace {
constexpr std::int64_t kNow = 1714564800;  // 2024-05-01T12:00:00Z
const std::string kSecret = "holder-secret-0123456789";
const std::string kBody = R"({"notice_id":"n1","card_last4":"4242"})";
}  // namespace

TEST_CASE("a signature has the documented form and verifies") {
  const auto header = signWebhook(kSecret, kBody, kNow);
  CHECK(header.rfind("t=1714564800,v1=", 0) == 0);
  CHECK(header.size() == std::string("t=1714564800,v1=").size() + 64);
  const auto check = verifyWebhook(kSecret, kBody, header, kNow);
  CHECK(check.ok);
  CHECK(check.reason.empty());
}

TEST_CASE("the signature is HMAC-SHA256 over \"<t>.<body>\"") {
  // printf %s '1714564800.{}' | openssl dgst -sha256 -hmac holder-secret-0123456789
  CHECK(signWebhook(kSecret, "{}", kNow) ==
        "t=1714564800,v1=fcc616b2fef33fea7e795b9dda649db973f9ee1de280f0818151be21dd55aab0");
}

TEST_CASE("a tampered body fails") {
  const auto header = signWebhook(kSecret, kBody, kNow);
  std::string tampered = kBody;
  tampered[tampered.size() - 3] = '3';
  const auto check = verifyWebhook(kSecret, tampered, header, kNow);
  CHECK_FALSE(check.ok);
  CHECK(check.reason == "signature mismatch");
}

TEST_CASE("a wrong secret fails") {
  const auto header = signWebhook("another-secret-0123456789", kBody, kNow);
  CHECK_FALSE(verifyWebhook(kSecret, kBody, header, kNow).ok);
}

TEST_CASE("a changed timestamp fails: it is signed too") {
  auto header = signWebhook(kSecret, kBody, kNow);
  header.replace(2, 10, "1714564801");
  CHECK_FALSE(verifyWebhook(kSecret, kBody, header, kNow).ok);
}

TEST_CASE("old or future signatures are refused outside the tolerance") {
  const auto header = signWebhook(kSecret, kBody, kNow);
  CHECK(verifyWebhook(kSecret, kBody, header, kNow + 300).ok);
  CHECK(verifyWebhook(kSecret, kBody, header, kNow - 300).ok);
  const auto late = verifyWebhook(kSecret, kBody, header, kNow + 301);
  CHECK_FALSE(late.ok);
  CHECK(late.reason.find("tolerance") != std::string::npos);
  CHECK_FALSE(verifyWebhook(kSecret, kBody, header, kNow - 301).ok);
  CHECK(verifyWebhook(kSecret, kBody, header, kNow + 3600, 7200).ok);
}

TEST_CASE("missing or malformed headers say why") {
  CHECK(verifyWebhook(kSecret, kBody, "", kNow).reason.find("missing") != std::string::npos);
  CHECK_FALSE(verifyWebhook(kSecret, kBody, "garbage", kNow).ok);
  CHECK_FALSE(verifyWebhook(kSecret, kBody, "t=abc,v1=00", kNow).ok);
  CHECK(verifyWebhook(kSecret, kBody, "t=1714564800", kNow).reason.find("no v1") !=
        std::string::npos);
  CHECK_FALSE(verifyWebhook(kSecret, kBody, "t=1714564800,v1=nothex", kNow).ok);
}

TEST_CASE("any of several v1 signatures may match (secret rotation), other schemes ignored") {
  const auto good = signWebhook(kSecret, kBody, kNow);
  const auto old = signWebhook("old-secret-0123456789", kBody, kNow);
  const std::string both = old + ",v0=ignored," + good.substr(good.find("v1="));
  CHECK(verifyWebhook(kSecret, kBody, both, kNow).ok);
  CHECK(verifyWebhook(kSecret, kBody, " t=1714564800 , " + good.substr(good.find("v1=")), kNow).ok);
}
