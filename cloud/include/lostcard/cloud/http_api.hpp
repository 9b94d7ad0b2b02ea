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
// What the server guarantees: TLS 1.2 or newer; at most max_body_bytes of body (a streaming
// route has its own limit, and its body is read in pieces while its handler runs; 413, then the
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
#include <cstdint>
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
  std::string body;          // "" on streaming routes (their body is a RequestBodyStream)
  std::string content_type;  // the Content-Type header, as sent
  std::string remote;        // "address:port" of the client
  std::chrono::system_clock::time_point now;
  std::optional<AuthenticatedSession> session;  // set on Auth::kRequired routes
  std::string token;                            // the bearer token, on Auth::kRequired routes
  std::string last_event_id;  // the Last-Event-ID header (an event stream resumes after it)

  const Principal& principal() const { return session->principal; }
};

// Where an event stream's text goes (server-sent events, text/event-stream): each send() is
// written to the client as it comes, in order. Thread-safe. The stream ends when the client
// closes the connection, the server stops, or the client reads too slowly (more than
// kMaxQueuedBytes waiting: the connection is closed rather than buffered without end).
class EventSink {
 public:
  static constexpr std::size_t kMaxQueuedBytes = 256 * 1024;
  virtual ~EventSink() = default;
  // Queues `text` (whole events, "id: ..\ndata: ..\n\n", or comments ": ..\n\n"); false once
  // the stream has ended (nothing more will be sent).
  virtual bool send(std::string text) = 0;
  virtual bool isOpen() const = 0;
};

// Called once the head of an event-stream answer is sent; it keeps the sink and sends events to
// it for as long as it is open (on any thread; it must not block the caller).
using EventStarter = std::function<void(std::shared_ptr<EventSink>)>;

struct ApiReply {
  unsigned status = 200;
  std::string body;  // JSON, or empty (204)
  std::vector<std::pair<std::string, std::string>> headers;
  // Set (with status 200 and no body): the answer is an event stream (Content-Type
  // text/event-stream, chunked, never kept alive for another request) whose body the starter
  // sends; the handler returns at once, holding no thread or database connection for the stream.
  EventStarter events;
};

// The body of a streamed request (HttpRouter::addStreaming), read piece by piece as its handler
// asks: the server holds one piece (up to 64 KiB) of it at a time, never the whole body.
//
//   for (auto piece = body.next(); piece.ok && !piece.data.empty(); piece = body.next()) { ... }
class RequestBodyStream {
 public:
  struct Piece {
    bool ok = true;
    std::string_view data;  // empty (with ok) at the end of the body; valid until next()
    unsigned status = 0;    // when !ok: 413 over the route's limit, 400 malformed, 408 too slow
    std::string reason;
  };
  virtual ~RequestBodyStream() = default;
  // The next piece of the body. After a failure every later call fails the same way.
  virtual Piece next() = 0;
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

  // A route whose body is not read before its handler runs: the handler reads it from the
  // RequestBodyStream (up to max_body_bytes, instead of the server's max_body_bytes) and may
  // answer before reading all of it (the connection is then closed after the answer). The router
  // checks the path and the caller as for add(), not the Content-Type: the handler does. The
  // handler runs on a work thread and blocks in next() while the body arrives (each piece within
  // the server's read_timeout); "Expect: 100-continue" is answered at its first next(), so a
  // client that waits for it sends nothing to a request refused before (401, 403, 415...).
  using StreamHandler = std::function<ApiReply(const ApiRequest&, RequestBodyStream&)>;
  void addStreaming(http::verb method, std::string pattern, Auth auth, std::uint64_t max_body_bytes,
                    StreamHandler handler);
  // The body limit of the streaming route that `method` and `target` name; nullopt for every
  // other request (whose body the server reads whole).
  std::optional<std::uint64_t> streamingLimit(http::verb method, std::string_view target) const;
  // handle() for a request whose body is still to be read from `body`.
  HttpResponse handleStreaming(const http::request_header<>& header, const std::string& remote,
                               RequestBodyStream& body) const;

  // The whole path from one parsed request to its response; no I/O of its own besides what the
  // authenticator and handlers do. Safe to call from several threads once routes are added.
  HttpResponse handle(const HttpRequest& request, const std::string& remote) const;
  // The same; when the answer is an event stream, its starter goes to `events` (the response is
  // then the head only: the server sends it, then runs the starter). Without `events` an event
  // stream's answer is an empty one.
  HttpResponse handle(const HttpRequest& request, const std::string& remote,
                      EventStarter* events) const;

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
    StreamHandler stream_handler;  // set on streaming routes (handler is then empty)
    std::uint64_t max_body_bytes = 0;
  };
  // The route of `method` on `raw_path` with its {name} parameters; nullptr with the methods
  // allowed on that path (or none) when there is no such route.
  const Route* match(http::verb method, std::string_view raw_path,
                     std::map<std::string, std::string>& params, std::string& allowed) const;
  // `body` for a request read whole, `stream` for one whose body is still to be read.
  ApiReply route(const http::request_header<>& request, const std::string* body,
                 RequestBodyStream* stream, const std::string& remote, std::string& who) const;
  HttpResponse respond(const http::request_header<>& request, const std::string* body,
                       RequestBodyStream* stream, const std::string& remote,
                       EventStarter* events = nullptr) const;

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
