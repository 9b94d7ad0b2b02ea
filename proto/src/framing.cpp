#include "lostcard/wire/framing.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <algorithm>

namespace lostcard::wire {

namespace pbio = google::protobuf::io;

// A varint32 length prefix is at most 5 bytes; protobuf tolerates up to 10 (sign-extended).
constexpr std::size_t kMaxPrefixBytes = 10;

std::string encodeFrame(const google::protobuf::MessageLite& message) {
  std::string out;
  {
    pbio::StringOutputStream stream(&out);
    google::protobuf::util::SerializeDelimitedToZeroCopyStream(message, &stream);
  }
  return out;
}

void FrameReader::append(const void* data, std::size_t size) {
  // Compact lazily so a long session does not grow the buffer without bound.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(static_cast<const char*>(data), size);
}

FrameResult FrameReader::next(google::protobuf::MessageLite& out) {
  if (failed_) {
    return {FrameStatus::kError, "stream already failed"};
  }
  const auto* data = reinterpret_cast<const std::uint8_t*>(buffer_.data()) + consumed_;
  const std::size_t available = buffer_.size() - consumed_;
  if (available == 0) {
    return {FrameStatus::kNeedMore, {}};
  }

  pbio::CodedInputStream prefix(data, static_cast<int>(std::min(available, kMaxPrefixBytes)));
  std::uint32_t length = 0;
  if (!prefix.ReadVarint32(&length)) {
    if (available < kMaxPrefixBytes) {
      // Either a truncated prefix that more bytes will complete, or garbage we will see as
      // such once 10 bytes are here.
      const bool all_continuation = std::all_of(
          data, data + available, [](std::uint8_t b) { return (b & 0x80) != 0; });
      if (all_continuation) {
        return {FrameStatus::kNeedMore, {}};
      }
    }
    failed_ = true;
    return {FrameStatus::kError, "malformed frame length prefix"};
  }
  if (length > max_frame_bytes_) {
    failed_ = true;
    return {FrameStatus::kError, "frame of " + std::to_string(length) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(max_frame_bytes_) + " bytes"};
  }
  const std::size_t frame_bytes = static_cast<std::size_t>(prefix.CurrentPosition()) + length;
  if (available < frame_bytes) {
    buffer_.reserve(consumed_ + frame_bytes);
    return {FrameStatus::kNeedMore, {}};
  }

  pbio::CodedInputStream body(data, static_cast<int>(frame_bytes));
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromCodedStream(&out, &body, &clean_eof) ||
      body.CurrentPosition() != static_cast<int>(frame_bytes)) {
    failed_ = true;
    return {FrameStatus::kError, "malformed " + out.GetTypeName() + " frame of " +
                                     std::to_string(length) + " bytes"};
  }
  consumed_ += frame_bytes;
  return {FrameStatus::kFrame, {}};
}

}  // namespace lostcard::wire
