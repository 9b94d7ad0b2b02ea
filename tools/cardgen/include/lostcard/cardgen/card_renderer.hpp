#pragma once
// Synthetic photos of lost cards as the box's two cameras see them: the card lying on the dark
// grey tray, about 1280x960 px, slightly rotated and in perspective, sometimes upside down.
// Deterministic: the same spec and seed give the same pixels. Used by lostcard-cardgen and by
// the recognition tests (in process).
//
//   CardRenderer renderer;                                   // loads the DejaVu fonts
//   CardPhotos photos = renderer.render({"card-0001", "4111111111111111"}, cardSeed(7,
//   "card-0001")); cv::imwrite("front.jpg", photos.front);
//
// An empty number renders an unreadable card: no number visible at all (a plain card with only
// a logo, or the number area scratched out).
#include <array>
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace lostcard::cardgen {

// easy: flat printed digits, clear, mild rotation. (hard: embossing, fonts, blur, glare: a
// later issue.)
enum class Preset { kEasy };

// How a card without a number looks: chosen by the seed, or forced (tests cover both).
enum class Unreadable { kBySeed, kPlain, kScratched };

struct CardSpec {
  std::string name;    // folder name, e.g. "card-0001"
  std::string number;  // digits; empty = an unreadable card
  Unreadable unreadable = Unreadable::kBySeed;
};

// Corners of the card in a photo, in the card's own order: its top-left, top-right,
// bottom-right, bottom-left as printed (so an upside-down card has its top-left at the bottom
// right of the photo).
using Corners = std::array<cv::Point2f, 4>;

struct CardPhotos {
  cv::Mat front;  // BGR, kPhotoWidthPx x kPhotoHeightPx
  cv::Mat back;
  Corners front_corners;
  Corners back_corners;
};

inline constexpr int kPhotoWidthPx = 1280;
inline constexpr int kPhotoHeightPx = 960;

struct RendererOptions {
  // Mono for the holder name, expiry and security code; sans for the number and bank name.
  std::string mono_font = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf";
  std::string sans_font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
  Preset preset = Preset::kEasy;
};

// A small deterministic generator: std::mt19937_64 with distributions written out here, since
// the standard ones may differ between library implementations.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  double uniform(double lo, double hi);  // [lo, hi)
  int between(int lo, int hi);           // [lo, hi]
  bool chance(double p);

 private:
  std::mt19937_64 engine_;
};

// The seed of one card: mixes the run's seed with the card's name so each card renders the same
// whatever else is in the run.
std::uint64_t cardSeed(std::uint64_t run_seed, std::string_view name);

// A random Luhn-valid 16-digit number starting with 4 or 5.
std::string randomCardNumber(Rng& rng);

// "4111 1111 1111 1111": 16 digits in fours, 15 as 4-6-5, anything else in fours.
std::string groupDigits(std::string_view digits);

class CardRenderer {
 public:
  explicit CardRenderer(RendererOptions options = {});  // throws std::runtime_error (fonts)
  ~CardRenderer();
  CardRenderer(const CardRenderer&) = delete;
  CardRenderer& operator=(const CardRenderer&) = delete;

  CardPhotos render(const CardSpec& spec, std::uint64_t seed);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cardgen
