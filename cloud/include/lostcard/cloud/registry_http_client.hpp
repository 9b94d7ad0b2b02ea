#pragma once
// A small blocking HTTP(S) POST client (Boost.Beast) for webhook delivery. One request per call
// on its own connection, with an overall deadline; https verifies the server's certificate and
// host name against the system trust store (plus an optional extra CA file). Unless allowed, it
// connects only to public addresses: a webhook URL is chosen by whoever signs up, and must not
// reach the cloud's own network (loopback, private, link-local...). The check is made on the
// addresses the name resolves to, at each request, so a name re-pointed later is caught too.
//
//   auto url = parseHttpUrl("https://app.example/holders/h1");
//   HttpResponse r = httpPost(*url, {{"Content-Type", "application/json"}}, body, 5000ms);
//   if (r.status == 0) { transport error: r.error } else if (r.status / 100 == 2) { ... }
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lostcard::cloud {

struct HttpUrl {
  bool tls = false;
  std::string host;
  std::string port;    // "80"/"443" when the URL has none
  std::string target;  // path and query, "/" when the URL has none
};

// http:// and https:// URLs (an IPv6 host in brackets is accepted); std::nullopt otherwise.
std::optional<HttpUrl> parseHttpUrl(std::string_view url);

struct HttpResponse {
  int status = 0;     // 0: no response (see error)
  std::string body;   // truncated to kMaxResponseBodyBytes
  std::string error;  // transport failure, "" when a response arrived
};

inline constexpr std::size_t kMaxResponseBodyBytes = 64 * 1024;

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Loopback, unspecified, private (RFC 1918, fc00::/7), shared (100.64/10), link-local,
// site-local, benchmarking (198.18/15), multicast and reserved addresses, IPv4 ones also as
// IPv4-mapped IPv6: none of them a public webhook's.
bool isInternalAddress(const boost::asio::ip::address& address);

// `allow_internal`: connect to internal addresses too (tests, a demo, a private deployment);
// otherwise a URL whose host resolves only to internal ones fails without connecting.
HttpResponse httpPost(const HttpUrl& url, const HttpHeaders& headers, const std::string& body,
                      std::chrono::milliseconds timeout, const std::string& extra_ca_file = "",
                      bool allow_internal = false);

}  // namespace lostcard::cloud
