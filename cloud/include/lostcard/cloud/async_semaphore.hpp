#pragma once
// A counting semaphore for coroutines on one Asio executor: at most `capacity` holders at a
// time; the others wait their turn in FIFO order, suspended (no thread blocks). The cloud uses it
// to bound the recognitions waiting or running on the worker pool: a kiosk session that finds no
// free place waits here, reading nothing more from its kiosk, so the kiosk waits rather than the
// cloud dropping work.
//
//   AsyncSemaphore places(io.get_executor(), 8);
//   ...                                               // inside a coroutine on that executor:
//   AsyncSemaphore::Ticket ticket;                    // lets other code cancel this wait
//   AsyncSemaphore::Permit permit = co_await places.acquire(&ticket);
//   if (!permit) { co_return; }                       // cancelled, or the semaphore stopped
//   ... do the work ...                               // the place frees when `permit` dies
//
//   ticket.cancel();   // elsewhere: the pending acquire() returns an empty Permit
//   places.stop();     // every waiter gets an empty Permit; later acquires too
//
// Not thread-safe: use it (and Permits and Tickets) only from the executor's thread. It must
// outlive its Permits and pending waits (stop() it and let the waiters return first).
// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>

namespace lostcard::cloud {

class AsyncSemaphore {
 private:
  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& executor)
        : wake(executor, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer wake;
    // Set by release() when the place passes to this waiter.
    bool granted = false;
    bool done = false;
  };

 public:
  // One place held; released when destroyed (or by release()). Empty when the wait failed.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        semaphore_ = std::exchange(other.semaphore_, nullptr);
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    explicit operator bool() const { return semaphore_ != nullptr; }
    void release() {
      if (auto* s = std::exchange(semaphore_, nullptr)) {
        s->release();
      }
    }

   private:
    friend class AsyncSemaphore;
    explicit Permit(AsyncSemaphore* semaphore) : semaphore_(semaphore) {}
    AsyncSemaphore* semaphore_ = nullptr;
  };

  // A handle on one pending acquire(), for code that must be able to end the wait (a session
  // being closed). Cancelling a wait that already got its place does nothing: that acquire()
  // returns its Permit, to be dropped by its caller.
  class Ticket {
   public:
    void cancel() {
      if (semaphore_ != nullptr && waiter_) {
        semaphore_->cancelWait(waiter_);
      }
    }
    // True while the acquire() it was given to is suspended, waiting for a place.
    bool waiting() const { return waiter_ && !waiter_->done; }

   private:
    friend class AsyncSemaphore;
    AsyncSemaphore* semaphore_ = nullptr;
    std::shared_ptr<Waiter> waiter_;
  };

  AsyncSemaphore(boost::asio::any_io_executor executor, std::size_t capacity)
      : executor_(std::move(executor)), capacity_(std::max<std::size_t>(capacity, 1)) {}
  AsyncSemaphore(const AsyncSemaphore&) = delete;
  AsyncSemaphore& operator=(const AsyncSemaphore&) = delete;

  // A Permit at once when a place is free and nobody waits; otherwise after every earlier waiter
  // got its turn. An empty Permit when the wait was cancelled (through `ticket`) or the
  // semaphore is stopped.
  boost::asio::awaitable<Permit> acquire(Ticket* ticket = nullptr) {
    if (stopped_) {
      co_return Permit{};
    }
    if (holders_ < capacity_ && waiters_.empty()) {
      ++holders_;
      co_return Permit{this};
    }
    auto waiter = std::make_shared<Waiter>(executor_);
    waiters_.push_back(waiter);
    if (ticket != nullptr) {
      ticket->semaphore_ = this;
      ticket->waiter_ = waiter;
    }
    boost::system::error_code ec;
    co_await waiter->wake.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    waiter->done = true;
    if (waiter->granted) {
      co_return Permit{this};  // release() passed its place on: `holders_` already counts it
    }
    co_return Permit{};
  }

  // Ends every wait with an empty Permit and refuses new ones. Holders keep their places.
  void stop() {
    stopped_ = true;
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiters) {
      w->wake.cancel();
    }
  }

  std::size_t capacity() const { return capacity_; }
  // Places held now (never more than capacity()).
  std::size_t holders() const { return holders_; }
  // Acquires suspended, waiting for a place.
  std::size_t waiting() const { return waiters_.size(); }

 private:
  void release() {
    if (!waiters_.empty()) {
      auto next = waiters_.front();
      waiters_.pop_front();
      next->granted = true;
      next->wake.cancel();
      return;
    }
    --holders_;
  }

  void cancelWait(const std::shared_ptr<Waiter>& waiter) {
    auto it = std::find(waiters_.begin(), waiters_.end(), waiter);
    if (it == waiters_.end()) {
      return;  // granted already, stopped, or never waited
    }
    waiters_.erase(it);
    waiter->wake.cancel();
  }

  boost::asio::any_io_executor executor_;
  std::size_t capacity_;
  std::size_t holders_ = 0;
  std::deque<std::shared_ptr<Waiter>> waiters_;
  bool stopped_ = false;
};

}  // namespace lostcard::cloud
