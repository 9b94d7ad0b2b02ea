#pragma once
// One kiosk's connection to the cloud, from its Hello to its close.
//
// Written against any Boost.Asio async stream, so tests run it over in-memory streams; the
// gateway runs it over TLS. Blocking work (recognition, database) runs on the worker pool; the
// session handles one message at a time, so a kiosk that sends faster than the cloud works
// waits in TCP's window instead of the cloud buffering its images.
//
// A session ends, with its reason logged, when the peer closes, on an I/O error, a malformed,
// oversized or unexpected frame, a missed Hello or an idle timeout. Ending one session never
// touches another.
//
//   auto session = std::make_shared<KioskSession<Stream>>(std::move(stream), certificate_cn,
//                                                         remote, service, work, options, hooks);
//   co_await session->run();
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "lostcard/cloud/deposit_service.hpp"
#include "lostcard/wire/connection.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {

struct SessionOptions {
  std::size_t max_frame_bytes = wire::kDefaultMaxFrameBytes;
  std::chrono::milliseconds hello_timeout{10'000};
  // A kiosk sends a heartbeat every few seconds; silence this long means it is gone.
  std::chrono::milliseconds idle_timeout{60'000};
};

// Called by sessions so the gateway can track which kiosk is online.
struct SessionHooks {
  // A kiosk was admitted; the gateway closes an older session of the same kiosk.
  std::function<void(const std::string& kiosk_id)> on_admitted;
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

template <class Stream>
class KioskSession : public std::enable_shared_from_this<KioskSession<Stream>> {
 public:
  KioskSession(Stream stream, std::string certificate_cn, std::string remote,
               DepositService& service, boost::asio::any_io_executor work,
               SessionOptions options, SessionHooks hooks)
      : conn_(std::move(stream), options.max_frame_bytes),
        certificate_cn_(std::move(certificate_cn)),
        remote_(std::move(remote)),
        service_(service),
        work_(std::move(work)),
        options_(options),
        hooks_(std::move(hooks)),
        watchdog_(conn_.get_executor()),
        log_(wire::componentLogger("cloud.session")) {}

  // Runs the session to its end; returns the reason it ended.
  boost::asio::awaitable<std::string> run() {
    auto self = this->shared_from_this();
    boost::asio::co_spawn(conn_.get_executor(), [self]() { return self->conn_.writeLoop(); },
                          boost::asio::detached);
    deadline_ = std::chrono::steady_clock::now() + options_.hello_timeout;
    boost::asio::co_spawn(conn_.get_executor(), [self]() { return self->watchdog(); },
                          boost::asio::detached);
    std::string reason;
    try {
      reason = co_await serve();
    } catch (const std::exception& e) {
      // A failure inside this session (the database went away, say) ends it; the kiosk
      // reconnects and resends whatever was not answered.
      reason = std::string("internal error: ") + e.what();
    }
    shutdown(reason);
    co_return close_reason_;
  }

  // Ends the session from outside (a newer session of the same kiosk, or the cloud stopping).
  void stop(const std::string& reason) { shutdown(reason); }

  const std::string& kioskId() const { return kiosk_id_; }

 private:
  boost::asio::awaitable<std::string> serve() {
    v1::Envelope env;
    if (auto err = co_await conn_.read(env)) {
      co_return "before Hello: " + *err;
    }
    if (auto bad = checkEnvelope(env)) {
      co_return *bad;
    }
    if (!env.has_hello()) {
      co_return "expected Hello, got " + wire::bodyName(env);
    }
    // Worker calls capture only references and trivially destructible values: GCC 12 may
    // destroy the temporaries of a co_await expression twice.
    const v1::Hello& hello = env.hello();
    BusyScope admitting(*this);
    auto admitted = *co_await onWorker([this, &hello] {
      return service_.admitKiosk(hello, certificate_cn_);
    });
    if (auto* refusal = std::get_if<Refusal>(&admitted)) {
      co_return "refused: " + refusal->reason;
    }
    kiosk_id_ = hello.kiosk_id();
    log_->info("kiosk {} connected from {} (firmware {})", kiosk_id_, remote_,
               hello.firmware_version().empty() ? "?" : hello.firmware_version());
    if (hooks_.on_admitted) {
      hooks_.on_admitted(kiosk_id_);
    }
    auto reply = wire::makeEnvelope(nowMs());
    reply.mutable_hello_ack()->set_kiosk_id(kiosk_id_);
    reply.mutable_hello_ack()->set_max_frame_bytes(
        static_cast<std::uint32_t>(options_.max_frame_bytes));
    conn_.send(reply);

    while (!stopped_) {
      deadline_ = std::chrono::steady_clock::now() + options_.idle_timeout;
      env.Clear();
      if (auto err = co_await conn_.read(env)) {
        co_return *err;
      }
      if (auto bad = checkEnvelope(env)) {
        co_return *bad;
      }
      if (auto fatal = co_await dispatch(env)) {
        co_return *fatal;
      }
    }
    co_return close_reason_;
  }

  // Handles one message; returns a reason when the session must end.
  boost::asio::awaitable<std::optional<std::string>> dispatch(const v1::Envelope& env) {
    const auto now = hooks_.clock();
    BusyScope busy(*this);
    switch (env.body_case()) {
      case v1::Envelope::kCardCaptured: {
        auto result = *co_await onWorker([this, &env, now] {
          return service_.handleCaptured(kiosk_id_, env.card_captured(), now);
        });
        if (auto* refusal = std::get_if<Refusal>(&result)) {
          log_->warn("kiosk {}: CardCaptured {} refused: {}", kiosk_id_, env.message_id(),
                     refusal->reason);
          conn_.send(wire::makeAck(env.message_id(), nowMs(), refusal->reason));
        } else {
          auto reply = wire::makeEnvelope(nowMs());
          *reply.mutable_disposition() = std::get<v1::Disposition>(result);
          conn_.send(reply);
        }
        co_return std::nullopt;
      }
      case v1::Envelope::kCardStored: {
        auto refusal = *co_await onWorker([this, &env, now] {
          return service_.handleStored(kiosk_id_, env.card_stored(), now);
        });
        if (refusal) {
          log_->warn("kiosk {}: CardStored {} refused: {}", kiosk_id_, env.message_id(),
                     refusal->reason);
        }
        conn_.send(wire::makeAck(env.message_id(), nowMs(), refusal ? refusal->reason : ""));
        co_return std::nullopt;
      }
      case v1::Envelope::kHeartbeat: {
        co_await onWorker([this, &env, now] {
          service_.handleHeartbeat(kiosk_id_, env.heartbeat(), now);
          return true;
        });
        co_return std::nullopt;
      }
      case v1::Envelope::kAck:
        co_return std::nullopt;
      default:
        co_return "unexpected " + wire::bodyName(env) + " from a kiosk";
    }
  }

  std::optional<std::string> checkEnvelope(const v1::Envelope& env) const {
    if (env.version() != v1::PROTOCOL_VERSION_1) {
      return "unsupported protocol version " + std::to_string(env.version());
    }
    if (env.message_id().empty()) {
      return "message without an id";
    }
    return std::nullopt;
  }

  // Marks the session busy for its lifetime. While the cloud works for a kiosk, the session
  // reads nothing, so the kiosk's silence says nothing about the kiosk: the idle clock stops and
  // restarts when the work ends. Declare it as a named local around a worker call.
  class BusyScope {
   public:
    explicit BusyScope(KioskSession& session) : session_(session) { session_.busy_ = true; }
    ~BusyScope() {
      session_.busy_ = false;
      session_.deadline_ = std::chrono::steady_clock::now() + session_.options_.idle_timeout;
    }
    BusyScope(const BusyScope&) = delete;
    BusyScope& operator=(const BusyScope&) = delete;

   private:
    KioskSession& session_;
  };

  // Runs a blocking call on the worker pool; awaiting it resumes on the session's executor with
  // the call's result (or rethrows its exception). A plain initiation, not a coroutine lambda:
  // GCC 12 mishandles the captures of lambdas that are coroutines.
  template <class F>
  auto onWorker(F fn) {
    using R = decltype(fn());
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                       void(std::exception_ptr, std::optional<R>)>(
        [work = work_](auto handler, F call) {
          boost::asio::post(work, [handler = std::move(handler), call = std::move(call)]() mutable {
            std::optional<R> result;
            std::exception_ptr error;
            try {
              result.emplace(call());
            } catch (...) {
              error = std::current_exception();
            }
            auto home = boost::asio::get_associated_executor(handler);
            boost::asio::post(home, [handler = std::move(handler), error,
                                     result = std::move(result)]() mutable {
              std::move(handler)(error, std::move(result));
            });
          });
        },
        boost::asio::use_awaitable, std::move(fn));
  }

  boost::asio::awaitable<void> watchdog() {
    auto self = this->shared_from_this();
    while (!stopped_) {
      watchdog_.expires_at(deadline_);
      boost::system::error_code ec;
      co_await watchdog_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (stopped_) {
        break;
      }
      if (busy_) {
        // Check again one idle period from now; BusyScope restarts the clock when work ends.
        deadline_ = std::max(deadline_, std::chrono::steady_clock::now() + options_.idle_timeout);
        continue;
      }
      if (std::chrono::steady_clock::now() >= deadline_) {
        shutdown(kiosk_id_.empty() ? "no Hello in time" : "idle timeout");
      }
    }
  }

  void shutdown(const std::string& reason) {
    if (stopped_) {
      return;
    }
    stopped_ = true;
    close_reason_ = reason;
    // An orderly end is news; a kiosk breaking the protocol or being refused is a warning.
    const bool orderly = reason == "End of file" || reason == "stream truncated" ||
                         reason.rfind("cloud shutting down", 0) == 0 ||
                         reason.rfind("replaced by", 0) == 0;
    log_->log(orderly ? spdlog::level::info : spdlog::level::warn, "session {} ({}) closed: {}",
              kiosk_id_.empty() ? "-" : kiosk_id_, remote_, reason);
    conn_.close();
    watchdog_.cancel();
    try {
      boost::beast::get_lowest_layer(conn_.stream()).close();
    } catch (const std::exception&) {
      // Already closed by the peer.
    }
  }

  std::int64_t nowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               hooks_.clock().time_since_epoch())
        .count();
  }

  wire::Connection<Stream> conn_;
  std::string certificate_cn_;
  std::string remote_;
  DepositService& service_;
  boost::asio::any_io_executor work_;
  SessionOptions options_;
  SessionHooks hooks_;
  boost::asio::steady_timer watchdog_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::steady_clock::time_point deadline_;
  std::string kiosk_id_;
  bool stopped_ = false;
  bool busy_ = false;
  std::string close_reason_;
};

}  // namespace lostcard::cloud
