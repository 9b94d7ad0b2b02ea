#pragma once
// A framed Envelope connection over any Boost.Asio async stream: a TLS socket in the daemons, an
// in-memory boost::beast::test::stream in tests.
//
// Reads are pulled by one coroutine (`co_await conn.read(env)`); writes are queued from anywhere
// on the connection's executor (`conn.send(env)`) and written in order by `writeLoop()`, so two
// writes never overlap on the stream (which TLS streams forbid).
//
//   Connection<Stream> conn(std::move(stream), max_frame_bytes);
//   co_spawn(ex, conn.writeLoop(), detached);
//   while (true) {
//     v1::Envelope env;
//     auto err = co_await conn.read(env);
//     if (err) { log(*err); break; }   // peer closed, I/O error or a malformed frame
//     ...
//     conn.send(reply);
//   }
//   conn.close();
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <deque>
#include <optional>
#include <string>

#include "lostcard/v1/kiosk_stream.pb.h"
#include "lostcard/wire/framing.hpp"

namespace lostcard::wire {

template <class Stream>
class Connection {
 public:
  using executor_type = typename Stream::executor_type;

  Connection(Stream stream, std::size_t max_frame_bytes)
      : stream_(std::move(stream)),
        reader_(max_frame_bytes),
        wake_(stream_.get_executor()) {
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  Stream& stream() { return stream_; }
  executor_type get_executor() { return stream_.get_executor(); }

  // Reads the next Envelope. Returns an error text when the connection cannot go on (the peer
  // closed it, an I/O error, or a malformed or oversized frame).
  boost::asio::awaitable<std::optional<std::string>> read(v1::Envelope& out) {
    while (true) {
      auto result = reader_.next(out);
      if (result.status == FrameStatus::kFrame) {
        co_return std::nullopt;
      }
      if (result.status == FrameStatus::kError) {
        co_return result.error;
      }
      char chunk[16 * 1024];
      boost::system::error_code ec;
      std::size_t n = co_await stream_.async_read_some(
          boost::asio::buffer(chunk), boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (n > 0) {
        reader_.append(chunk, n);
      }
      if (ec) {
        if (reader_.buffered() > 0) {
          co_return "connection ended inside a frame (" + ec.message() + ")";
        }
        co_return ec.message();
      }
    }
  }

  // Queues an Envelope for writing. Must be called on the connection's executor.
  void send(const v1::Envelope& env) {
    if (closed_) {
      return;
    }
    queue_.push_back(encodeFrame(env));
    wake_.cancel_one();
  }

  // Writes queued frames until close() or a write error.
  boost::asio::awaitable<void> writeLoop() {
    while (!closed_) {
      if (queue_.empty()) {
        boost::system::error_code ec;
        co_await wake_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        continue;
      }
      boost::system::error_code ec;
      co_await boost::asio::async_write(
          stream_, boost::asio::buffer(queue_.front()),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (ec) {
        write_error_ = ec.message();
        closed_ = true;
        break;
      }
      queue_.pop_front();
    }
  }

  // Stops the write loop; the owner closes the underlying stream.
  void close() {
    closed_ = true;
    wake_.cancel();
  }

  bool closed() const { return closed_; }
  const std::string& writeError() const { return write_error_; }
  std::size_t queuedFrames() const { return queue_.size(); }

 private:
  Stream stream_;
  FrameReader reader_;
  boost::asio::steady_timer wake_;
  std::deque<std::string> queue_;
  bool closed_ = false;
  std::string write_error_;
};

}  // namespace lostcard::wire
