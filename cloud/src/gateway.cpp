#include "lostcard/cloud/gateway.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "lostcard/wire/log.hpp"
#include "lostcard/wire/tls.hpp"

namespace lostcard::cloud {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;

Gateway::Gateway(asio::io_context& io, asio::ssl::context& tls, DepositService& service,
                 asio::any_io_executor work, GatewayOptions options)
    : io_(io),
      tls_(tls),
      service_(service),
      work_(std::move(work)),
      options_(std::move(options)),
      acceptor_(io) {}

Gateway::~Gateway() = default;

void Gateway::start() {
  acceptor_.open(options_.listen.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(options_.listen);
  acceptor_.listen();
  asio::co_spawn(io_, acceptLoop(), asio::detached);
}

tcp::endpoint Gateway::localEndpoint() const { return acceptor_.local_endpoint(); }

void Gateway::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  // Each stop callback removes nothing itself; the sessions unregister as they end.
  auto sessions = sessions_;
  for (auto& [serial, stop] : sessions) {
    stop("cloud shutting down");
  }
}

asio::awaitable<void> Gateway::acceptLoop() {
  auto log = wire::componentLogger("cloud.gateway");
  log->info("accepting kiosks on {}:{}", acceptor_.local_endpoint().address().to_string(),
            acceptor_.local_endpoint().port());
  while (!stopped_) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped_ || ec == asio::error::operation_aborted) {
        break;
      }
      log->warn("accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(io_, serveConnection(std::move(socket), next_serial_++), asio::detached);
  }
}

asio::awaitable<void> Gateway::serveConnection(tcp::socket socket, std::uint64_t serial) {
  auto log = wire::componentLogger("cloud.gateway");
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  const std::string remote =
      ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
  socket.set_option(tcp::no_delay(true), ec);

  TlsStream stream(std::move(socket), tls_);
  {
    // The TLS handshake gets its own deadline: a peer that connects and says nothing must not
    // hold a connection open.
    asio::steady_timer deadline(io_, options_.handshake_timeout);
    deadline.async_wait([&stream](boost::system::error_code wait_ec) {
      if (!wait_ec) {
        boost::system::error_code close_ec;
        stream.next_layer().close(close_ec);
      }
    });
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    deadline.cancel();
  }
  if (ec) {
    log->warn("TLS handshake with {} failed: {}", remote, ec.message());
    co_return;
  }
  const std::string cn = wire::peerCommonName(stream.native_handle());

  SessionHooks hooks;
  hooks.on_admitted = [this, serial](const std::string& kiosk_id) {
    auto previous = kiosk_sessions_.find(kiosk_id);
    if (previous != kiosk_sessions_.end() && previous->second != serial) {
      auto it = sessions_.find(previous->second);
      if (it != sessions_.end()) {
        it->second("replaced by a newer connection of the same kiosk");
      }
    }
    kiosk_sessions_[kiosk_id] = serial;
  };
  auto session = std::make_shared<KioskSession<TlsStream>>(
      std::move(stream), cn, remote, service_, work_, options_.session, std::move(hooks));
  std::weak_ptr<KioskSession<TlsStream>> weak = session;
  sessions_[serial] = [weak](const std::string& reason) {
    if (auto s = weak.lock()) {
      s->stop(reason);
    }
  };
  if (stopped_) {
    session->stop("cloud shutting down");
  }
  co_await session->run();
  sessions_.erase(serial);
  auto it = kiosk_sessions_.find(session->kioskId());
  if (it != kiosk_sessions_.end() && it->second == serial) {
    kiosk_sessions_.erase(it);
  }
}

}  // namespace lostcard::cloud
