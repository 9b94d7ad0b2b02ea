#pragma once
// The kiosk's link to the cloud: one session at a time over any Boost.Asio stream (TLS in the
// daemon, boost::beast::test::stream in tests), reconnecting on its own with back-off.
//
// A session: send Hello, wait for HelloAck (or give up after hello_timeout), send every durable
// message still unanswered (handlers.backlog(), oldest first), then whatever send() is given,
// while inbound Dispositions and Acks go to handlers.on_message. Messages given to send() while
// the link is down are dropped: the durable ones are in the journal and come back through the
// backlog after the next HelloAck, so nothing is sent twice in one session and nothing is lost.
//
// Dead peers: a link can look up while nothing passes (a half-open TCP connection, a stalled
// network). Once the link is up, when something was sent (a heartbeat included: the cloud acks
// heartbeats) and nothing at all arrives from the cloud for options.peer_timeout, the uplink
// closes the connection, logs why and reconnects with its back-off. Two things are not taken
// for a dead cloud: a busy one (it sends empty Heartbeats while it works for the kiosk), and a
// slow upload: a message must arrive before it can be answered, so the clock starts when the
// first unanswered message could have arrived, had everything sent before it passed at
// options.min_upload_bytes_per_s (a large CardCaptured, or a backlog of them, on a slow link).
// Acks of heartbeats and inventories (neither is durable: the next one replaces it) and the
// cloud's heartbeats stay in the uplink; an inventory the cloud could not record is logged.
//
//   Uplink<TlsStream> uplink(io.get_executor(),
//                            makeTlsConnector(io.get_executor(), tls, {"cloud", "7443", "cloud"}),
//                            {.kiosk_id = "kiosk-001"},
//                            {.backlog = [&] { return journal.unackedOutbox(); },
//                             .on_message = [&](const v1::Envelope& env) { ... },
//                             .clock_ms = wallClockMs});
//   co_spawn(io, uplink.run(), detached);
//   uplink.send(heartbeat);
//   uplink.stop();
//
// Everything runs on the executor given to the constructor; call send() and stop() from it.

// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lostcard/v1/kiosk_stream.pb.h"
#include "lostcard/wire/connection.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"

#ifndef LOSTCARD_VERSION
#define LOSTCARD_VERSION "dev"
#endif

