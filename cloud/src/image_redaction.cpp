#include "lostcard/cloud/image_redaction.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "lostcard/cloud/jpeg_probe.hpp"
#include "lostcard/cloud/recognition_stages.hpp"

namespace lostcard::cloud {

namespace {

// A photo whose whole picture has the card's aspect within this tolerance is taken for a tight
// crop of the card (as the recognizer does when it finds no outline).
constexpr double kCropAspectTolerance = 0.08;

// The photo decoded after the same checks the recognizer makes before decoding; nullopt with
// the reason otherwise.
std::optional<cv::Mat> decodeWithinLimits(const std::string& jpeg, const ImageLimits& limits,
                                          std::string* why) {
  if (jpeg.size() > limits.max_jpeg_bytes) {
    *why = fmt::format("{} bytes exceed the {} byte limit", jpeg.size(), limits.max_jpeg_bytes);
    return std::nullopt;
  }
  const auto info = probeJpeg(jpeg, why);
  if (!info) {
    return std::nullopt;
  }
  if (info->width_px > limits.max_width_px || info->height_px > limits.max_height_px) {
    *why = fmt::format("{}x{} px exceeds {}x{}", info->width_px, info->height_px,
                       limits.max_width_px, limits.max_height_px);
    return std::nullopt;
  }
  if (!endsWithEndOfImage(jpeg)) {
    *why = "the JPEG is cut off";
    return std::nullopt;
  }
  cv::Mat image;
  try {
    const cv::Mat raw(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data()));
    image = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    image.release();
  }
  if (image.empty()) {
    *why = "the JPEG could not be decoded";
    return std::nullopt;
  }
  return image;
}

bool hasCardAspect(const cv::Mat& image) {
  const double aspect = static_cast<double>(image.cols) / image.rows;
  const double card_aspect = static_cast<double>(kCardWidthPx) / kCardHeightPx;
  return std::abs(aspect / card_aspect - 1.0) <= kCropAspectTolerance;
}

std::string encodeJpeg(const cv::Mat& image) {
  std::vector<unsigned char> out;
  if (!cv::imencode(".jpg", image, out, {cv::IMWRITE_JPEG_QUALITY, kKeptJpegQuality})) {
    throw std::runtime_error("cannot encode a kept frame as JPEG");
  }
  return std::string(out.begin(), out.end());
}

}  // namespace

const char* faceName(CardFace face) { return face == CardFace::kFront ? "front" : "back"; }

std::vector<cv::Range> signatureBandRows(int height_px) {
  if (height_px <= 0) {
    return {};
  }
  const double px_per_mm = height_px / kCardHeightMm;
  const auto widened = [&](double top_mm, double bottom_mm) {
    const int top = static_cast<int>(std::floor(top_mm * px_per_mm));
    const int bottom = static_cast<int>(std::ceil(bottom_mm * px_per_mm));
    return cv::Range(
        std::max(0, top / kJpegBlockRows * kJpegBlockRows),
        std::min(height_px, (bottom + kJpegBlockRows - 1) / kJpegBlockRows * kJpegBlockRows));
  };
  cv::Range upright = widened(kSignatureBandTopMm, kSignatureBandBottomMm);
  cv::Range turned =
      widened(kCardHeightMm - kSignatureBandBottomMm, kCardHeightMm - kSignatureBandTopMm);
  if (turned.start < upright.start) {
    std::swap(upright, turned);
  }
  if (turned.start <= upright.end) {
    return {cv::Range(upright.start, std::max(upright.end, turned.end))};
  }
  return {upright, turned};
}

void blackOutSignatureBand(cv::Mat& card) {
  for (const cv::Range& rows : signatureBandRows(card.rows)) {
    card.rowRange(rows).setTo(cv::Scalar::all(0));
  }
}

RedactedCard redactForKeeping(const CardImages& images, std::optional<CardFace> number_face,
                              const ImageLimits& limits) {
  RedactedCard out;
  const auto redactFace = [&](const std::vector<std::string>& jpegs, CardFace face) {
    const bool black_out = !number_face || *number_face != face;
    for (std::size_t i = 0; i < jpegs.size(); ++i) {
      const int index = static_cast<int>(i);
      std::string why;
      auto image = decodeWithinLimits(jpegs[i], limits, &why);
      if (!image) {
        out.not_kept.push_back({face, index, why});
        continue;
      }
      KeptFrame kept;
      kept.face = face;
      kept.index = index;
      cv::Mat picture;
      try {
        if (const auto corners = findCard(*image)) {
          picture = straighten(*image, *corners);
          kept.straightened = true;
        } else if (!black_out || hasCardAspect(*image)) {
          picture = *image;
        } else {
          out.not_kept.push_back(
              {face, index, "no card outline found, so its signature band cannot be located"});
          continue;
        }
      } catch (const cv::Exception&) {
        out.not_kept.push_back({face, index, "image processing failed"});
        continue;
      }
      if (black_out) {
        blackOutSignatureBand(picture);
        kept.blacked_out = true;
      }
      kept.jpeg = encodeJpeg(picture);
      out.frames.push_back(std::move(kept));
    }
  };
  redactFace(images.front_jpegs, CardFace::kFront);
  redactFace(images.back_jpegs, CardFace::kBack);
  return out;
}

std::optional<CardFace> numberFaceOf(const CardReading& reading) {
  if (reading.number_faces.size() != 1) {
    return std::nullopt;
  }
  const std::string& face = reading.number_faces.front();
  if (face == "front") {
    return CardFace::kFront;
  }
  if (face == "back") {
    return CardFace::kBack;
  }
  return std::nullopt;
}

}  // namespace lostcard::cloud
