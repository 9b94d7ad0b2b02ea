#pragma once
// Reads a JPEG's frame header (SOI, then the segments up to the first SOFn marker) without
// decoding any pixels, so untrusted images can be checked against size limits before a decoder
// allocates memory for them.
//
//   std::string why;
//   auto info = probeJpeg(bytes, &why);
//   if (!info) { reject(why); }                       // "not a JPEG", "truncated segment", ...
//   else if (info->width_px > 6000) { reject(...); }
#include <optional>
#include <string>
#include <string_view>

namespace lostcard::cloud {

struct JpegInfo {
  int width_px;
  int height_px;
  int components;  // 1 (grey), 3 (YCbCr/RGB) or 4 (CMYK)
};

// The frame size of the JPEG in `bytes`; nullopt (with the reason in *why when given) for
// anything that is not a well-formed JPEG header: missing SOI, truncated or malformed segments,
// no frame header before the scan, a zero width or height.
std::optional<JpegInfo> probeJpeg(std::string_view bytes, std::string* why = nullptr);

// Whether the JPEG ends with its end-of-image marker (trailing bytes after it allowed) after
// its frame header. A photo cut off in transfer or storage lacks it; decoders would still show
// its first rows and grey out the rest, which must not pass for the card.
bool endsWithEndOfImage(std::string_view bytes);

}  // namespace lostcard::cloud
