#pragma once
// The cloud's HTTPS API server for people, on Boost.Beast: a router of JSON endpoints (bodies
// are protobuf messages in protobuf's JSON mapping, proto/lostcard/v1/api.proto) and a TLS
// server that feeds it. The endpoints themselves are added elsewhere (api_v1.hpp); issue 6's
// endpoints are added the same way:
//
//   HttpRouter router(authenticate);                       // token -> session, or nullopt
//   router.add(http::verb::get, "/v1/operator/kiosks/{id}/deposits", Auth::kRequired,
//              [&](const ApiRequest& r) { return jsonReply(list(r.params.at("id"))); });
//   auto tls = makeHttpsServerContext(cert_file, key_file);  // no client certificate
//   HttpServer server(io, tls, router, work_pool.get_executor(), {.listen = endpoint});
//   server.start();   // ... io.run(); server.stop() from a signal handler
//
// What the router guarantees every handler: the path matched (else 404, or 405 with Allow),
// the caller authenticated when the route says so (else 401 with WWW-Authenticate), a JSON
// Content-Type on requests with a body (else 415). A handler's exception becomes 500 (503 when
// the database is unreachable) with nothing of its text sent. Every error is JSON
// {"error": "<code>", "reason": "<sentence>"}.
//
// What the server guarantees: TLS 1.2 or newer; at most max_body_bytes of body (413, then the
// connection closes) and max_header_bytes of headers (431); a malformed request gets 400 and
// closes only its own connection; a request must arrive within read_timeout, else its
// connection is closed unanswered (keep-alive connections wait that long for the next one); at
// most max_connections at once. Handlers run
// on the `work` executor (they may block on the database), never on the I/O thread.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lostcard/cloud/accounts.hpp"

namespace google::protobuf {
class Message;
}

namespace lostcard::cloud {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// What a handler sees of one request.
struct ApiRequest {
  http::verb method = http::verb::get;
  std::string path;                           // without the query
  std::map<std::string, std::string> params;  // the pattern's {name} segments, decoded
  std::map<std::string, std::string> query;   // ?a=b&c=d, decoded
  std::string body;
  std::string remote;  // "address:port" of the client
  std::chrono::system_clock::time_point now;
  std::optional<AuthenticatedSession> session;  // set on Auth::kRequired routes
  std::string token;                            // the bearer token, on Auth::kRequired routes

  const Principal& principal() const { return session->principal; }
};

struct ApiReply {
  unsigned status = 200;
  std::string body;  // JSON, or empty (204)
  std::vector<std::pair<std::string, std::string>> headers;
};

// 200 (or `status`) with the message in protobuf's JSON mapping (snake_case names, every field
// printed).
ApiReply jsonReply(const google::protobuf::Message& message, unsigned status = 200);
// {"error": error, "reason": reason} with a 4xx/5xx status.
ApiReply errorReply(unsigned status, std::string error, std::string reason);
// Reads the request body into `out` (JSON, unknown fields refused); the 400 reply when it is
// not valid.
std::optional<ApiReply> parseJsonBody(const ApiRequest& request, google::protobuf::Message& out);

enum class Auth { kNone, kRequired };

class HttpRouter {
 public:
  using Handler = std::function<ApiReply(const ApiRequest&)>;
  using Authenticator = std::function<std::optional<AuthenticatedSession>(
      std::string_view token, std::chrono::system_clock::time_point now)>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  explicit HttpRouter(
      Authenticator authenticate, Clock clock = [] { return std::chrono::system_clock::now(); });

  // `pattern` is a path of literal segments and {name} segments that match any one segment.
  void add(http::verb method, std::string pattern, Auth auth, Handler handler);

  // The whole path from one parsed request to its response; no I/O of its own besides what the
  // authenticator and handlers do. Safe to call from several threads once routes are added.
  HttpResponse handle(const HttpRequest& request, const std::string& remote) const;

  // Every route as (method, pattern), in the order added (docs/openapi.yaml is checked against
  // it by a test).
  std::vector<std::pair<http::verb, std::string>> routes() const;

 private:
  struct Route {
    http::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Auth auth;
    Handler handler;
  };
  ApiReply route(const HttpRequest& request, const std::string& remote, std::string& who) const;

  Authenticator authenticate_;
  Clock clock_;
  std::vector<Route> routes_;
};

struct HttpServerOptions {
  boost::asio::ip::tcp::endpoint listen;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  std::chrono::milliseconds handshake_timeout{10'000};
  // To receive one whole request; also how long an idle keep-alive connection stays open.
  std::chrono::milliseconds read_timeout{15'000};
  std::size_t max_connections = 256;
};

// A TLS server context for people's browsers and apps: the cloud's certificate, TLS 1.2+, no
// client certificate asked. Throws std::runtime_error naming a file that cannot be loaded.
boost::asio::ssl::context makeHttpsServerContext(const std::string& cert_file,
                                                 const std::string& key_file);

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, boost::asio::ssl::context& tls, const HttpRouter& router,
             boost::asio::any_io_executor work, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting; throws when the address cannot be bound.
  void start();
  // Stops accepting and closes every connection (requests in hand are dropped unanswered).
  void stop();
  boost::asio::ip::tcp::endpoint localEndpoint() const;
  std::size_t connectionCount() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace lostcard::cloud
