// AsyncSemaphore's behaviour, driven step by step on one io_context (step() runs what is ready,
// nothing waits on a clock): never more than N holders, places handed on in FIFO order, waits
// ended by Ticket::cancel() and stop().
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <map>
#include <memory>
#include <vector>

#include "lostcard/cloud/async_semaphore.hpp"

namespace asio = boost::asio;
using lostcard::cloud::AsyncSemaphore;

namespace {

// What the tasks saw, in order.
struct Record {
  std::vector<int> granted;  // task ids, in the order they got a place
  std::vector<int> refused;  // task ids whose acquire returned an empty Permit
  std::size_t most_holders = 0;
  std::map<int, std::unique_ptr<asio::steady_timer>> holds;  // a held place until cancelled
};

// Takes a place, keeps it until the test cancels the task's hold timer, then gives it back.
// A plain coroutine function, not a lambda: GCC 12 mishandles coroutine lambdas' captures.
asio::awaitable<void> task(AsyncSemaphore& places, Record& record, int id,
                           AsyncSemaphore::Ticket* ticket) {
  auto permit = co_await places.acquire(ticket);
  if (!permit) {
    record.refused.push_back(id);
    co_return;
  }
  record.granted.push_back(id);
  record.most_holders = std::max(record.most_holders, places.holders());
  auto& hold = record.holds[id];
  const auto executor = co_await asio::this_coro::executor;
  hold = std::make_unique<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  boost::system::error_code ec;
  co_await hold->async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Runs every handler that is ready; an io_context that ran out of work must be restarted first.
void step(asio::io_context& io) {
  io.restart();
  io.poll();
}

void finish(Record& record, int id) { record.holds.at(id)->cancel(); }

asio::awaitable<void> acquireInto(AsyncSemaphore& places, AsyncSemaphore::Permit& out) {
  out = co_await places.acquire();
}

}  // namespace

TEST_CASE("never more than N holders, and places go to waiters first come first served",
          "[async_semaphore]") {
  asio::io_context io;
  AsyncSemaphore places(io.get_executor(), 2);
  Record record;
  for (int id = 0; id < 6; ++id) {
    asio::co_spawn(io, task(places, record, id, nullptr), asio::detached);
  }
  step(io);
  CHECK(record.granted == std::vector<int>{0, 1});
  CHECK(places.holders() == 2);
  CHECK(places.waiting() == 4);

  finish(record, 1);
  step(io);
  CHECK(record.granted == std::vector<int>{0, 1, 2});
  finish(record, 0);
  finish(record, 2);
  step(io);
  CHECK(record.granted == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(places.waiting() == 1);
  finish(record, 4);
  step(io);
  CHECK(record.granted == std::vector<int>{0, 1, 2, 3, 4, 5});
  finish(record, 3);
  finish(record, 5);
  step(io);
  CHECK(places.holders() == 0);
  CHECK(places.waiting() == 0);
  CHECK(record.most_holders == 2);
  CHECK(record.refused.empty());

  // Free again: the next acquire gets its place at once.
  asio::co_spawn(io, task(places, record, 6, nullptr), asio::detached);
  step(io);
  CHECK(record.granted.back() == 6);
  finish(record, 6);
  step(io);
  CHECK(places.holders() == 0);
}

TEST_CASE("a cancelled wait ends empty-handed and keeps no place", "[async_semaphore]") {
  asio::io_context io;
  AsyncSemaphore places(io.get_executor(), 1);
  Record record;
  AsyncSemaphore::Ticket first_waiter;
  AsyncSemaphore::Ticket second_waiter;
  asio::co_spawn(io, task(places, record, 0, nullptr), asio::detached);
  asio::co_spawn(io, task(places, record, 1, &first_waiter), asio::detached);
  asio::co_spawn(io, task(places, record, 2, &second_waiter), asio::detached);
  step(io);
  CHECK(record.granted == std::vector<int>{0});
  CHECK(first_waiter.waiting());
  CHECK(places.waiting() == 2);

  first_waiter.cancel();
  step(io);
  CHECK(record.refused == std::vector<int>{1});
  CHECK_FALSE(first_waiter.waiting());
  CHECK(places.waiting() == 1);
  CHECK(places.holders() == 1);

  // The place skips the cancelled waiter.
  finish(record, 0);
  step(io);
  CHECK(record.granted == std::vector<int>{0, 2});
  CHECK_FALSE(second_waiter.waiting());

  // Cancelling a wait that already got its place changes nothing.
  second_waiter.cancel();
  step(io);
  CHECK(places.holders() == 1);
  finish(record, 2);
  step(io);
  CHECK(places.holders() == 0);
  CHECK(record.most_holders == 1);
}

TEST_CASE("stop() ends every wait and refuses new ones; holders keep their places",
          "[async_semaphore]") {
  asio::io_context io;
  AsyncSemaphore places(io.get_executor(), 1);
  Record record;
  for (int id = 0; id < 3; ++id) {
    asio::co_spawn(io, task(places, record, id, nullptr), asio::detached);
  }
  step(io);
  CHECK(record.granted == std::vector<int>{0});
  CHECK(places.waiting() == 2);

  places.stop();
  step(io);
  CHECK(record.refused == std::vector<int>{1, 2});
  CHECK(places.waiting() == 0);
  CHECK(places.holders() == 1);

  asio::co_spawn(io, task(places, record, 3, nullptr), asio::detached);
  step(io);
  CHECK(record.refused == std::vector<int>{1, 2, 3});

  finish(record, 0);
  step(io);
  CHECK(places.holders() == 0);
  CHECK(record.granted == std::vector<int>{0});
}

TEST_CASE("a Permit can be handed on and released early", "[async_semaphore]") {
  asio::io_context io;
  AsyncSemaphore places(io.get_executor(), 1);
  AsyncSemaphore::Permit kept;
  asio::co_spawn(io, acquireInto(places, kept), asio::detached);
  step(io);
  REQUIRE(kept);
  CHECK(places.holders() == 1);
  AsyncSemaphore::Permit moved = std::move(kept);
  CHECK_FALSE(kept);
  CHECK(places.holders() == 1);
  moved.release();
  CHECK_FALSE(moved);
  CHECK(places.holders() == 0);
}
