#include "lostcard/cloud/http_api.hpp"

#include <google/protobuf/util/json_util.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <atomic>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <pqxx/except>
#include <set>

#include "lostcard/v1/api.pb.h"
#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// After a 413, how much of the refused body is read and dropped, and for how long, so that the
// client is not reset before it reads the answer (closing a socket with unread data sends RST).
constexpr std::size_t kMaxDrainBytes = 1024 * 1024;
constexpr std::chrono::milliseconds kDrainTimeout{2'000};
constexpr std::chrono::milliseconds kShutdownTimeout{5'000};
// A streamed body (HttpRouter::addStreaming) is handed to its handler in pieces of this size.
constexpr std::size_t kBodyPieceBytes = 64 * 1024;

std::shared_ptr<spdlog::logger> apiLog() { return wire::componentLogger("cloud.http"); }

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points beyond
// U+10FFFF): what PostgreSQL accepts as text, so a parameter that is not gets a 400 here rather
// than an error from the database.
bool isValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    int extra = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b0 < 0x80) {
      ++i;
      continue;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      extra = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      extra = 2;
      lo = b0 == 0xE0 ? 0xA0 : 0x80;
      hi = b0 == 0xED ? 0x9F : 0xBF;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      extra = 3;
      lo = b0 == 0xF0 ? 0x90 : 0x80;
      hi = b0 == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (i + extra >= text.size()) {
      return false;
    }
    for (int k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      const unsigned char min = k == 1 ? lo : 0x80;
      const unsigned char max = k == 1 ? hi : 0xBF;
      if (b < min || b > max) {
        return false;
      }
    }
    i += 1 + extra;
  }
  return true;
}

// Percent-decoding; nullopt for a broken escape, a decoded NUL or bytes that are not UTF-8.
// `plus_is_space` for queries.
std::optional<std::string> percentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return std::nullopt;
      }
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') {
      return std::nullopt;
    }
    out += c;
  }
  if (!isValidUtf8(out)) {
    return std::nullopt;
  }
  return out;
}

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string_view::npos ? path.size() : slash;
    segments.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return segments;
}

std::optional<std::map<std::string, std::string>> parseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    auto key = percentDecode(pair.substr(0, eq), true);
    auto value = percentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) {
      return std::nullopt;
    }
    out[*key] = *value;
  }
  return out;
}

bool isJsonContentType(std::string_view value) {
  const auto semicolon = value.find(';');
  auto type = value.substr(0, semicolon);
  while (!type.empty() && type.back() == ' ') {
    type.remove_suffix(1);
  }
  std::string lower(type);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "application/json";
}

// "Bearer <token>" -> token; "" when absent or another scheme.
std::string bearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) {
    return {};
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) {
      return {};
    }
  }
  auto token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && token.back() == ' ') {
    token.remove_suffix(1);
  }
  return std::string(token);
}

