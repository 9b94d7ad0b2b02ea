#pragma once
// A client of the people's HTTPS API for pg tests: a test PKI (tools/pki) whose server
// certificate names localhost and 127.0.0.1, and requests over new TLS connections that verify
// the server against the test CA. Header-only: it uses Catch2's REQUIRE to fail the test.
//
//   const auto& pki = test::testPki("my_pgtest_pki");       // once per test program
//   auto tls = cloud::makeHttpsServerContext(pki + "/server/localhost.crt",
//                                            pki + "/server/localhost.key");
//   test::HttpsClient client(pki + "/ca.crt", [&] { return server.localEndpoint().port(); });
//   auto reply = client.call(http::verb::get, "/v1/me", token);
//   auto me = reply.as<v1::Me>();
//   auto bad = client.raw("BLAH / HTTP/9.9\r\n\r\n");  // bytes Beast's client would not send
#include <google/protobuf/util/json_util.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "lostcard/test/child_process.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::test {

// A test PKI made once per program under the build tree, in a directory called `name`: ca.crt,
// server/localhost.crt and server/localhost.key.
inline const std::string& testPki(const std::string& name) {
  static const std::string dir = [&name] {
    const std::string d = makeTestDir(name);
    const std::string pki = sourceDir() + "/tools/pki";
    runProgram({pki, "init", d});
    runProgram({pki, "server", d, "localhost", "127.0.0.1"});
    return d;
  }();
  return dir;
}

// One answer of the API.
struct HttpsReply {
  unsigned status = 0;
  std::string body;
  std::string www_authenticate;
  std::string allow;
  std::string cache_control;
  std::string retry_after;
  std::string content_type;

  // The JSON body read as `M` (fails the test when it is not one).
  template <class M>
  M as() const {
    M m;
    INFO(body);
    REQUIRE(google::protobuf::util::JsonStringToMessage(body, &m).ok());
    return m;
  }
  v1::ErrorBody error() const { return as<v1::ErrorBody>(); }
};

class HttpsClient {
 public:
  using Stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  // The largest answer body read() takes.
  static constexpr std::uint64_t kMaxReplyBody = 64 * 1024 * 1024;

  // `port` is asked at each connection (a server may bind after the client is made);
  // `deadline` bounds each connection, from connecting to its last read.
  HttpsClient(const std::string& ca_file, std::function<unsigned short()> port,
              std::chrono::seconds deadline = std::chrono::seconds(30))
      : port_(std::move(port)), deadline_(deadline) {
    tls_.load_verify_file(ca_file);
    tls_.set_verify_mode(boost::asio::ssl::verify_peer);
  }

  // A new TLS connection to 127.0.0.1, verified as "localhost", with the client's deadline.
  std::unique_ptr<Stream> connect(boost::asio::io_context& io) {
    auto stream = std::make_unique<Stream>(io, tls_);
    boost::beast::get_lowest_layer(*stream).expires_after(deadline_);
    boost::beast::get_lowest_layer(*stream).connect(boost::asio::ip::tcp::endpoint(
        boost::asio::ip::make_address("127.0.0.1"), port_()));
    stream->set_verify_callback(boost::asio::ssl::host_name_verification("localhost"));
    stream->handshake(boost::asio::ssl::stream_base::client);
    return stream;
  }

  // One request on a new connection.
  HttpsReply call(boost::beast::http::verb method, const std::string& target,
                  const std::string& token = "", const std::string& body = "",
                  const std::string& content_type = "application/json") {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    auto stream = connect(io);
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "localhost");
    if (!token.empty()) {
      request.set(http::field::authorization, "Bearer " + token);
    }
    if (!body.empty()) {
      request.set(http::field::content_type, content_type);
      request.body() = body;
    }
    request.prepare_payload();
    http::write(*stream, request);
    return read(*stream);
  }

  // Raw bytes on a new connection, then the answer (for requests Beast's client would not make,
  // or headers call() does not set).
  HttpsReply raw(const std::string& bytes) {
    boost::asio::io_context io;
    auto stream = connect(io);
    boost::asio::write(*stream, boost::asio::buffer(bytes));
    return read(*stream);
  }

  // POST /v1/auth/login; the token (fails the test unless 200).
  std::string login(const std::string& who, const std::string& password) {
    const auto reply = call(boost::beast::http::verb::post, "/v1/auth/login", "",
                            R"({"login": ")" + who + R"(", "password": ")" + password + R"("})");
    INFO(reply.body);
    REQUIRE(reply.status == 200);
    return reply.as<v1::LoginResponse>().token();
  }

  // The next answer on `stream` (a body of up to kMaxReplyBody).
  static HttpsReply read(Stream& stream) {
    boost::beast::flat_buffer buffer;
    return read(stream, buffer);
  }
  // The same, with the connection's read buffer (which may hold bytes read past an earlier
  // answer, e.g. after an interim "100 Continue").
  static HttpsReply read(Stream& stream, boost::beast::flat_buffer& buffer) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBody);
    http::read(stream, buffer, parser);
    const auto& response = parser.get();
    HttpsReply reply;
    reply.status = response.result_int();
    reply.body = response.body();
    reply.www_authenticate = std::string(response[http::field::www_authenticate]);
    reply.allow = std::string(response[http::field::allow]);
    reply.cache_control = std::string(response[http::field::cache_control]);
    reply.retry_after = std::string(response[http::field::retry_after]);
    reply.content_type = std::string(response[http::field::content_type]);
    return reply;
  }

 private:
  std::function<unsigned short()> port_;
  std::chrono::seconds deadline_;
  boost::asio::ssl::context tls_{boost::asio::ssl::context::tls_client};
};

}  // namespace lostcard::test
