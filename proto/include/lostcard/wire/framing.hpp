#pragma once
// Length-delimited framing of lostcard Envelopes.
//
// A frame is protobuf's own delimited encoding: a varint byte count followed by the serialized
// message (google::protobuf::util::SerializeDelimitedToZeroCopyStream). FrameReader takes bytes
// as they arrive from a socket and yields whole Envelopes; it refuses a frame whose announced
// size exceeds the limit before reading its body, so a peer cannot make us buffer more than
// max_frame_bytes.
//
//   FrameReader reader(kDefaultMaxFrameBytes);
//   reader.append(bytes, n);
//   lostcard::v1::Envelope env;
//   while (true) {
//     auto r = reader.next(env);
//     if (r.status == FrameStatus::kNeedMore) break;
//     if (r.status == FrameStatus::kError) { close the session, log r.error; }
//     handle(env);
//   }
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lostcard/v1/kiosk_stream.pb.h"

namespace lostcard::wire {

// Large enough for two faces of a card at a few frames each as JPEG.
inline constexpr std::size_t kDefaultMaxFrameBytes = 16 * 1024 * 1024;

// Encodes one message as a frame (length prefix + message bytes).
std::string encodeFrame(const google::protobuf::MessageLite& message);

enum class FrameStatus { kFrame, kNeedMore, kError };

struct FrameResult {
  FrameStatus status = FrameStatus::kNeedMore;
  std::string error;  // set when status == kError
};

class FrameReader {
 public:
  explicit FrameReader(std::size_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  void append(const void* data, std::size_t size);
  void append(std::string_view bytes) { append(bytes.data(), bytes.size()); }

  // Parses the next whole frame into `out`. After kError the reader is unusable: the stream
  // is out of sync and the session must be closed.
  FrameResult next(google::protobuf::MessageLite& out);

  // Bytes received but not yet consumed.
  std::size_t buffered() const { return buffer_.size() - consumed_; }
  std::size_t maxFrameBytes() const { return max_frame_bytes_; }

 private:
  std::size_t max_frame_bytes_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  bool failed_ = false;
};

}  // namespace lostcard::wire