const char* errorCodeFor(unsigned status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 431:
      return "request_header_fields_too_large";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

// What message::keep_alive() says, for a header alone (Boost 1.74's header has no such
// member): HTTP/1.1 keeps the connection unless "Connection: close", HTTP/1.0 only with
// "Connection: keep-alive".
bool keepAlive(const http::request_header<>& request) {
  http::token_list connection{request[http::field::connection]};  // exists() is not const
  return request.version() >= 11 ? !connection.exists("close") : connection.exists("keep-alive");
}

HttpResponse toResponse(ApiReply reply, unsigned version, bool keep_alive) {
  HttpResponse response{static_cast<http::status>(reply.status), version};
  response.set(http::field::server, "lostcard");
  response.set(http::field::cache_control, "no-store");
  if (!reply.body.empty()) {
    response.set(http::field::content_type, "application/json");
  }
  for (auto& [name, value] : reply.headers) {
    response.set(name, value);
  }
  response.body() = std::move(reply.body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

}  // namespace

ApiReply jsonReply(const google::protobuf::Message& message, unsigned status) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  ApiReply reply;
  reply.status = status;
  if (!google::protobuf::util::MessageToJsonString(message, &reply.body, options).ok()) {
    throw std::runtime_error("cannot print a " + message.GetTypeName() + " as JSON");
  }
  return reply;
}

ApiReply errorReply(unsigned status, std::string error, std::string reason) {
  v1::ErrorBody body;
  body.set_error(std::move(error));
  body.set_reason(std::move(reason));
  return jsonReply(body, status);
}

std::optional<ApiReply> parseJsonBody(const ApiRequest& request, google::protobuf::Message& out) {
  if (request.body.empty()) {
    return errorReply(400, "bad_request", "a JSON body is required");
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(request.body, &out, options);
  if (!status.ok()) {
    // protobuf's first line says what is wrong; the lines after it quote the input (which may
    // hold a password), so they are left out.
    std::string why(status.message());
    why = why.substr(0, why.find('\n'));
    if (why.size() > 200) {
      why.resize(200);
    }
    return errorReply(400, "bad_request", "malformed JSON body: " + why);
  }
  return std::nullopt;
}

HttpRouter::HttpRouter(Authenticator authenticate, Clock clock)
    : authenticate_(std::move(authenticate)), clock_(std::move(clock)) {}

void HttpRouter::add(http::verb method, std::string pattern, Auth auth, Handler handler) {
  Route route{method, pattern, {}, auth, std::move(handler), nullptr, 0};
  for (auto segment : splitPath(route.pattern)) {
    route.segments.emplace_back(segment);
  }
  routes_.push_back(std::move(route));
}

void HttpRouter::addStreaming(http::verb method, std::string pattern, Auth auth,
                              std::uint64_t max_body_bytes, StreamHandler handler) {
  Route route{method, pattern, {}, auth, nullptr, std::move(handler), max_body_bytes};
  for (auto segment : splitPath(route.pattern)) {
    route.segments.emplace_back(segment);
  }
  routes_.push_back(std::move(route));
}

std::vector<std::pair<http::verb, std::string>> HttpRouter::routes() const {
  std::vector<std::pair<http::verb, std::string>> out;
  for (const auto& route : routes_) {
    out.emplace_back(route.method, route.pattern);
  }
  return out;
}

const HttpRouter::Route* HttpRouter::match(http::verb method, std::string_view raw_path,
                                           std::map<std::string, std::string>& params,
                                           std::string& allowed) const {
  const auto segments = splitPath(raw_path);
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) {
      continue;
    }
    std::map<std::string, std::string> found_params;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      const auto& want = route.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        auto value = percentDecode(segments[i], false);
        match = value && !value->empty() && value->find('/') == std::string::npos;
        if (match) {
          found_params[want.substr(1, want.size() - 2)] = std::move(*value);
        }
      } else {
        match = want == segments[i];
      }
    }
    if (!match) {
      continue;
    }
    if (route.method != method) {
      allowed += (allowed.empty() ? "" : ", ") + std::string(http::to_string(route.method));
      continue;
    }
    params = std::move(found_params);
    return &route;
  }
  return nullptr;
}

std::optional<std::uint64_t> HttpRouter::streamingLimit(http::verb method,
                                                        std::string_view target) const {
  if (target.empty() || target.front() != '/') {
    return std::nullopt;
  }
  std::map<std::string, std::string> params;
  std::string allowed;
  const Route* route = match(method, target.substr(0, target.find('?')), params, allowed);
  if (route == nullptr || !route->stream_handler) {
    return std::nullopt;
  }
  return route->max_body_bytes;
}

namespace {

// A body read whole, handed to a streaming handler as one piece (HttpRouter::handle()).
class WholeBody : public RequestBodyStream {
 public:
  explicit WholeBody(const std::string& body) : body_(body) {}
  Piece next() override {
    Piece piece;
    if (!done_) {
      piece.data = body_;
      done_ = true;
    }
    return piece;
  }

 private:
  const std::string& body_;
  bool done_ = false;
};

}  // namespace

