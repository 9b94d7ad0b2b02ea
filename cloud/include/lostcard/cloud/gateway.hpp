#pragma once
// The kiosk-facing TLS server: accepts kiosks (mutual TLS, TLS 1.2+), runs one KioskSession
// per connection, many kiosks at once, and keeps at most one live session per kiosk.
//
//   boost::asio::io_context io;
//   boost::asio::thread_pool work(4);
//   auto tls = wire::makeServerContext({ca, cert, key});
//   Gateway gateway(io, tls, service, work.get_executor(), {endpoint, session_options});
//   gateway.start();
//   io.run();   // gateway.stop() from a signal handler ends it
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <map>
#include <memory>
#include <string>

#include "lostcard/cloud/deposit_service.hpp"
#include "lostcard/cloud/kiosk_session.hpp"

namespace lostcard::cloud {

struct GatewayOptions {
  boost::asio::ip::tcp::endpoint listen;
  SessionOptions session;
  std::chrono::milliseconds handshake_timeout{10'000};
};

class Gateway {
 public:
  Gateway(boost::asio::io_context& io, boost::asio::ssl::context& tls, DepositService& service,
          boost::asio::any_io_executor work, GatewayOptions options);
  ~Gateway();

  // Binds and starts accepting; throws when the address cannot be bound.
  void start();
  // Stops accepting and ends every session. Call on the io_context's thread (or post it).
  void stop();

  boost::asio::ip::tcp::endpoint localEndpoint() const;
  // Kiosks with a live session.
  std::size_t sessionCount() const { return sessions_.size(); }

 private:
  boost::asio::io_context& io_;
  boost::asio::ssl::context& tls_;
  DepositService& service_;
  boost::asio::any_io_executor work_;
  GatewayOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // Every open connection, by a serial number; `kiosk_sessions_` maps an admitted kiosk to it.
  std::map<std::uint64_t, std::function<void(const std::string&)>> sessions_;
  std::map<std::string, std::uint64_t> kiosk_sessions_;
  std::uint64_t next_serial_ = 0;
  bool stopped_ = false;

  boost::asio::awaitable<void> acceptLoop();
  boost::asio::awaitable<void> serveConnection(boost::asio::ip::tcp::socket socket,
                                               std::uint64_t serial);
};

}  // namespace lostcard::cloud