namespace lostcard::kiosk {

struct UplinkOptions {
  std::string kiosk_id;
  std::string firmware_version = LOSTCARD_VERSION;
  std::chrono::milliseconds hello_timeout{10'000};
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{5'000};
  // The largest frame accepted from the cloud (its messages are small).
  std::size_t max_inbound_frame_bytes = 1 << 20;
  // Silence from the cloud this long while something sent is unanswered ends the session;
  // 0: never. The daemon makes it 3 heartbeat intervals.
  std::chrono::milliseconds peer_timeout{15'000};
  // The slowest upload the link is assumed to manage; the peer timeout counts from when
  // everything sent could have arrived at this rate. Lower: slower links work, stalls are
  // noticed later after large messages.
  std::size_t min_upload_bytes_per_s = 8 * 1024;
};

struct UplinkHandlers {
  // Durable messages not yet answered, oldest first; sent after every HelloAck.
  std::function<std::vector<v1::Envelope>()> backlog;
  // A Disposition, a PickupAnswer, an OperatorAuthAnswer, a RestockCheckAnswer or an Ack from
  // the cloud.
  std::function<void(const v1::Envelope&)> on_message;
  // The link came up (after HelloAck) or went down; optional.
  std::function<void(bool up)> on_link;
  // Wall clock for the envelopes' informational sent_at_ms.
  std::function<std::int64_t()> clock_ms;
};

// What a connector produces: a connected stream ready for the session, or why not.
template <class Stream>
struct Connected {
  std::optional<Stream> stream;
  std::string error;
};

template <class Stream>
using Connector = std::function<boost::asio::awaitable<Connected<Stream>>()>;

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

struct TlsEndpoint {
  std::string host;
  std::string port;
  std::string server_name;  // the name the cloud's certificate must carry; SNI
};

// TCP connect + TLS handshake to `endpoint`, verifying the cloud's certificate against the
// context's CA and `server_name` (host_name_verification), all within `timeout`.
Connector<TlsStream> makeTlsConnector(boost::asio::any_io_executor executor,
                                      boost::asio::ssl::context& context, TlsEndpoint endpoint,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Drops frames from the end of a CardCaptured (back and front in turn) until the envelope's
// frame fits in `max_frame_bytes`; returns how many were dropped. Other envelopes are left as
// they are.
int fitToFrameLimit(v1::Envelope& env, std::size_t max_frame_bytes);

template <class Stream>
class Uplink {
 public:
  Uplink(boost::asio::any_io_executor executor, Connector<Stream> connector, UplinkOptions options,
         UplinkHandlers handlers)
      : executor_(std::move(executor)),
        connector_(std::move(connector)),
        options_(std::move(options)),
        handlers_(std::move(handlers)),
        retry_timer_(executor_),
        log_(wire::componentLogger("kiosk.uplink")) {}

  // Connects, runs a session, backs off, and again, until stop().
  boost::asio::awaitable<void> run();

  void send(const v1::Envelope& env) {
    if (!session_ || !session_->ready) {
      return;
    }
    v1::Envelope copy = env;
    fit(copy);
    session_->conn->send(copy);
    noteSent(session_, copy);
  }

  void stop() {
    stopped_ = true;
    retry_timer_.cancel();
    if (session_) {
      endSession(*session_);
    }
  }

  bool connected() const { return session_ && session_->ready; }
  // Sessions that got as far as HelloAck.
  int sessionsEstablished() const { return sessions_established_; }

 private:
  struct Session {
    explicit Session(Stream stream, std::size_t max_inbound)
        : conn(std::make_shared<wire::Connection<Stream>>(std::move(stream), max_inbound)) {}
    std::shared_ptr<wire::Connection<Stream>> conn;
    bool ready = false;
    bool hello_timed_out = false;
    bool peer_timed_out = false;
    std::size_t max_outbound = wire::kDefaultMaxFrameBytes;
    // When the first message still unanswered could have reached the cloud; cleared by
    // anything from the cloud.
    std::optional<std::chrono::steady_clock::time_point> unanswered_since;
    std::shared_ptr<boost::asio::steady_timer> peer_timer;
    // When everything sent so far could have reached the cloud at min_upload_bytes_per_s.
    std::chrono::steady_clock::time_point upload_done_at{};
    // Ids of recent heartbeats and inventories, whose Acks only prove the link alive.
    std::deque<std::string> link_only_ids;
  };

  boost::asio::awaitable<std::string> runSession(Stream stream);
  std::string handleInbound(Session& session, const v1::Envelope& env);
  void fit(v1::Envelope& env) {
    if (const int dropped = fitToFrameLimit(env, session_->max_outbound); dropped > 0) {
      log_->warn("deposit {}: dropped {} frames to fit the cloud's {} byte frame limit",
                 env.card_captured().deposit_id(), dropped, session_->max_outbound);
    }
  }

  // Counts `env` into the upload and, when it is the first message since the cloud last said
  // anything, starts the peer clock from when it could have arrived.
  void noteSent(const std::shared_ptr<Session>& session, const v1::Envelope& env) {
    if (env.has_heartbeat() || env.has_inventory()) {
      session->link_only_ids.push_back(env.message_id());
      if (session->link_only_ids.size() > kLinkOnlyIdsKept) {
        session->link_only_ids.pop_front();
      }
    }
    if (options_.peer_timeout.count() <= 0) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto rate = std::max<std::size_t>(options_.min_upload_bytes_per_s, 1);
    session->upload_done_at = std::max(session->upload_done_at, now) +
                              std::chrono::milliseconds(env.ByteSizeLong() * 1000 / rate);
    if (env.has_ack() || session->unanswered_since) {
      return;
    }
    session->unanswered_since = session->upload_done_at;
    watchPeer(session, log_, options_.peer_timeout);
  }

  static std::chrono::steady_clock::time_point peerDeadline(const Session& session,
                                                            std::chrono::milliseconds timeout) {
    return *session.unanswered_since + timeout;
  }

  // Ends the session when the cloud stays silent for `timeout` after the first unanswered
  // message could have arrived.
  static void watchPeer(const std::shared_ptr<Session>& session,
                        const std::shared_ptr<spdlog::logger>& log,
                        std::chrono::milliseconds timeout) {
    session->peer_timer->expires_at(peerDeadline(*session, timeout));
    session->peer_timer->async_wait([session, log, timeout](boost::system::error_code ec) {
      if (ec || !session->ready || !session->unanswered_since) {
        return;  // cancelled: the cloud answered, or the session ended
      }
      if (std::chrono::steady_clock::now() < peerDeadline(*session, timeout)) {
        watchPeer(session, log, timeout);
        return;
      }
      log->warn("nothing from the cloud for {} ms with messages unanswered: closing the link",
                timeout.count());
      session->peer_timed_out = true;
      endSession(*session);
    });
  }

  static void endSession(Session& session) {
    session.conn->close();
    boost::system::error_code ec;
    auto& lowest = boost::beast::get_lowest_layer(session.conn->stream());
    if constexpr (requires { lowest.close(ec); }) {
      lowest.close(ec);
    } else {
      lowest.close();
    }
  }

  std::int64_t nowMs() const { return handlers_.clock_ms ? handlers_.clock_ms() : 0; }

  boost::asio::any_io_executor executor_;
  Connector<Stream> connector_;
  UplinkOptions options_;
  UplinkHandlers handlers_;
  boost::asio::steady_timer retry_timer_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<Session> session_;
  bool stopped_ = false;
  int sessions_established_ = 0;
  static constexpr std::size_t kLinkOnlyIdsKept = 16;
};

template <class Stream>
boost::asio::awaitable<void> Uplink<Stream>::run() {
  namespace asio = boost::asio;
  auto backoff = options_.backoff_initial;
  while (!stopped_) {
    Connected<Stream> connected = co_await connector_();
    if (stopped_) {
      break;
    }
    std::string why;
    const int before = sessions_established_;
    if (connected.stream) {
      why = co_await runSession(std::move(*connected.stream));
    } else {
      why = connected.error;
    }
    if (stopped_) {
      break;
    }
    if (sessions_established_ != before) {
      backoff = options_.backoff_initial;
    }
    log_->warn("cloud link down ({}); retrying in {} ms", why, backoff.count());
    retry_timer_.expires_after(backoff);
    boost::system::error_code ec;
    co_await retry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

template <class Stream>
boost::asio::awaitable<std::string> Uplink<Stream>::runSession(Stream stream) {
  namespace asio = boost::asio;
  auto session = std::make_shared<Session>(std::move(stream), options_.max_inbound_frame_bytes);
  session->peer_timer = std::make_shared<asio::steady_timer>(executor_);
  session_ = session;
  auto conn = session->conn;
  // The write loop owns a reference to the connection, so it may outlive this coroutine.
  asio::co_spawn(
      conn->get_executor(), [conn]() -> asio::awaitable<void> { co_await conn->writeLoop(); },
      asio::detached);

  auto hello = wire::makeEnvelope(nowMs());
  hello.mutable_hello()->set_kiosk_id(options_.kiosk_id);
  hello.mutable_hello()->set_firmware_version(options_.firmware_version);
  conn->send(hello);

  auto hello_timer = std::make_shared<asio::steady_timer>(executor_);
  hello_timer->expires_after(options_.hello_timeout);
  hello_timer->async_wait([session](boost::system::error_code ec) {
    if (!ec && !session->ready) {
      session->hello_timed_out = true;
      endSession(*session);
    }
  });

  std::string why;
  while (true) {
    v1::Envelope env;
    auto error = co_await conn->read(env);
    if (error) {
      if (session->hello_timed_out) {
        why = "no HelloAck in time";
      } else if (session->peer_timed_out) {
        why = "nothing from the cloud for " + std::to_string(options_.peer_timeout.count()) +
              " ms with messages unanswered";
      } else {
        why = *error;
      }
      break;
    }
    // Anything from the cloud proves it alive and answering.
    session->unanswered_since.reset();
    session->peer_timer->cancel();
    if (!session->ready) {
      if (!env.has_hello_ack()) {
        why = "expected HelloAck, got " + wire::bodyName(env);
        break;
      }
      hello_timer->cancel();
      if (env.hello_ack().max_frame_bytes() > 0) {
        session->max_outbound = env.hello_ack().max_frame_bytes();
      }
      session->ready = true;
      ++sessions_established_;
      log_->info("cloud link up (kiosk {})", options_.kiosk_id);
      std::vector<v1::Envelope> backlog;
      if (handlers_.backlog) {
        backlog = handlers_.backlog();
      }
      for (auto& queued : backlog) {
        fit(queued);
        conn->send(queued);
        noteSent(session, queued);
      }
      if (!backlog.empty()) {
        log_->info("resent {} unanswered messages", backlog.size());
      }
      if (handlers_.on_link) {
        handlers_.on_link(true);
      }
      continue;
    }
    why = handleInbound(*session, env);
    if (!why.empty()) {
      break;
    }
  }
  hello_timer->cancel();
  session->peer_timer->cancel();
  const bool was_ready = session->ready;
  session->ready = false;
  endSession(*session);
  if (session_ == session) {
    session_.reset();
  }
  if (was_ready && handlers_.on_link) {
    handlers_.on_link(false);
  }
  if (!conn->writeError().empty()) {
    why += " (write: " + conn->writeError() + ")";
  }
  co_return why;
}

template <class Stream>
std::string Uplink<Stream>::handleInbound(Session& session, const v1::Envelope& env) {
  switch (env.body_case()) {
    case v1::Envelope::kAck: {
      auto& ids = session.link_only_ids;
      if (auto it = std::find(ids.begin(), ids.end(), env.ack().message_id()); it != ids.end()) {
        // A heartbeat's or an inventory's: the link is alive, nothing for the daemon.
        ids.erase(it);
        if (!env.ack().error().empty()) {
          log_->warn("the cloud did not take message {}: {}", env.ack().message_id(),
                     env.ack().error());
        }
        return {};
      }
      if (handlers_.on_message) {
        handlers_.on_message(env);
      }
      return {};
    }
    case v1::Envelope::kHeartbeat:
      return {};  // the cloud is alive and busy for us
    case v1::Envelope::kDisposition:
    case v1::Envelope::kPickupAnswer:
    case v1::Envelope::kOperatorAuthAnswer:
    case v1::Envelope::kRestockCheckAnswer:
      if (handlers_.on_message) {
        handlers_.on_message(env);
      }
      return {};
    case v1::Envelope::kHelloAck:
      return {};  // a repeat; harmless
    default:
      log_->warn("ignoring unexpected {} from the cloud", wire::bodyName(env));
      return {};
  }
}

}  // namespace lostcard::kiosk