ApiReply HttpRouter::route(const http::request_header<>& request, const std::string* body,
                           RequestBodyStream* stream, const std::string& remote,
                           std::string& who) const {
  const std::string_view target(request.target().data(), request.target().size());
  if (target.empty() || target.front() != '/') {
    return errorReply(400, "bad_request", "the request target must be an absolute path");
  }
  const auto question = target.find('?');
  const auto raw_path = target.substr(0, question);
  ApiRequest api;
  api.method = request.method();
  api.path = std::string(raw_path);
  if (body != nullptr) {
    api.body = *body;
  }
  api.remote = remote;
  const auto content_type = request[http::field::content_type];
  api.content_type.assign(content_type.data(), content_type.size());
  const auto last_event_id = request["Last-Event-ID"];
  api.last_event_id.assign(last_event_id.data(), last_event_id.size());
  if (question != std::string_view::npos) {
    auto query = parseQuery(target.substr(question + 1));
    if (!query) {
      return errorReply(400, "bad_request", "malformed query string");
    }
    api.query = std::move(*query);
  }
  for (const auto segment : splitPath(raw_path)) {
    if (!percentDecode(segment, false)) {
      return errorReply(400, "bad_request", "malformed percent-escape in the path");
    }
  }

  std::string allowed;
  const Route* found = match(request.method(), raw_path, api.params, allowed);
  if (found == nullptr) {
    if (!allowed.empty()) {
      auto reply =
          errorReply(405, "method_not_allowed", "use " + allowed + " on " + std::string(raw_path));
      reply.headers.emplace_back("Allow", allowed);
      return reply;
    }
    return errorReply(404, "not_found", "no such endpoint");
  }
  if (!found->stream_handler && !api.body.empty()) {
    const auto content_type = request[http::field::content_type];
    if (!isJsonContentType(std::string_view(content_type.data(), content_type.size()))) {
      return errorReply(415, "unsupported_media_type", "send the body as application/json");
    }
  }
  api.now = clock_();
  if (found->auth == Auth::kRequired) {
    const auto header = request[http::field::authorization];
    api.token = bearerToken(std::string_view(header.data(), header.size()));
    if (api.token.empty()) {
      auto reply =
          errorReply(401, "unauthorized", "an 'Authorization: Bearer <token>' header is required");
      reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lostcard\"");
      return reply;
    }
    api.session = authenticate_(api.token, api.now);
    if (!api.session) {
      auto reply =
          errorReply(401, "unauthorized", "the token is unknown or has expired; log in again");
      reply.headers.emplace_back("WWW-Authenticate",
                                 "Bearer realm=\"lostcard\", error=\"invalid_token\"");
      return reply;
    }
    who = api.session->principal.account_id != 0
              ? "account " + std::to_string(api.session->principal.account_id)
              : api.session->principal.login;
  }
  if (found->stream_handler) {
    if (stream != nullptr) {
      return found->stream_handler(api, *stream);
    }
    // A streaming handler reads its body from the stream only, not from api.body.
    const std::string whole_body = std::move(api.body);
    api.body.clear();
    WholeBody whole(whole_body);
    return found->stream_handler(api, whole);
  }
  return found->handler(api);
}

HttpResponse HttpRouter::handle(const HttpRequest& request, const std::string& remote) const {
  return respond(request, &request.body(), nullptr, remote);
}

HttpResponse HttpRouter::handle(const HttpRequest& request, const std::string& remote,
                                EventStarter* events) const {
  return respond(request, &request.body(), nullptr, remote, events);
}

HttpResponse HttpRouter::handleStreaming(const http::request_header<>& header,
                                         const std::string& remote, RequestBodyStream& body) const {
  return respond(header, nullptr, &body, remote);
}

