#include "lostcard/cloud/registry_http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <cctype>

namespace lostcard::cloud {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool isDigits(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

template <class Stream>
asio::awaitable<HttpResponse> exchange(Stream& stream, const HttpUrl& url,
                                       const HttpHeaders& headers, const std::string& body) {
  http::request<http::string_body> request{http::verb::post, url.target, 11};
  const bool default_port = url.port == (url.tls ? "443" : "80");
  request.set(http::field::host, default_port ? url.host : url.host + ":" + url.port);
  request.set(http::field::user_agent, "lostcard-notice-delivery");
  for (const auto& [name, value] : headers) {
    request.set(name, value);
  }
  request.body() = body;
  request.prepare_payload();
  co_await http::async_write(stream, request, asio::use_awaitable);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBodyBytes);
  beast::error_code ec;
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  HttpResponse out;
  if (ec && ec != http::error::body_limit) {
    out.error = "reading the response: " + ec.message();
    co_return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = parser.get().body();
  co_return out;
}

asio::awaitable<HttpResponse> post(asio::ssl::context* tls, HttpUrl url, HttpHeaders headers,
                                   std::string body, std::chrono::milliseconds timeout,
                                   bool allow_internal) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry :
       co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable)) {
    if (allow_internal || !isInternalAddress(entry.endpoint().address())) {
      endpoints.push_back(entry.endpoint());
    }
  }
  if (endpoints.empty()) {
    co_return HttpResponse{0, "",
                           "refused: " + url.host +
                               " resolves only to internal addresses (loopback, private, "
                               "link-local...), which webhooks may not reach"};
  }
  if (tls == nullptr) {
    beast::tcp_stream stream(ex);
    stream.expires_after(timeout);
    co_await stream.async_connect(endpoints, asio::use_awaitable);
    auto response = co_await exchange(stream, url, headers, body);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return response;
  }
  beast::ssl_stream<beast::tcp_stream> stream(ex, *tls);
  beast::get_lowest_layer(stream).expires_after(timeout);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    co_return HttpResponse{0, "", "cannot set TLS server name"};
  }
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
  co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  auto response = co_await exchange(stream, url, headers, body);
  beast::error_code ignored;
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ignored));
  co_return response;
}

}  // namespace

bool isInternalAddress(const asio::ip::address& address) {
  if (address.is_v6()) {
    const auto v6 = address.to_v6();
    if (v6.is_v4_mapped()) {
      return isInternalAddress(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
    }
    const auto bytes = v6.to_bytes();
    return v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_site_local() ||
           v6.is_multicast() || (bytes[0] & 0xfe) == 0xfc;  // fc00::/7, unique local
  }
  const std::uint32_t v4 = address.to_v4().to_uint();
  const auto in = [v4](std::uint32_t net, int bits) {
    return (v4 >> (32 - bits)) == (net >> (32 - bits));
  };
  return in(0x00000000, 8) ||   // 0/8, "this network"
         in(0x0a000000, 8) ||   // 10/8
         in(0x64400000, 10) ||  // 100.64/10, carrier-grade NAT
         in(0x7f000000, 8) ||   // 127/8, loopback
         in(0xa9fe0000, 16) ||  // 169.254/16, link-local (cloud metadata services)
         in(0xac100000, 12) ||  // 172.16/12
         in(0xc0000000, 24) ||  // 192.0.0/24, protocol assignments
         in(0xc0a80000, 16) ||  // 192.168/16
         in(0xc6120000, 15) ||  // 198.18/15, benchmarking
         v4 >= 0xe0000000;      // multicast, reserved, broadcast
}

std::optional<HttpUrl> parseHttpUrl(std::string_view url) {
  HttpUrl out;
  if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else if (url.starts_with("https://")) {
    out.tls = true;
    url.remove_prefix(8);
  } else {
    return std::nullopt;
  }
  const auto slash = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? "" : url.substr(slash);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  if (authority.find('@') != std::string_view::npos) {
    return std::nullopt;  // credentials in URLs are not supported
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    out.host = std::string(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    return std::nullopt;
  }
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else if (isDigits(port) && port.size() <= 5 && std::stoi(std::string(port)) <= 65535) {
    out.port = std::string(port);
  } else {
    return std::nullopt;
  }
  out.target = rest.empty() ? "/" : std::string(rest);
  if (out.target.front() == '?') {
    out.target = "/" + out.target;
  }
  return out;
}

HttpResponse httpPost(const HttpUrl& url, const HttpHeaders& headers, const std::string& body,
                      std::chrono::milliseconds timeout, const std::string& extra_ca_file,
                      bool allow_internal) {
  std::optional<asio::ssl::context> tls;
  if (url.tls) {
    tls.emplace(asio::ssl::context::tls_client);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    tls->set_default_verify_paths();
    if (!extra_ca_file.empty()) {
      boost::system::error_code ec;
      tls->load_verify_file(extra_ca_file, ec);
      if (ec) {
        return {0, "", "cannot load CA file " + extra_ca_file + ": " + ec.message()};
      }
    }
    tls->set_verify_mode(asio::ssl::verify_peer);
  }
  std::optional<HttpResponse> result;
  // Declared last so it is destroyed first: an unfinished request dies before what it uses.
  asio::io_context ioc;
  asio::co_spawn(ioc, post(tls ? &*tls : nullptr, url, headers, body, timeout, allow_internal),
                 [&](std::exception_ptr error, HttpResponse response) {
                   if (error) {
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       response = {0, "", e.what()};
                     }
                   }
                   result = std::move(response);
                 });
  // The stream's deadline covers connect, handshake and the exchange; this one also covers
  // name resolution, which has no deadline of its own.
  ioc.run_for(timeout + std::chrono::milliseconds(500));
  if (!result) {
    return {0, "", "timed out after " + std::to_string(timeout.count()) + " ms"};
  }
  return *result;
}

}  // namespace lostcard::cloud
