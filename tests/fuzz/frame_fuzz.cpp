// libFuzzer target: the frame decoder, as a kiosk session reads a stream (proto/ framing).
//
// The input is the byte stream one peer sends. It is decoded three ways, which must agree:
//  1. FrameReader given every byte at once;
//  2. FrameReader given the bytes in small chunks of varying size (frame boundaries fall
//     anywhere, as TCP delivers them), draining it after each chunk;
//  3. wire::Connection reading it from a stream (boost::beast::test::stream), as the gateway
//     and the kiosk's uplink do, until the stream ends or a frame is refused.
// The same envelopes must come out in the same order, and the stream must end the same way (the
// same error text, or "more needed"). Each envelope decoded must survive encodeFrame() and a
// second decode unchanged. The reader never holds more than it was given.
//
// A small frame limit (4 KiB) makes oversized frames easy to reach.
// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <google/protobuf/util/message_differencer.h>

#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/wire/connection.hpp"
#include "lostcard/wire/framing.hpp"

namespace {

using lostcard::v1::Envelope;
using lostcard::wire::FrameReader;
using lostcard::wire::FrameStatus;

constexpr std::size_t kMaxFrameBytes = 4096;

struct Decoded {
  std::vector<Envelope> envelopes;
  std::optional<std::string> error;  // nullopt: the stream ended with "more needed"
  std::size_t left_over = 0;         // bytes buffered and not consumed at the end
};

// Takes every whole frame out of `reader`; false once it reported an error.
bool drain(FrameReader& reader, Decoded& out) {
  while (true) {
    Envelope env;
    const auto r = reader.next(env);
    if (r.status == FrameStatus::kNeedMore) {
      return true;
    }
    if (r.status == FrameStatus::kError) {
      FUZZ_CHECK(!r.error.empty());
      out.error = r.error;
      return false;
    }
    out.envelopes.push_back(std::move(env));
  }
}

Decoded decodeAtOnce(std::string_view bytes) {
  Decoded out;
  FrameReader reader(kMaxFrameBytes);
  reader.append(bytes);
  drain(reader, out);
  FUZZ_CHECK(reader.buffered() <= bytes.size());
  out.left_over = reader.buffered();
  return out;
}

Decoded decodeInChunks(std::string_view bytes) {
  Decoded out;
  FrameReader reader(kMaxFrameBytes);
  std::size_t pos = 0;
  std::size_t step = 0;
  while (pos < bytes.size()) {
    // 1, 2, 3, 5, 8, 13, 1, ...: boundaries land everywhere, also inside length prefixes.
    static constexpr std::size_t kSizes[] = {1, 2, 3, 5, 8, 13};
    const std::size_t n = std::min(kSizes[step++ % 6], bytes.size() - pos);
    reader.append(bytes.substr(pos, n));
    pos += n;
    if (!drain(reader, out)) {
      return out;
    }
  }
  out.left_over = reader.buffered();
  return out;
}

boost::asio::awaitable<void> readAll(
    lostcard::wire::Connection<boost::beast::test::stream>& conn, Decoded& out,
    std::string& end) {
  while (true) {
    Envelope env;
    if (auto err = co_await conn.read(env)) {
      end = *err;
      co_return;
    }
    out.envelopes.push_back(std::move(env));
  }
}

// The envelopes Connection::read gives from a stream holding `bytes`, read_size bytes per read;
// `end` is what it reports when it stops.
Decoded decodeFromStream(std::string_view bytes, std::size_t read_size, std::string& end) {
  boost::asio::io_context io;
  boost::beast::test::stream stream(io);
  stream.append({bytes.data(), bytes.size()});
  stream.read_size(read_size);
  stream.close_remote();
  lostcard::wire::Connection<boost::beast::test::stream> conn(std::move(stream), kMaxFrameBytes);
  Decoded out;
  boost::asio::co_spawn(io, readAll(conn, out, end), boost::asio::detached);
  io.run();
  return out;
}

void checkSame(const Decoded& a, const Decoded& b) {
  FUZZ_CHECK(a.envelopes.size() == b.envelopes.size());
  for (std::size_t i = 0; i < a.envelopes.size(); ++i) {
    FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(a.envelopes[i],
                                                                   b.envelopes[i]));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lostcard::fuzz::quietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = lostcard::fuzz::asView(data, size);

  const Decoded whole = decodeAtOnce(bytes);
  const Decoded chunked = decodeInChunks(bytes);
  checkSame(whole, chunked);
  FUZZ_CHECK(whole.error == chunked.error);
  if (!whole.error) {
    FUZZ_CHECK(whole.left_over == chunked.left_over);
  }

  // Every decoded envelope is encoded and decoded again unchanged.
  for (const auto& env : whole.envelopes) {
    const std::string frame = lostcard::wire::encodeFrame(env);
    FrameReader again(kMaxFrameBytes + 16);
    again.append(frame);
    Envelope copy;
    FUZZ_CHECK(again.next(copy).status == FrameStatus::kFrame);
    FUZZ_CHECK(again.buffered() == 0);
    FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(env, copy));
  }

  // The connection, reading a few bytes or many at a time, sees the same frames and ends the
  // same way: the reader's error, a frame cut off by the end of the stream, or a clean end.
  std::string end;
  const Decoded streamed = decodeFromStream(bytes, 1 + size % 97, end);
  checkSame(whole, streamed);
  FUZZ_CHECK(!end.empty());
  if (whole.error) {
    FUZZ_CHECK(end == *whole.error);
  } else if (whole.left_over > 0) {
    FUZZ_CHECK(end.rfind("connection ended inside a frame", 0) == 0);
  } else {
    FUZZ_CHECK(end.find("connection ended inside a frame") == std::string::npos);
  }
  return 0;
}
