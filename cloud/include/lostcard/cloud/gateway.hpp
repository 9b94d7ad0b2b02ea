#pragma once
// The kiosk-facing TLS server: accepts kiosks (mutual TLS, TLS 1.2+), runs one KioskSession
// per connection, many kiosks at once, and keeps at most one live session per kiosk.
//
//   boost::asio::io_context io;
//   boost::asio::thread_pool work(4);
//   auto tls = wire::makeServerContext({ca, cert, key});
//   wire::RevocationList crl(tls, ca, crl_file);   // optional: options.revocations = &crl
//   Gateway gateway(io, tls, service, work.get_executor(), options);
//   gateway.start();
//   io.run();   // gateway.drain(timeout) (or stop()) from a signal handler ends it
//
// Back-pressure: at most options.max_queued_recognitions CardCaptured messages wait or run on
// the worker pool at once, across all sessions; a session beyond that waits for a place without
// reading its kiosk's next message (see KioskSession).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "lostcard/cloud/async_semaphore.hpp"
#include "lostcard/cloud/deposit_service.hpp"
#include "lostcard/cloud/kiosk_session.hpp"
#include "lostcard/wire/tls.hpp"

namespace lostcard::cloud {

struct GatewayOptions {
  boost::asio::ip::tcp::endpoint listen;
  SessionOptions session;
  std::chrono::milliseconds handshake_timeout{10'000};
  // Recognitions waiting or running on the worker pool at most (at least 1).
  std::size_t max_queued_recognitions = 8;
  // The kiosks' certificate revocation list, loaded into `tls` (null: none). The gateway looks
  // at its file before each TLS handshake and every revocation_check; when it changed, the new
  // list is in force for new connections and the gateway closes the sessions of kiosks whose
  // certificate it now names.
  wire::RevocationList* revocations = nullptr;
  std::chrono::milliseconds revocation_check{5'000};
};

class Gateway {
 public:
  Gateway(boost::asio::io_context& io, boost::asio::ssl::context& tls, DepositService& service,
          boost::asio::any_io_executor work, GatewayOptions options);
  ~Gateway();

  // Binds and starts accepting; throws when the address cannot be bound.
  void start();
  // Stops accepting and ends every session now. Call on the io_context's thread (or post it).
  void stop();
  // Graceful stop: stops accepting, lets each session finish the message in hand (decision
  // committed, answer written) and closes it; sessions still busy after `timeout` are closed
  // anyway (their kiosks resend what was not answered). `done` runs on the io_context's thread
  // once no session is left. Call on the io_context's thread; stop() may follow to hurry it.
  void drain(std::chrono::milliseconds timeout, std::function<void()> done = {});

  boost::asio::ip::tcp::endpoint localEndpoint() const;
  // Reloads the revocation list when its file changed and closes the sessions it now revokes.
  // Called before each handshake and by a timer; call on the io_context's thread.
  void checkRevocations();

  // Kiosks with a live session.
  std::size_t sessionCount() const { return sessions_.size(); }
  const AsyncSemaphore& recognitionPlaces() const { return recognition_places_; }

 private:
  boost::asio::io_context& io_;
  boost::asio::ssl::context& tls_;
  DepositService& service_;
  boost::asio::any_io_executor work_;
  GatewayOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // How the gateway ends one open connection: now (with a reason), or gracefully.
  struct Ending {
    std::function<void(const std::string&)> stop;
    std::function<void()> drain;
    std::shared_ptr<X509> certificate;  // the peer's, once its TLS handshake succeeded
  };
  AsyncSemaphore recognition_places_;
  // Every open connection (TLS handshakes included), by a serial number; `kiosk_sessions_`
  // maps an admitted kiosk to it.
  std::map<std::uint64_t, Ending> sessions_;
  std::map<std::string, std::uint64_t> kiosk_sessions_;
  std::uint64_t next_serial_ = 0;
  bool stopped_ = false;
  bool draining_ = false;
  boost::asio::steady_timer drain_deadline_;
  boost::asio::steady_timer revocation_timer_;
  std::function<void()> drained_;

  void stopAccepting();
  void connectionEnded(std::uint64_t serial);
  void finishDrainIfIdle();

  boost::asio::awaitable<void> acceptLoop();
  boost::asio::awaitable<void> watchRevocations();
  boost::asio::awaitable<void> serveConnection(boost::asio::ip::tcp::socket socket,
                                               std::uint64_t serial);
};

}  // namespace lostcard::cloud
