// libFuzzer target: what the cloud keeps of a difficult card's photos (image_redaction.hpp):
// redactForKeeping() on a fuzzed JPEG given as both a front and a back frame. Difficult cards
// are the ones a malicious finder controls best (anything unreadable ends there), and their
// photos are the only ones the cloud keeps, so this path must neither crash nor keep a photo
// whose signature band (security code) is not blacked out.
//
//   byte 0    the face the number was read on: 1 front, 2 back, anything else none (every face
//             is blacked out)
//   the rest  the JPEG
//
// Checked: each of the two frames is either kept or not kept (with a reason and no long digit
// run in it), never both; a kept frame is a JPEG that decodes; it is blacked out exactly when it
// is not the number's face; and then every row of its signature band is black.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cctype>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/cloud/image_redaction.hpp"

namespace {

using namespace lostcard::cloud;

// A black row after JPEG encoding at kKeptJpegQuality: whole 16-row blocks of zeros come back
// as zeros or within a few levels of them.
constexpr double kBlackLevel = 24;

bool hasLongDigitRun(const std::string& text) {
  std::size_t digits = 0;
  for (const char c : text) {
    digits = std::isdigit(static_cast<unsigned char>(c)) != 0 ? digits + 1 : 0;
    if (digits >= 8) {
      return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lostcard::fuzz::quietLogs();
  cv::setNumThreads(0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  std::optional<CardFace> number_face;
  if (data[0] == 1) {
    number_face = CardFace::kFront;
  } else if (data[0] == 2) {
    number_face = CardFace::kBack;
  }
  const std::string jpeg(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Smaller than the service's limits so the fuzzer stays fast; the decode step at the real
  // limits is jpeg_intake_fuzz's.
  ImageLimits limits;
  limits.max_width_px = 1024;
  limits.max_height_px = 1024;

  CardImages images;
  images.front_jpegs = {jpeg};
  images.back_jpegs = {jpeg};
  const RedactedCard kept = redactForKeeping(images, number_face, limits);

  FUZZ_CHECK(kept.frames.size() + kept.not_kept.size() == 2);
  for (const auto& no : kept.not_kept) {
    FUZZ_CHECK(!no.why.empty());
    FUZZ_CHECK(!hasLongDigitRun(no.why));
    for (const auto& yes : kept.frames) {
      FUZZ_CHECK(yes.face != no.face);
    }
  }
  for (const auto& frame : kept.frames) {
    FUZZ_CHECK(frame.blacked_out == (!number_face || *number_face != frame.face));
    const cv::Mat raw(1, static_cast<int>(frame.jpeg.size()), CV_8UC1,
                      const_cast<char*>(frame.jpeg.data()));
    const cv::Mat image = cv::imdecode(raw, cv::IMREAD_GRAYSCALE);
    FUZZ_CHECK(!image.empty());
    if (frame.blacked_out) {
      for (const cv::Range& rows : signatureBandRows(image.rows)) {
        double max_level = 0;
        cv::minMaxLoc(image.rowRange(rows), nullptr, &max_level);
        FUZZ_CHECK(max_level <= kBlackLevel);
      }
    }
  }
  return 0;
}