HttpResponse HttpRouter::respond(const http::request_header<>& request, const std::string* body,
                                 RequestBodyStream* stream, const std::string& remote,
                                 EventStarter* events) const {
  std::string who = "anonymous";
  ApiReply reply;
  try {
    reply = route(request, body, stream, remote, who);
  } catch (const pqxx::broken_connection& e) {
    apiLog()->error("{} {}: database unreachable: {}", std::string(request.method_string()),
                    std::string(request.target()), e.what());
    reply = errorReply(503, "unavailable", "the service is briefly unavailable; try again");
  } catch (const std::exception& e) {
    apiLog()->error("{} {}: {}", std::string(request.method_string()),
                    std::string(request.target()), e.what());
    reply = errorReply(500, "internal", "internal error");
  }
  const std::string_view target(request.target().data(), request.target().size());
  if (reply.events && request.version() < 11) {
    reply = errorReply(400, "bad_request", "an event stream needs HTTP/1.1");
  }
  apiLog()->info("{} {} {} -> {}{} ({})", remote, std::string(request.method_string()),
                 std::string(target.substr(0, target.find('?'))), reply.status,
                 reply.events ? " (event stream)" : "", who);
  if (reply.events) {
    // The head only; the body is the stream (chunked), and the connection ends with it.
    HttpResponse response{http::status::ok, request.version()};
    response.set(http::field::server, "lostcard");
    response.set(http::field::cache_control, "no-store");
    response.set(http::field::content_type, "text/event-stream");
    for (auto& [name, value] : reply.headers) {
      response.set(name, value);
    }
    response.keep_alive(false);
    response.chunked(true);
    if (events != nullptr) {
      *events = std::move(reply.events);
    }
    return response;
  }
  return toResponse(std::move(reply), request.version(), keepAlive(request));
}

ssl::context makeHttpsServerContext(const std::string& cert_file, const std::string& key_file) {
  ssl::context ctx(ssl::context::tls_server);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("cannot restrict TLS to 1.2 or newer");
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::no_compression);
  try {
    ctx.use_certificate_chain_file(cert_file);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load certificate '" + cert_file + "': " + e.what());
  }
  try {
    ctx.use_private_key_file(key_file, ssl::context::pem);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load private key '" + key_file + "': " + e.what());
  }
  ctx.set_verify_mode(ssl::verify_none);  // people authenticate with tokens, not certificates
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// The server: one HttpConnection per accepted socket, callbacks on a strand of its own.

class HttpConnection;

struct HttpServer::State {
  State(asio::io_context& io_context, ssl::context& tls_context, const HttpRouter& r,
        asio::any_io_executor w, HttpServerOptions o)
      : io(io_context),
        tls(tls_context),
        router(r),
        work(std::move(w)),
        options(std::move(o)),
        acceptor(io_context) {}

