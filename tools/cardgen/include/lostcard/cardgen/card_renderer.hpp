#pragma once
// Synthetic photos of lost cards as the box's two cameras see them: the card lying on the dark
// grey tray, about 1280x960 px, rotated and in perspective. Deterministic: the same spec, preset
// and seed give the same pixels. Used by lostcard-cardgen and by the recognition tests (in
// process).
//
//   CardRenderer renderer;  // easy preset, DejaVu fonts
//   CardPhotos photos = renderer.render({"card-0001", "4111111111111111"},
//                                       cardSeed(7, "card-0001"));
//   cv::imwrite("front.jpg", photos.front);
//
//   CardRenderer hard({.preset = Preset::kHard});  // needs the fonts of hardFonts()
//   Rng rng(7);
//   CardPhotos p = hard.render({"card-0001", randomHardCardNumber(rng)},
//                              cardSeed(7, "card-0001"));
//   cv::imwrite("front.jpg", p.front, {cv::IMWRITE_JPEG_QUALITY, p.jpeg_quality});
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

// easy: flat printed DejaVu digits on the front, clear, mild rotation, upright or upside down.
// hard: what real lost cards look like (see card_renderer_hard.cpp): embossed digits with silver,
// gold or no tipping (no tipping: seen only by the shading of one light), flat print in several
// fonts, 15/16/19 digits in 4-6-5, 4-4-4-4, 6-13 and 4-4-4-4-3 groups, busy backgrounds, the
// number on the back only, any of four orientations, either face up, perspective, blur, noise,
// glare, uneven light and JPEG compression. Hard but always readable by a careful human.
enum class Preset { kEasy, kHard };

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

// What was drawn, for benchmarks that break results down and for tests. Never the number.
struct CardTraits {
  std::string number_style;     // "flat", "embossed-silver", "embossed-gold", "embossed-plain",
                                // "none" (no number)
  std::string font;             // font file stem of the number, e.g. "OCRB"; "" when none
  std::string grouping;         // digit groups as printed, e.g. "4-4-4-4"; "" when none
  bool number_on_back = false;  // the number is printed on the card's back only
  bool back_up = false;         // the card lies back up: the front camera sees its back
  int front_quarter_turns = 0;  // 0..3: how the front camera's photo is turned, 90 deg steps
  // Where the number's ink lies on the face it is printed on, in pixels of the face as drawn
  // (856 x 540, upright); empty when there is none or the renderer does not say (easy).
  cv::Rect number_box;
};

struct CardPhotos {
  // BGR, kPhotoWidthPx x kPhotoHeightPx: what the box's front (upper) and back (lower) cameras
  // see. When traits.back_up, `front` shows the card's back face and `back` its front face.
  cv::Mat front;
  cv::Mat back;
  Corners front_corners;
  Corners back_corners;
  CardTraits traits;
  int jpeg_quality = 90;  // the quality to encode both photos with (hard: part of the damage)
};

inline constexpr int kPhotoWidthPx = 1280;
inline constexpr int kPhotoHeightPx = 960;

struct RendererOptions {
  // Easy preset: mono for the holder name, expiry and security code; sans for the number and
  // bank name.
  std::string mono_font = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf";
  std::string sans_font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
  Preset preset = Preset::kEasy;
  // Hard preset: also stamp embossed numbers in the embossers' own digits and print flat ones
  // in them or the squared face (stroke_font.hpp), as many real cards are; off, the hard
  // preset's cards are the ones its benchmark sets were made with.
  bool stroke_fonts = false;
};

// A font the hard preset draws with, and the Debian package that ships it.
struct FontFile {
  std::string path;
  std::string package;
};

// Every font the hard preset uses (OCR-A, OCR-B, DejaVu, Liberation, FreeFont). CardRenderer
// with Preset::kHard throws naming the missing package when one is not installed.
const std::vector<FontFile>& hardFonts();

// Call once at the start of a program that renders many cards. The renderer works on
// full-size float images that are freed and allocated again for every card; by default glibc
// hands such blocks back to the kernel and gets them again as fresh pages, so a third of the
// time went to page faults. This keeps freed memory in the process instead (measured: ten hard
// cards in 9.6 s before, 2.1 s after, both with the same other jobs on the machine).
// Process-wide, hence not done by the renderer itself.
void keepFreedMemory();

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

// A random Luhn-valid 16-digit number starting with 4 or 5 (the easy preset's numbers).
std::string randomCardNumber(Rng& rng);

// A random Luhn-valid number of a real-looking scheme: 16 digits (Visa, Mastercard, Discover,
// UnionPay), 15 (American Express) or 19 (UnionPay, Maestro, Visa).
std::string randomHardCardNumber(Rng& rng);

// "4111 1111 1111 1111": 16 digits in fours, 15 as 4-6-5, anything else in fours.
std::string groupDigits(std::string_view digits);

// `digits` split into groups of the given sizes ("6-13" style); the sizes must add up.
std::string groupDigits(std::string_view digits, const std::vector<int>& group_sizes);

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
