#pragma once
// Signatures on the webhook POSTs that carry retrieval notices, so a holder's app can tell a
// notice from lostcard from a forged one, and refuse an old one replayed.
//
// Header:  X-Lostcard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
//   std::string header = signWebhook(secret, body, now_s);            // sender
//   auto check = verifyWebhook(secret, body, header, now_s);           // receiver
//   if (!check.ok) reply 401 with check.reason;
//
// A receiver may see several v1= entries (during a secret rotation); any match is accepted.
#include <cstdint>
#include <string>
#include <string_view>

namespace lostcard::cloud {

inline constexpr const char* kSignatureHeader = "X-Lostcard-Signature";
inline constexpr std::int64_t kDefaultSignatureToleranceS = 300;

// The header value for `body` signed at `unix_s`.
std::string signWebhook(std::string_view secret, std::string_view body, std::int64_t unix_s);

struct SignatureCheck {
  bool ok = false;
  std::string reason;  // why not, for a 401 body or a log line; "" when ok
};

// Checks `header` (the value of X-Lostcard-Signature) against `body` and `secret`, and that its
// time is within `tolerance_s` of `now_unix_s`.
SignatureCheck verifyWebhook(std::string_view secret, std::string_view body,
                             std::string_view header, std::int64_t now_unix_s,
                             std::int64_t tolerance_s = kDefaultSignatureToleranceS);

}  // namespace lostcard::cloud
