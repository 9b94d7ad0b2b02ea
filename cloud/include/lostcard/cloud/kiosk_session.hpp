#pragma once
// One kiosk's connection to the cloud, from its Hello to its close.
//
// Written against any Boost.Asio async stream, so tests run it over in-memory streams; the
// gateway runs it over TLS. Blocking work (recognition, database) runs on the worker pool; the
// session handles one message at a time, so a kiosk that sends faster than the cloud works
// waits in TCP's window instead of the cloud buffering its images.
//
// A session ends, with its reason logged, when the peer closes, on an I/O error, a malformed,
// oversized or unexpected frame (a message only the cloud sends), a missed Hello or an idle
// timeout. A message type this cloud does not know (from a newer kiosk) is answered with an
// error Ack, "unsupported message (...)", and the session goes on. Ending one session never
// touches another. drain() ends it gracefully: the message in hand is answered first.
//
// Back-pressure: a CardCaptured first takes a place in hooks.recognition_places (a semaphore
// the gateway shares among its sessions); without a free place the session waits, reading
// nothing, so its kiosk waits too. While busy it sends its kiosk an empty Heartbeat every
// options.busy_keepalive, so the kiosk can tell a busy cloud from a dead one.
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
#include <google/protobuf/unknown_field_set.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "lostcard/cloud/async_semaphore.hpp"
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
  // Once the cloud has worked this long for a kiosk (reading nothing from it), an empty
  // Heartbeat, and another each time this passes while the work lasts, tells the kiosk the cloud
  // is alive; 0: none. Keep it well below the kiosks' peer timeout.
  std::chrono::milliseconds busy_keepalive{2'000};
};

// Called by sessions so the gateway can track which kiosk is online.
struct SessionHooks {
  // A kiosk was admitted; the gateway closes an older session of the same kiosk.
  std::function<void(const std::string& kiosk_id)> on_admitted;
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
  // Places for recognitions waiting or running on the workers, shared by every session (on the
  // sessions' executor); null: no limit.
  AsyncSemaphore* recognition_places = nullptr;
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
        keepalive_(conn_.get_executor()),
        log_(wire::componentLogger("cloud.session")) {}

