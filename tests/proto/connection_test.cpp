#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include "lostcard/wire/connection.hpp"
#include "lostcard/wire/envelope.hpp"

namespace asio = boost::asio;
using Stream = boost::beast::test::stream;
using lostcard::wire::Connection;
namespace v1 = lostcard::v1;

TEST_CASE("a connection writes queued envelopes in order and reads them back", "[connection]") {
  asio::io_context io;
  Stream a(io);
  Stream b(io);
  a.connect(b);
  Connection<Stream> sender(std::move(a), 1 << 20);
  Connection<Stream> receiver(std::move(b), 1 << 20);

  std::vector<std::string> ids;
  asio::co_spawn(io, sender.writeLoop(), asio::detached);
  for (int i = 0; i < 3; ++i) {
    auto env = lostcard::wire::makeEnvelope(i);
    env.mutable_heartbeat()->set_slots_used(i);
    ids.push_back(env.message_id());
    sender.send(env);
  }
  std::vector<v1::Envelope> got;
  std::optional<std::string> end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        while (true) {
          v1::Envelope env;
          auto err = co_await receiver.read(env);
          if (err) {
            end = err;
            co_return;
          }
          got.push_back(env);
          if (got.size() == 3) {
            sender.close();
            sender.stream().close();
          }
        }
      },
      asio::detached);
  io.run();
  REQUIRE(got.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(got[i].message_id() == ids[i]);
  }
  REQUIRE(end);
}

TEST_CASE("an oversized frame ends the read with a reason", "[connection]") {
  asio::io_context io;
  Stream a(io);
  Stream b(io);
  a.connect(b);
  Connection<Stream> receiver(std::move(b), 100);
  auto env = lostcard::wire::makeEnvelope(1);
  env.mutable_card_captured()->add_front()->set_jpeg(std::string(5000, 'x'));
  a.write_some(asio::buffer(lostcard::wire::encodeFrame(env)));

  std::optional<std::string> end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        v1::Envelope got;
        end = co_await receiver.read(got);
      },
      asio::detached);
  io.run();
  REQUIRE(end);
  CHECK_THAT(*end, Catch::Contains("exceeds the limit"));
}

TEST_CASE("a read error ends the read", "[connection]") {
  asio::io_context io;
  boost::beast::test::fail_count fc(1);
  Stream b(io, fc);
  Connection<Stream> receiver(std::move(b), 100);
  std::optional<std::string> end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        v1::Envelope got;
        end = co_await receiver.read(got);
      },
      asio::detached);
  io.run();
  REQUIRE(end);
}