  asio::io_context& io;
  ssl::context& tls;
  const HttpRouter& router;
  asio::any_io_executor work;
  HttpServerOptions options;
  tcp::acceptor acceptor;
  std::mutex mutex;
  std::set<std::shared_ptr<HttpConnection>> connections;  // guarded by mutex
  bool stopped = false;                                   // guarded by mutex
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, std::shared_ptr<HttpServer::State> state)
      : state_(std::move(state)), stream_(std::move(socket), state_->tls) {
    boost::system::error_code ec;
    const auto endpoint = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    remote_ = ec ? "?" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  void start() {
    beast::get_lowest_layer(stream_).expires_after(state_->options.handshake_timeout);
    stream_.async_handshake(
        ssl::stream_base::server,
        beast::bind_front_handler(&HttpConnection::onHandshake, shared_from_this()));
  }

  // From any thread.
  void close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->closeNow(); });
  }

 private:
  void onHandshake(beast::error_code ec) {
    if (ec) {
      apiLog()->debug("{}: TLS handshake failed: {}", remote_, ec.message());
      return closeNow();
    }
    readRequest();
  }

  // The header first: its route decides how the body is read (whole, up to the server's
  // max_body_bytes, or in pieces by a streaming route's handler, up to the route's own limit).
  void readRequest() {
    parser_.reset();
    stream_parser_.reset();
    header_parser_.emplace();
    // The limit is checked in onHeader, once the route is known. Not boost::none: Boost 1.74
    // compares the Content-Length with the optional limit, and any length is "more" than none.
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    header_parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_header_bytes));
    beast::get_lowest_layer(stream_).expires_after(state_->options.read_timeout);
    http::async_read_header(
        stream_, buffer_, *header_parser_,
        beast::bind_front_handler(&HttpConnection::onHeader, shared_from_this()));
  }

  void onHeader(beast::error_code ec, std::size_t) {
    if (ec) {
      return onReadError(ec, header_parser_->got_some(), state_->options.max_body_bytes);
    }
    const auto& header = header_parser_->get();
    const auto stream_limit = state_->router.streamingLimit(
        header.method(), std::string_view(header.target().data(), header.target().size()));
    const std::uint64_t limit = stream_limit ? *stream_limit : state_->options.max_body_bytes;
    if (const auto declared = header_parser_->content_length(); declared && *declared > limit) {
      // Drop what is left of the body (at most kMaxDrainBytes) after answering, so the client
      // reads the 413 instead of a reset.
      const auto buffered = std::min<std::uint64_t>(buffer_.size(), *declared);
      drain_left_ =
          static_cast<std::size_t>(std::min<std::uint64_t>(*declared - buffered, kMaxDrainBytes));
      return replyError(413, "the body is larger than " + std::to_string(limit) + " bytes", true);
    }
    if (stream_limit) {
      return startStreaming(*stream_limit);
    }
    parser_.emplace(std::move(*header_parser_));
    header_parser_.reset();
    parser_->body_limit(limit);  // for chunked bodies
    if (parser_->is_done()) {
      return onRead({}, 0);
    }
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpConnection::onRead, shared_from_this()));
  }

  void onReadError(beast::error_code ec, bool got_some, std::uint64_t limit) {
    if (ec == http::error::end_of_stream || ec == ssl::error::stream_truncated) {
      return shutdown();
    }
    if (ec == beast::error::timeout) {
      // Beast has closed the socket already: nothing can be answered. An idle keep-alive
      // connection ends this way too.
      if (got_some) {
        apiLog()->info("{}: closed: the request did not arrive within {} ms", remote_,
                       state_->options.read_timeout.count());
      }
      return closeNow();
    }
    if (ec == http::error::body_limit) {
      drain_left_ = kMaxDrainBytes;  // a chunked body: its size is not known
      return replyError(413, "the body is larger than " + std::to_string(limit) + " bytes", true);
    }
    if (ec == http::error::header_limit) {
      return replyError(431,
                        "the headers are larger than " +
                            std::to_string(state_->options.max_header_bytes) + " bytes",
                        false);
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return replyError(400, "malformed HTTP request (" + ec.message() + ")", false);
    }
    apiLog()->debug("{}: read failed: {}", remote_, ec.message());
    return closeNow();
  }

  void onRead(beast::error_code ec, std::size_t) {
    if (ec) {
      return onReadError(ec, parser_->got_some(), state_->options.max_body_bytes);
    }
    beast::get_lowest_layer(stream_).expires_never();
    auto request = std::make_shared<HttpRequest>(parser_->release());
    // The handler may block on the database: run it on the work executor, answer on ours.
    asio::post(state_->work, [self = shared_from_this(), request] {
      auto events = std::make_shared<EventStarter>();
      auto response = std::make_shared<HttpResponse>(
          self->state_->router.handle(*request, self->remote_, events.get()));
      asio::post(self->stream_.get_executor(), [self, response, events] {
        if (*events) {
          return self->startEvents(response, std::move(*events));
        }
        self->write(response, false);
      });
    });
  }

  // ---- Event streams (ApiReply::events) ----

  // Sends to its connection's strand; knows when the stream has ended.
  class ConnectionSink : public EventSink {
   public:
    ConnectionSink(std::weak_ptr<HttpConnection> connection, std::shared_ptr<std::atomic<bool>> open)
        : connection_(std::move(connection)), open_(std::move(open)) {}
    bool send(std::string text) override {
      if (!*open_) {
        return false;
      }
      auto c = connection_.lock();
      if (!c) {
        return false;
      }
      asio::post(c->stream_.get_executor(),
                 [c, text = std::move(text)]() mutable { c->queueEvent(std::move(text)); });
      return true;
    }
    bool isOpen() const override { return *open_; }

   private:
    std::weak_ptr<HttpConnection> connection_;
    std::shared_ptr<std::atomic<bool>> open_;
  };

  void startEvents(std::shared_ptr<HttpResponse> response, EventStarter starter) {
    response_ = std::move(response);
    events_open_ = std::make_shared<std::atomic<bool>>(true);
    head_serializer_.emplace(*response_);
    beast::get_lowest_layer(stream_).expires_after(state_->options.read_timeout);
    http::async_write_header(
        stream_, *head_serializer_,
        [self = shared_from_this(), starter = std::move(starter)](beast::error_code ec,
                                                                  std::size_t) {
          if (ec) {
            return self->closeNow();
          }
          // From now on the stream has no deadline: the client's going away ends it (the read
          // below fails), and a client that stops reading overflows the queue.
          beast::get_lowest_layer(self->stream_).expires_never();
          self->watchEventClient();
          starter(std::make_shared<ConnectionSink>(self, self->events_open_));
        });
  }

  // Reads (and drops) whatever the client sends until it closes the connection.
  void watchEventClient() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) {
                                return self->closeNow();
                              }
                              self->watchEventClient();
                            });
  }

  void queueEvent(std::string text) {
    if (closed_ || text.empty()) {
      return;
    }
    queued_bytes_ += text.size();
    event_queue_.push_back(std::move(text));
    if (queued_bytes_ > EventSink::kMaxQueuedBytes) {
      apiLog()->warn("{}: event stream closed: the client does not read", remote_);
      return closeNow();
    }
    if (!event_writing_) {
      writeNextEvent();
    }
  }

  void writeNextEvent() {
    if (event_queue_.empty() || closed_) {
      event_writing_ = false;
      return;
    }
    event_writing_ = true;
    auto text = std::make_shared<std::string>(std::move(event_queue_.front()));
    event_queue_.pop_front();
    auto chunk = std::make_shared<http::chunk_body<asio::const_buffer>>(
        http::make_chunk(asio::const_buffer(text->data(), text->size())));
    asio::async_write(stream_, *chunk,
                      [self = shared_from_this(), text, chunk](beast::error_code ec, std::size_t) {
                        self->queued_bytes_ -= std::min(self->queued_bytes_, text->size());
                        if (ec) {
                          return self->closeNow();
                        }
                        self->writeNextEvent();
                      });
  }

  // A streaming route's body, read on this connection's strand as the handler (on a work thread)
  // asks for each piece, into one buffer of kBodyPieceBytes.
  class StreamedBody : public RequestBodyStream {
   public:
    explicit StreamedBody(std::shared_ptr<HttpConnection> connection)
        : connection_(std::move(connection)) {}

    Piece next() override {
      if (failed_) {
        return *failed_;
      }
      if (ended_) {
        return {};
      }
      auto promise = std::make_shared<std::promise<Piece>>();
      auto future = promise->get_future();
      asio::post(connection_->stream_.get_executor(),
                 [c = connection_, promise] { c->readBodyPiece(promise); });
      // Each read has the connection's read timeout; this bound is for a server stopped meanwhile
      // (its I/O thread gone, the read never run).
      const auto bound = connection_->state_->options.read_timeout + std::chrono::seconds(5);
      Piece piece;
      if (future.wait_for(bound) != std::future_status::ready) {
        // The read may still be pending: close the connection so that it ends (aborted) before
        // this body's buffer or parser could be reused for a next request.
        connection_->close();
        piece = {false, {}, 408, "the body did not arrive in time"};
      } else {
        try {
          piece = future.get();
        } catch (const std::future_error&) {
          piece = {false, {}, 503, "the server is stopping"};
        }
      }
      if (!piece.ok) {
        failed_ = piece;
      } else if (piece.data.empty()) {
        ended_ = true;
      }
      return piece;
    }

    // The whole body was read.
    bool finished() const { return ended_; }

   private:
    std::shared_ptr<HttpConnection> connection_;
    std::optional<Piece> failed_;
    bool ended_ = false;
  };

  void startStreaming(std::uint64_t limit) {
    stream_parser_.emplace(std::move(*header_parser_));
    header_parser_.reset();
    stream_parser_->body_limit(limit);
    stream_limit_ = limit;
    body_failed_ = false;
    body_buf_.resize(kBodyPieceBytes);
    const auto expect = stream_parser_->get()[http::field::expect];
    expect_continue_ = beast::iequals(expect, "100-continue");
    beast::get_lowest_layer(stream_).expires_never();
    auto header = std::make_shared<http::request_header<>>(stream_parser_->get().base());
    auto body = std::make_shared<StreamedBody>(shared_from_this());
    asio::post(state_->work, [self = shared_from_this(), header, body] {
      auto response = std::make_shared<HttpResponse>(
          self->state_->router.handleStreaming(*header, self->remote_, *body));
      const bool whole = body->finished();
      asio::post(self->stream_.get_executor(), [self, response, whole] {
        if (!whole) {
          // Answered before the body's end: no next request can follow on this connection. Read
          // and drop some of the rest (unless it broke), so the client reads the answer.
          response->keep_alive(false);
          self->drain_left_ = self->body_failed_ ? 0 : kMaxDrainBytes;
        }
        self->write(response, !whole);
      });
    });
  }

  void readBodyPiece(const std::shared_ptr<std::promise<RequestBodyStream::Piece>>& promise) {
    using Piece = RequestBodyStream::Piece;
    if (closed_) {
      promise->set_value({false, {}, 503, "the connection was closed"});
      return;
    }
    if (stream_parser_->is_done()) {
      promise->set_value({});
      return;
    }
    if (expect_continue_) {
      // The client waits for this before it sends the body (curl does, for large bodies).
      expect_continue_ = false;
      auto interim =
          std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      beast::get_lowest_layer(stream_).expires_after(state_->options.read_timeout);
      http::async_write(
          stream_, *interim,
          [self = shared_from_this(), interim, promise](beast::error_code ec, std::size_t) {
            if (ec) {
              self->body_failed_ = true;
              promise->set_value({false, {}, 400, "the connection broke"});
              return;
            }
            self->readBodyPiece(promise);
          });
      return;
    }
    auto& body = stream_parser_->get().body();
    body.data = body_buf_.data();
    body.size = body_buf_.size();
    body.more = true;
    beast::get_lowest_layer(stream_).expires_after(state_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *stream_parser_,
        [self = shared_from_this(), promise](beast::error_code ec, std::size_t) {
          if (ec == http::error::need_buffer) {
            ec = {};
          }
          if (ec) {
            // Over the limit, the connection still works: the rest is drained after the answer.
            self->body_failed_ = ec != http::error::body_limit;
            Piece failed{false, {}, 400, ""};
            if (ec == http::error::body_limit) {
              failed.status = 413;
              failed.reason =
                  "the body is larger than " + std::to_string(self->stream_limit_) + " bytes";
            } else if (ec == beast::error::timeout) {
              failed.status = 408;
              failed.reason = "the body stalled for " +
                              std::to_string(self->state_->options.read_timeout.count()) + " ms";
            } else if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
              failed.reason = "malformed body (" + ec.message() + ")";
            } else {
              failed.reason = "the body ended early (" + ec.message() + ")";
            }
            promise->set_value(std::move(failed));
            return;
          }
          const std::size_t got = self->body_buf_.size() - self->stream_parser_->get().body().size;
          if (got == 0 && !self->stream_parser_->is_done()) {
            return self->readBodyPiece(promise);
          }
          promise->set_value({true, std::string_view(self->body_buf_.data(), got), 0, {}});
        });
  }

  void replyError(unsigned status, std::string reason, bool drain) {
    auto reply = errorReply(status, errorCodeFor(status), std::move(reason));
    apiLog()->info("{} (unparsed request) -> {}", remote_, status);
    auto response = std::make_shared<HttpResponse>(toResponse(std::move(reply), 11, false));
    write(response, drain);
  }

  void write(std::shared_ptr<HttpResponse> response, bool drain_after) {
    response_ = std::move(response);
    beast::get_lowest_layer(stream_).expires_after(state_->options.read_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), drain_after](beast::error_code ec, std::size_t) {
                        self->onWrite(ec, drain_after);
                      });
  }

  void onWrite(beast::error_code ec, bool drain_after) {
    const bool keep_alive = response_->keep_alive();
    response_.reset();
    if (ec) {
      return closeNow();
    }
    if (drain_after && drain_left_ > 0) {
      beast::get_lowest_layer(stream_).expires_after(kDrainTimeout);
      return drain();
    }
    if (!keep_alive) {
      return shutdown();
    }
    readRequest();
  }

  void drain() {
    const auto chunk = std::min(drain_left_, sizeof(scratch_));
    stream_.async_read_some(asio::buffer(scratch_, chunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drain_left_ -= std::min(n, self->drain_left_);
                              if (ec || self->drain_left_ == 0) {
                                return self->shutdown();
                              }
                              self->drain();
                            });
  }

  void shutdown() {
    if (closed_) {
      return;
    }
    beast::get_lowest_layer(stream_).expires_after(kShutdownTimeout);
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->closeNow(); });
  }

  void closeNow() {
    if (events_open_) {
      *events_open_ = false;
    }
    if (!closed_) {
      closed_ = true;
      beast::error_code ignored;
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
      beast::get_lowest_layer(stream_).close();
    }
    std::lock_guard lock(state_->mutex);
    state_->connections.erase(shared_from_this());
  }

  std::shared_ptr<HttpServer::State> state_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::buffer_body>> stream_parser_;  // streaming routes
  std::vector<char> body_buf_;  // a streamed body's current piece
  std::uint64_t stream_limit_ = 0;
  bool expect_continue_ = false;
  bool body_failed_ = false;
  std::shared_ptr<HttpResponse> response_;
  std::size_t drain_left_ = 0;
  char scratch_[16 * 1024];
  bool closed_ = false;
  // An event stream's state (after startEvents).
  std::optional<http::response_serializer<http::string_body>> head_serializer_;
  std::shared_ptr<std::atomic<bool>> events_open_;
  std::deque<std::string> event_queue_;
  std::size_t queued_bytes_ = 0;
  bool event_writing_ = false;
};

