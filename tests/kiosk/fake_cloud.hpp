#pragma once
// Test helpers for the kiosk's uplink: a connector that makes in-memory stream pairs
// (boost::beast::test::stream) and keeps the cloud's end of each, so a test plays the cloud
// in-process: it sees every envelope the kiosk sends and answers as it likes.
//
//   asio::io_context io;
//   FakeCloud cloud(io);
//   Uplink<Stream> uplink(io.get_executor(), cloud.connector(), options, handlers);
//   co_spawn(io, uplink.run(), detached);
//   runUntil(io, [&] { return cloud.connections() == 1 && cloud.end(0).got.size() == 1; });
//   cloud.end(0).helloAck();
// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lostcard/kiosk/uplink.hpp"
#include "lostcard/wire/connection.hpp"
#include "lostcard/wire/envelope.hpp"

namespace lostcard::kiosk::test {

using Stream = boost::beast::test::stream;

// The cloud's end of one connection: everything it read, and how the reading ended.
template <class S>
struct BasicCloudEnd {
  std::shared_ptr<wire::Connection<S>> conn;
  std::vector<v1::Envelope> got;
  std::optional<std::string> ended;

  void send(const v1::Envelope& env) { conn->send(env); }
  void helloAck(std::uint32_t max_frame_bytes = 0) {
    auto env = wire::makeEnvelope(0);
    env.mutable_hello_ack()->set_kiosk_id("kiosk-test");
    env.mutable_hello_ack()->set_max_frame_bytes(max_frame_bytes);
    send(env);
  }
  void hangUp() {
    conn->close();
    auto& lowest = boost::beast::get_lowest_layer(conn->stream());
    boost::system::error_code ec;
    if constexpr (requires { lowest.close(ec); }) {
      lowest.close(ec);
    } else {
      lowest.close();
    }
  }
  // The envelopes of one body type, in arrival order.
  std::vector<v1::Envelope> all(v1::Envelope::BodyCase type) const {
    std::vector<v1::Envelope> out;
    for (const auto& env : got) {
      if (env.body_case() == type) {
        out.push_back(env);
      }
    }
    return out;
  }
};

using CloudEnd = BasicCloudEnd<Stream>;

// Starts reading and writing on the cloud's end of a new connection.
template <class S>
std::shared_ptr<BasicCloudEnd<S>> startCloudEnd(boost::asio::io_context& io, S stream) {
  namespace asio = boost::asio;
  auto end = std::make_shared<BasicCloudEnd<S>>();
  end->conn = std::make_shared<wire::Connection<S>>(std::move(stream), 64 << 20);
  asio::co_spawn(
      io, [end]() -> asio::awaitable<void> { co_await end->conn->writeLoop(); }, asio::detached);
  asio::co_spawn(
      io,
      [end]() -> asio::awaitable<void> {
        while (true) {
          v1::Envelope env;
          auto error = co_await end->conn->read(env);
          if (error) {
            end->ended = error;
            co_return;
          }
          end->got.push_back(env);
        }
      },
      asio::detached);
  return end;
}

class FakeCloud {
 public:
  explicit FakeCloud(boost::asio::io_context& io) : io_(io) {}
  ~FakeCloud() {
    for (auto& end : ends_) {
      end->hangUp();
    }
  }

  Connector<Stream> connector() {
    namespace asio = boost::asio;
    return [this]() -> asio::awaitable<Connected<Stream>> {
      Stream kiosk_end(io_);
      Stream cloud_end(io_);
      kiosk_end.connect(cloud_end);
      ends_.push_back(startCloudEnd(io_, std::move(cloud_end)));
      Connected<Stream> out;
      out.stream.emplace(std::move(kiosk_end));
      co_return out;
    };
  }

  std::size_t connections() const { return ends_.size(); }
  CloudEnd& end(std::size_t i) { return *ends_.at(i); }
  CloudEnd& last() { return *ends_.back(); }
  bool hasGot(std::size_t i, std::size_t n) const {
    return ends_.size() > i && ends_[i]->got.size() >= n;
  }

 private:
  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<CloudEnd>> ends_;
};

// Lets the io_context work until `done` holds. The limit only keeps a broken test from hanging;
// it never decides a passing test.
template <class F>
bool runUntil(boost::asio::io_context& io, F&& done,
              std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    io.run_one_for(std::chrono::milliseconds(20));
    if (io.stopped()) {
      io.restart();
    }
  }
  return true;
}

}  // namespace lostcard::kiosk::test
