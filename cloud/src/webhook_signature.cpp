#include "lostcard/cloud/webhook_signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <stdexcept>
#include <vector>

#include "lostcard/cloud/pickup_code.hpp"
#include "registry_hex.hpp"

namespace lostcard::cloud {

namespace {
std::string mac(std::string_view secret, std::string_view timestamp, std::string_view body) {
  std::string message;
  message.reserve(timestamp.size() + 1 + body.size());
  message.append(timestamp).append(".").append(body);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
           &out_len) == nullptr) {
    throw std::runtime_error("webhook signature: HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}
}  // namespace

std::string signWebhook(std::string_view secret, std::string_view body, std::int64_t unix_s) {
  const std::string t = std::to_string(unix_s);
  return "t=" + t + ",v1=" + detail::toHex(mac(secret, t, body));
}

SignatureCheck verifyWebhook(std::string_view secret, std::string_view body,
                             std::string_view header, std::int64_t now_unix_s,
                             std::int64_t tolerance_s) {
  header = trim(header);
  if (header.empty()) {
    return {false, std::string("missing ") + kSignatureHeader};
  }
  std::string_view timestamp;
  std::vector<std::string_view> signatures;
  while (!header.empty()) {
    const auto comma = header.find(',');
    const auto item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      return {false, "malformed signature header"};
    }
    const auto key = item.substr(0, eq);
    const auto value = item.substr(eq + 1);
    if (key == "t") {
      timestamp = value;
    } else if (key == "v1") {
      signatures.push_back(value);
    }  // other schemes are for other versions: ignored
  }
  std::int64_t t = 0;
  const auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), t);
  if (timestamp.empty() || ec != std::errc() || end != timestamp.data() + timestamp.size()) {
    return {false, "signature header has no valid timestamp"};
  }
  if (signatures.empty()) {
    return {false, "signature header has no v1 signature"};
  }
  if (t < now_unix_s - tolerance_s || t > now_unix_s + tolerance_s) {
    return {false, "signature timestamp outside the tolerance"};
  }
  const std::string expected = mac(secret, timestamp, body);
  for (auto hex : signatures) {
    const auto given = detail::fromHex(hex);
    if (given && constantTimeEquals(*given, expected)) {
      return {true, ""};
    }
  }
  return {false, "signature mismatch"};
}

}  // namespace lostcard::cloud
