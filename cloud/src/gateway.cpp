#include "lostcard/cloud/gateway.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <utility>

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
      acceptor_(io),
      recognition_places_(io.get_executor(), options_.max_queued_recognitions),
      drain_deadline_(io),
      revocation_timer_(io) {}

Gateway::~Gateway() = default;

void Gateway::start() {
  acceptor_.open(options_.listen.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(options_.listen);
  acceptor_.listen();
  asio::co_spawn(io_, acceptLoop(), asio::detached);
  if (options_.revocations != nullptr) {
    asio::co_spawn(io_, watchRevocations(), asio::detached);
  }
}

tcp::endpoint Gateway::localEndpoint() const { return acceptor_.local_endpoint(); }

void Gateway::stopAccepting() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  revocation_timer_.cancel();
}

void Gateway::checkRevocations() {
  if (options_.revocations == nullptr) {
    return;
  }
  auto log = wire::componentLogger("cloud.gateway");
  const auto refresh = options_.revocations->refreshIfChanged();
  if (!refresh.error.empty()) {
    log->error("revocation list changed but cannot be used (the previous one stays in force): {}",
               refresh.error);
    return;
  }
  if (!refresh.changed) {
    return;
  }
  log->info("revocation list reloaded: {}", options_.revocations->describe());
  // A kiosk connected before its certificate was revoked must not go on talking.
  auto sessions = sessions_;
  for (auto& [serial, ending] : sessions) {
    if (ending.certificate && options_.revocations->isRevoked(ending.certificate.get())) {
      ending.stop("certificate revoked");
    }
  }
}

asio::awaitable<void> Gateway::watchRevocations() {
  while (!stopped_) {
    revocation_timer_.expires_after(options_.revocation_check);
    boost::system::error_code ec;
    co_await revocation_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) {
      break;
    }
    checkRevocations();
  }
}

void Gateway::stop() {
  stopAccepting();
  drain_deadline_.cancel();
  recognition_places_.stop();
  // Each stop callback removes nothing itself; the sessions unregister as they end.
  auto sessions = sessions_;
  for (auto& [serial, ending] : sessions) {
    ending.stop("cloud shutting down");
  }
}

void Gateway::drain(std::chrono::milliseconds timeout, std::function<void()> done) {
  auto log = wire::componentLogger("cloud.gateway");
  stopAccepting();
  draining_ = true;
  drained_ = std::move(done);
  // Sessions waiting for a recognition place give up: their kiosks resend to the next cloud.
  recognition_places_.stop();
  if (sessions_.empty()) {
    finishDrainIfIdle();
    return;
  }
  log->info("draining {} session(s) (at most {} ms)", sessions_.size(), timeout.count());
  drain_deadline_.expires_after(timeout);
  drain_deadline_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !sessions_.empty()) {
      wire::componentLogger("cloud.gateway")
          ->warn("drain deadline passed: closing {} session(s) still busy", sessions_.size());
      stop();
    }
  });
  auto sessions = sessions_;
  for (auto& [serial, ending] : sessions) {
    ending.drain();
  }
}

void Gateway::connectionEnded(std::uint64_t serial) {
  sessions_.erase(serial);
  finishDrainIfIdle();
}

void Gateway::finishDrainIfIdle() {
  if (draining_ && sessions_.empty()) {
    drain_deadline_.cancel();
    if (auto done = std::exchange(drained_, {})) {
      wire::componentLogger("cloud.gateway")->info("every session closed");
      done();
    }
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
    // A list changed since the last look is in force for this kiosk's handshake.
    checkRevocations();
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
  // Until it has a session, ending this connection (now or gracefully) means closing it.
  auto close_socket = [&stream] {
    boost::system::error_code close_ec;
    stream.next_layer().close(close_ec);
  };
  sessions_[serial] =
      Ending{[close_socket](const std::string&) { close_socket(); }, close_socket, nullptr};
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
  if (ec || stopped_) {
    if (ec && !stopped_) {
      // The refused certificate's reason ("certificate revoked (depth 0, CN=..., serial ...)").
      const std::string refused = wire::peerVerifyFailure(stream.native_handle());
      log->warn("TLS handshake with {} failed: {}{}", remote, ec.message(),
                refused.empty() ? "" : "; peer certificate refused: " + refused);
    }
    connectionEnded(serial);
    co_return;
  }
  const std::string cn = wire::peerCommonName(stream.native_handle());
  auto certificate = wire::peerCertificate(stream.native_handle());
  if (options_.revocations != nullptr && options_.revocations->isRevoked(certificate.get())) {
    // Verified under the previous list, revoked by a reload while this handshake finished.
    log->warn("TLS handshake with {}: certificate of '{}' revoked meanwhile; closing", remote, cn);
    close_socket();
    connectionEnded(serial);
    co_return;
  }

  SessionHooks hooks;
  hooks.on_admitted = [this, serial](const std::string& kiosk_id) {
    auto previous = kiosk_sessions_.find(kiosk_id);
    if (previous != kiosk_sessions_.end() && previous->second != serial) {
      auto it = sessions_.find(previous->second);
      if (it != sessions_.end()) {
        it->second.stop("replaced by a newer connection of the same kiosk");
      }
    }
    kiosk_sessions_[kiosk_id] = serial;
  };
  hooks.recognition_places = &recognition_places_;
  auto session = std::make_shared<KioskSession<TlsStream>>(
      std::move(stream), cn, remote, service_, work_, options_.session, std::move(hooks));
  std::weak_ptr<KioskSession<TlsStream>> weak = session;
  sessions_[serial] = Ending{[weak](const std::string& reason) {
                               if (auto s = weak.lock()) {
                                 s->stop(reason);
                               }
                             },
                             [weak] {
                               if (auto s = weak.lock()) {
                                 s->drain();
                               }
                             },
                             std::move(certificate)};
  co_await session->run();
  auto it = kiosk_sessions_.find(session->kioskId());
  if (it != kiosk_sessions_.end() && it->second == serial) {
    kiosk_sessions_.erase(it);
  }
  connectionEnded(serial);
}

}  // namespace lostcard::cloud