namespace {

void acceptNext(const std::shared_ptr<HttpServer::State>& state) {
  state->acceptor.async_accept(asio::make_strand(state->io), [state](beast::error_code ec,
                                                                     tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) {
      return;
    }
    if (!ec) {
      std::shared_ptr<HttpConnection> connection;
      {
        std::lock_guard lock(state->mutex);
        if (!state->stopped && state->connections.size() < state->options.max_connections) {
          connection = std::make_shared<HttpConnection>(std::move(socket), state);
          state->connections.insert(connection);
        }
      }
      if (connection) {
        connection->start();
      } else {
        apiLog()->warn("refusing a connection: {} open already", state->options.max_connections);
        beast::error_code ignored;
        socket.close(ignored);
      }
    } else {
      apiLog()->warn("accept failed: {}", ec.message());
    }
    acceptNext(state);
  });
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, ssl::context& tls, const HttpRouter& router,
                       asio::any_io_executor work, HttpServerOptions options)
    : state_(std::make_shared<State>(io, tls, router, std::move(work), std::move(options))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  auto& acceptor = state_->acceptor;
  acceptor.open(state_->options.listen.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(state_->options.listen);
  acceptor.listen();
  acceptNext(state_);
}

void HttpServer::stop() {
  std::set<std::shared_ptr<HttpConnection>> connections;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    connections = state_->connections;
  }
  asio::post(state_->io, [state = state_] {
    beast::error_code ignored;
    state->acceptor.close(ignored);
  });
  for (const auto& connection : connections) {
    connection->close();
  }
}

tcp::endpoint HttpServer::localEndpoint() const { return state_->acceptor.local_endpoint(); }

std::size_t HttpServer::connectionCount() const {
  std::lock_guard lock(state_->mutex);
  return state_->connections.size();
}

}  // namespace lostcard::cloud