  // Runs the session to its end; returns the reason it ended.
  boost::asio::awaitable<std::string> run() {
    auto self = this->shared_from_this();
    boost::asio::co_spawn(conn_.get_executor(), [self]() { return self->conn_.writeLoop(); },
                          boost::asio::detached);
    deadline_ = std::chrono::steady_clock::now() + options_.hello_timeout;
    boost::asio::co_spawn(conn_.get_executor(), [self]() { return self->watchdog(); },
                          boost::asio::detached);
    if (options_.busy_keepalive.count() > 0) {
      boost::asio::co_spawn(conn_.get_executor(), [self]() { return self->keepalive(); },
                            boost::asio::detached);
    }
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

  // Ends the session gracefully (the cloud stopping): once the answers already given are
  // written when no message is in hand; otherwise once that message is handled and its answer
  // written. A wait for a recognition place is given up (the kiosk resends that message to the
  // next cloud). A message read after drain() is not handled.
  void drain() {
    if (stopped_) {
      return;
    }
    draining_ = true;
    if (place_ticket_.waiting()) {
      place_ticket_.cancel();
    } else if (!busy_) {
      auto self = this->shared_from_this();
      boost::asio::co_spawn(conn_.get_executor(), [self]() { return self->closeWhenWritten(); },
                            boost::asio::detached);
    }
  }

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
    std::optional<BusyScope> admitting(std::in_place, *this);
    auto admitted = *co_await onWorker([this, &hello] {
      return service_.admitKiosk(hello, certificate_cn_);
    });
    admitting.reset();  // idle from here until the kiosk's next message (drain, keepalive)
    if (auto* refusal = std::get_if<Refusal>(&admitted)) {
      co_return "refused: " + refusal->reason;
    }
    if (draining_) {
      co_return "cloud shutting down";
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
      if (draining_) {
        // Arrived after drain(): not in hand; the kiosk sends it again to the next cloud.
        co_await flushWrites();
        co_return "cloud shutting down";
      }
      if (auto fatal = co_await dispatch(env)) {
        co_return *fatal;
      }
      if (draining_) {
        co_await flushWrites();
        co_return "cloud shutting down (drained: the message in hand was answered)";
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
        // A place among the recognitions waiting or running; none free: wait, reading nothing.
        AsyncSemaphore::Permit place;
        if (auto* places = hooks_.recognition_places) {
          if (places->waiting() > 0 || places->holders() >= places->capacity()) {
            log_->info("kiosk {}: deposit {} waits for a recognition place ({} waiting)",
                       kiosk_id_, env.card_captured().deposit_id(), places->waiting());
          }
          place = co_await places->acquire(&place_ticket_);
          if (!place) {
            co_return "cloud shutting down (while waiting for a recognition place)";
          }
        }
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
        // The kiosk's proof that the link is alive (its peer timeout).
        conn_.send(wire::makeAck(env.message_id(), nowMs()));
        co_return std::nullopt;
      }
      case v1::Envelope::kInventory: {
        auto refusal = *co_await onWorker([this, &env, now] {
          return service_.handleInventory(kiosk_id_, env.inventory(), now);
        });
        if (refusal) {
          log_->warn("kiosk {}: Inventory {} refused: {}", kiosk_id_, env.message_id(),
                     refusal->reason);
        }
        conn_.send(wire::makeAck(env.message_id(), nowMs(), refusal ? refusal->reason : ""));
        co_return std::nullopt;
      }
      case v1::Envelope::kPickupRequest: {
        // Answered with a PickupAnswer, or an error Ack when malformed. The code is never logged.
        const auto result = *co_await onWorker([this, &env, now] {
          return service_.handlePickup(kiosk_id_, env.pickup_request(), now);
        });
        answer(env, result, [](v1::Envelope& out) { return out.mutable_pickup_answer(); });
        co_return std::nullopt;
      }
      case v1::Envelope::kPickupDone:
      case v1::Envelope::kBinEmptied:
      case v1::Envelope::kReturnCollected: {
        // Durable reports: acked once recorded (an error Ack when refused for good).
        auto refusal = *co_await onWorker([this, &env, now] {
          return env.has_pickup_done()
                     ? service_.handlePickupDone(kiosk_id_, env.pickup_done(), now)
                 : env.has_bin_emptied()
                     ? service_.handleBinEmptied(kiosk_id_, env.bin_emptied(), now)
                     : service_.handleReturnCollected(kiosk_id_, env.return_collected(), now);
        });
        if (refusal) {
          log_->warn("kiosk {}: {} {} refused: {}", kiosk_id_, wire::bodyName(env),
                     env.message_id(), refusal->reason);
        }
        conn_.send(wire::makeAck(env.message_id(), nowMs(), refusal ? refusal->reason : ""));
        co_return std::nullopt;
      }
      case v1::Envelope::kOperatorAuthRequest: {
        // Answered with an OperatorAuthAnswer, or an error Ack when malformed. Never the code.
        const auto result = *co_await onWorker([this, &env, now] {
          return service_.handleOperatorAuth(kiosk_id_, env.operator_auth_request(), now);
        });
        answer(env, result, [](v1::Envelope& out) { return out.mutable_operator_auth_answer(); });
        co_return std::nullopt;
      }
      case v1::Envelope::kRestockCheck: {
        // Answered with a RestockCheckAnswer, or an error Ack when malformed. Never the number.
        const auto result = *co_await onWorker([this, &env, now] {
          return service_.handleRestockCheck(kiosk_id_, env.restock_check(), now);
        });
        answer(env, result, [](v1::Envelope& out) { return out.mutable_restock_check_answer(); });
        co_return std::nullopt;
      }
      case v1::Envelope::kAck:
        co_return std::nullopt;
      case v1::Envelope::BODY_NOT_SET: {
        // A message this cloud's schema does not have: a newer kiosk's. Refused with an error
        // Ack (final for the kiosk) and the session goes on, so kiosks can be upgraded first.
        const std::string what = "unsupported message (" + unknownBody(env) + ")";
        log_->warn("kiosk {}: message {}: {}; answered with an error Ack", kiosk_id_,
                   env.message_id(), what);
        conn_.send(wire::makeAck(env.message_id(), nowMs(), what));
        co_return std::nullopt;
      }
      default:
        co_return "unexpected " + wire::bodyName(env) + " from a kiosk";
    }
  }

