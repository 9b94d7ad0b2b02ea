#pragma once
// The people's HTTPS API served inside a test: cloud::HttpServer on 127.0.0.1, any free port, with
// the test PKI's localhost certificate, its own I/O thread and two request workers. Start it once
// the fixture's data is in place; the destructor stops it (declare it after the router it serves,
// so that it goes first).
//
//   test::ApiServer server_{router_, pkiDir(), {.max_body_bytes = 4096}};
//   server_.start();
//   test::HttpsClient client_{pkiDir() + "/ca.crt", [this] { return server_.port(); }};
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <string>
#include <thread>

#include "lostcard/cloud/http_api.hpp"

namespace lostcard::test {

class ApiServer {
 public:
  // `options.listen` is replaced by 127.0.0.1:0; `pki_dir` holds server/localhost.{crt,key}.
  ApiServer(const cloud::HttpRouter& router, const std::string& pki_dir,
            cloud::HttpServerOptions options = {})
      : tls_(cloud::makeHttpsServerContext(pki_dir + "/server/localhost.crt",
                                           pki_dir + "/server/localhost.key")),
        server_(io_, tls_, router, work_.get_executor(), onLoopback(std::move(options))) {}
  ~ApiServer() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
    work_.join();
  }
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  void start() {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  unsigned short port() const { return server_.localEndpoint().port(); }

 private:
  static cloud::HttpServerOptions onLoopback(cloud::HttpServerOptions options) {
    options.listen = {boost::asio::ip::make_address("127.0.0.1"), 0};
    return options;
  }

  boost::asio::io_context io_;
  boost::asio::thread_pool work_{2};
  boost::asio::ssl::context tls_;
  cloud::HttpServer server_;
  std::thread thread_;
};

}  // namespace lostcard::test
