#include "lostcard/cloud/jpeg_probe.hpp"

#include <cstdint>

namespace lostcard::cloud {
namespace {

// JPEG markers (ITU-T T.81, table B.1) that matter here.
constexpr std::uint8_t kMarkerPrefix = 0xFF;
constexpr std::uint8_t kSoi = 0xD8;
constexpr std::uint8_t kEoi = 0xD9;
constexpr std::uint8_t kSos = 0xDA;
constexpr std::uint8_t kTem = 0x01;
constexpr std::uint8_t kRst0 = 0xD0;
constexpr std::uint8_t kRst7 = 0xD7;

// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
bool isStartOfFrame(std::uint8_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

std::optional<JpegInfo> fail(std::string* why, const char* reason) {
  if (why != nullptr) {
    *why = reason;
  }
  return std::nullopt;
}

}  // namespace

std::optional<JpegInfo> probeJpeg(std::string_view bytes, std::string* why) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  const auto be16 = [&](std::size_t i) { return (byte(i) << 8) | byte(i + 1); };

  if (bytes.size() < 2 || byte(0) != kMarkerPrefix || byte(1) != kSoi) {
    return fail(why, "not a JPEG");
  }
  std::size_t pos = 2;
  while (true) {
    if (pos >= bytes.size()) {
      return fail(why, "truncated before the frame header");
    }
    if (byte(pos) != kMarkerPrefix) {
      return fail(why, "malformed JPEG: expected a marker");
    }
    // Any number of 0xFF fill bytes may precede a marker code.
    while (pos < bytes.size() && byte(pos) == kMarkerPrefix) {
      ++pos;
    }
    if (pos >= bytes.size()) {
      return fail(why, "truncated before the frame header");
    }
    const std::uint8_t marker = byte(pos++);
    if (marker == kTem || (marker >= kRst0 && marker <= kRst7)) {
      continue;  // standalone markers carry no length
    }
    if (marker == kSoi || marker == 0x00) {
      return fail(why, "malformed JPEG: unexpected marker");
    }
    if (marker == kEoi) {
      return fail(why, "JPEG ends before a frame header");
    }
    if (marker == kSos) {
      return fail(why, "malformed JPEG: scan before the frame header");
    }
    if (pos + 2 > bytes.size()) {
      return fail(why, "truncated segment");
    }
    const std::size_t length = be16(pos);  // includes the two length bytes
    if (length < 2) {
      return fail(why, "malformed JPEG: bad segment length");
    }
    if (pos + length > bytes.size()) {
      return fail(why, "truncated segment");
    }
    if (isStartOfFrame(marker)) {
      // length(2) precision(1) height(2) width(2) components(1) ...
      if (length < 8) {
        return fail(why, "malformed JPEG: short frame header");
      }
      JpegInfo info{};
      info.height_px = be16(pos + 3);
      info.width_px = be16(pos + 5);
      info.components = byte(pos + 7);
      if (info.width_px == 0 || info.height_px == 0) {
        return fail(why, "JPEG frame has no width or height");
      }
      if (info.components != 1 && info.components != 3 && info.components != 4) {
        return fail(why, "JPEG has an unsupported number of components");
      }
      if (length < 8 + 3 * static_cast<std::size_t>(info.components)) {
        return fail(why, "malformed JPEG: short frame header");
      }
      return info;
    }
    pos += length;
  }
}

bool endsWithEndOfImage(std::string_view bytes) {
  // Entropy-coded data stuffs a 0x00 after every 0xFF, so FF D9 there is the marker itself; an
  // EXIF thumbnail's own EOI comes before the main frame header, which must come first.
  const std::size_t eoi = bytes.rfind(std::string_view("\xFF\xD9", 2));
  if (eoi == std::string_view::npos) {
    return false;
  }
  for (std::size_t i = 2; i + 1 < eoi; ++i) {
    if (static_cast<std::uint8_t>(bytes[i]) == kMarkerPrefix &&
        isStartOfFrame(static_cast<std::uint8_t>(bytes[i + 1]))) {
      return true;
    }
  }
  return false;
}

}  // namespace lostcard::cloud