  // Sends the answer to a request (`body` picks its field in a fresh envelope), or an error Ack
  // with the reason when the request was refused as malformed. Never logs the request's body
  // (it holds a code or a card number).
  template <class Answer, class Body>
  void answer(const v1::Envelope& request, const std::variant<Answer, Refusal>& result,
              Body body) {
    if (const auto* refusal = std::get_if<Refusal>(&result)) {
      log_->warn("kiosk {}: {} {} refused: {}", kiosk_id_, wire::bodyName(request),
                 request.message_id(), refusal->reason);
      conn_.send(wire::makeAck(request.message_id(), nowMs(), refusal->reason));
      return;
    }
    auto reply = wire::makeEnvelope(nowMs());
    *body(reply) = std::get<Answer>(result);
    conn_.send(reply);
  }

  // Names an envelope body this cloud does not know by its field numbers: "Envelope field 18".
  static std::string unknownBody(const v1::Envelope& env) {
    const auto& unknown = env.GetReflection()->GetUnknownFields(env);
    if (unknown.field_count() == 0) {
      return "no body";
    }
    std::string numbers;
    for (int i = 0; i < unknown.field_count(); ++i) {
      numbers += (i == 0 ? "" : ",") + std::to_string(unknown.field(i).number());
    }
    return "Envelope field " + numbers;
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
    explicit BusyScope(KioskSession& session) : session_(session) {
      session_.busy_ = true;
      session_.busy_since_ = std::chrono::steady_clock::now();
      session_.keepalive_.cancel();  // keepalive() schedules its first Heartbeat from now
    }
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

  // An empty Heartbeat to the kiosk once the session has been busy for busy_keepalive, and again
  // each busy_keepalive while it stays busy (it reads nothing then, so it acks no heartbeat of
  // the kiosk's); after the HelloAck only. Short work sends none: answers come first. BusyScope
  // wakes this loop when work starts, so the first one is on time.
  boost::asio::awaitable<void> keepalive() {
    auto self = this->shared_from_this();
    const auto period = options_.busy_keepalive;
    auto last_sent = std::chrono::steady_clock::time_point{};
    while (!stopped_) {
      const auto now = std::chrono::steady_clock::now();
      auto next = now + period;  // idle: look again then, or when work starts
      if (busy_ && !kiosk_id_.empty()) {
        const auto due = std::max(busy_since_, last_sent) + period;
        if (now >= due) {
          auto alive = wire::makeEnvelope(nowMs());
          alive.mutable_heartbeat();
          conn_.send(alive);
          last_sent = now;
        } else {
          next = due;
        }
      }
      keepalive_.expires_at(next);
      boost::system::error_code ec;
      co_await keepalive_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
  }

  // Waits until every queued envelope is written (or the connection ends). The connection has
  // no completion signal for its queue, so this looks every few milliseconds; drain only.
  boost::asio::awaitable<void> flushWrites() {
    boost::asio::steady_timer pause(conn_.get_executor());
    while (!stopped_ && !conn_.closed() && conn_.queuedFrames() > 0) {
      pause.expires_after(std::chrono::milliseconds(5));
      boost::system::error_code ec;
      co_await pause.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
  }

  // drain() of an idle session: the answers already queued go out, then the session ends.
  boost::asio::awaitable<void> closeWhenWritten() {
    co_await flushWrites();
    shutdown("cloud shutting down");
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
    keepalive_.cancel();
    place_ticket_.cancel();
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
  boost::asio::steady_timer keepalive_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::steady_clock::time_point deadline_;
  std::string kiosk_id_;
  bool stopped_ = false;
  bool busy_ = false;
  std::chrono::steady_clock::time_point busy_since_;
  bool draining_ = false;
  AsyncSemaphore::Ticket place_ticket_;
  std::string close_reason_;
};

}  // namespace lostcard::cloud
