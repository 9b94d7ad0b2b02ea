// libFuzzer target: the image intake, what the cloud does with a frame's JPEG bytes before any
// recognition: the size limit on the bytes, probeJpeg() (the frame header read without
// decoding: cloud/include/lostcard/cloud/jpeg_probe.hpp), the limits on the announced width and
// height, the end-of-image check, and only then cv::imdecode, in the order the recognizer's
// decode step takes them (decodeWithinLimits in cloud/src/recognition.cpp) with the
// recognizer's default limits (ImageLimits).
//
// Checked: the probe either gives a plausible frame size or a reason; an image is decoded only
// when the probe let it through, and then the decoder produces exactly the size the probe
// announced (turned by its EXIF orientation at most), so the limits checked before decoding are
// the limits of what gets decoded (a decompression bomb cannot announce a small frame and decode
// to a huge one).
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <string>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/cloud/jpeg_probe.hpp"
#include "lostcard/cloud/recognition.hpp"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lostcard::fuzz::quietLogs();
  cv::setNumThreads(0);  // decode on this thread: one core per fuzzer
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string jpeg(reinterpret_cast<const char*>(data), size);
  const lostcard::cloud::ImageLimits limits;

  std::string why;
  const auto info = lostcard::cloud::probeJpeg(jpeg, &why);
  if (!info) {
    FUZZ_CHECK(!why.empty());
    return 0;
  }
  FUZZ_CHECK(info->width_px > 0 && info->width_px <= 65535);
  FUZZ_CHECK(info->height_px > 0 && info->height_px <= 65535);
  FUZZ_CHECK(info->components == 1 || info->components == 3 || info->components == 4);

  // The recognizer's checks, in its order; any refusal means no decoding at all.
  if (jpeg.size() > limits.max_jpeg_bytes || info->width_px > limits.max_width_px ||
      info->height_px > limits.max_height_px || !lostcard::cloud::endsWithEndOfImage(jpeg)) {
    return 0;
  }
  cv::Mat image;
  try {
    const cv::Mat raw(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data()));
    image = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    image.release();  // "could not be decoded": a bad image, as the recognizer treats it
  }
  if (!image.empty()) {
    // imdecode turns the image as its EXIF orientation says: width and height may swap.
    const bool same = image.cols == info->width_px && image.rows == info->height_px;
    const bool turned = image.cols == info->height_px && image.rows == info->width_px;
    FUZZ_CHECK(same || turned);
  }
  return 0;
}
