#pragma once
// Pieces shared by the easy and hard card renderers (internal to lostcard_cardgen).
#include <cstdint>
#include <opencv2/core.hpp>

#include "lostcard/cardgen/card_renderer.hpp"

namespace lostcard::cardgen::detail {

// The card is drawn flat at 10 px/mm (ISO/IEC 7810 ID-1, 85.60 x 53.98 mm, corner radius
// 3.18 mm), then laid into the photo.
inline constexpr int kCardW = 856;
inline constexpr int kCardH = 540;
inline constexpr int kCornerRadiusPx = 32;

// 255 inside the card's rounded outline, 0 outside.
cv::Mat roundedMask();

std::uint64_t splitmix64(std::uint64_t x);

// Lays the card, already warped into the photo (`alpha`: how much of each pixel it covers), on
// the tray photo `tray_f` (CV_32FC3): the card's shadow (`shadow`, its outline shifted and
// blurred) darkens the tray by up to `shadow_strength`, then the card covers it.
cv::Mat layOnTray(const cv::Mat& tray_f, const cv::Mat& warped, const cv::Mat& alpha,
                  const cv::Mat& shadow, double shadow_strength);

// The hard preset, drawn by card_renderer_hard.cpp.
class HardCardRenderer {
 public:
  // Throws std::runtime_error naming a missing font package. With stroke_fonts, numbers are
  // also drawn in the stroke fonts (RendererOptions::stroke_fonts).
  explicit HardCardRenderer(bool stroke_fonts);
  ~HardCardRenderer();
  HardCardRenderer(const HardCardRenderer&) = delete;
  HardCardRenderer& operator=(const HardCardRenderer&) = delete;

  CardPhotos render(const CardSpec& spec, std::uint64_t seed);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cardgen::detail
