#include "lostcard/cardgen/card_renderer.hpp"

#include <malloc.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <opencv2/freetype.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "card_parts.hpp"
#include "lostcard/cloud/luhn.hpp"

// The easy preset is drawn here; the hard one in card_renderer_hard.cpp. The easy preset's
// pixels must not change: the demo, the tests and the recognition's first figures rely on them.
namespace lostcard::cardgen {
namespace detail {

cv::Mat layOnTray(const cv::Mat& tray_f, const cv::Mat& warped, const cv::Mat& alpha,
                  const cv::Mat& shadow, double shadow_strength) {
  cv::Mat warped_f;
  warped.convertTo(warped_f, CV_32FC3);
  cv::Mat a;
  cv::Mat s;
  alpha.convertTo(a, CV_32F, 1.0 / 255);
  shadow.convertTo(s, CV_32F, shadow_strength / 255);
  cv::Mat a3;
  cv::Mat s3;
  cv::merge(std::vector<cv::Mat>{a, a, a}, a3);
  cv::merge(std::vector<cv::Mat>{s, s, s}, s3);
  const cv::Mat shaded = tray_f.mul(cv::Scalar::all(1.0) - s3);
  return warped_f.mul(a3) + shaded.mul(cv::Scalar::all(1.0) - a3);
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

cv::Mat roundedMask() {
  cv::Mat mask(kCardH, kCardW, CV_8UC1, cv::Scalar(0));
  const int r = kCornerRadiusPx;
  cv::rectangle(mask, cv::Rect(r, 0, kCardW - 2 * r, kCardH), cv::Scalar(255), cv::FILLED);
  cv::rectangle(mask, cv::Rect(0, r, kCardW, kCardH - 2 * r), cv::Scalar(255), cv::FILLED);
  for (const auto& c : {cv::Point(r, r), cv::Point(kCardW - 1 - r, r), cv::Point(r, kCardH - 1 - r),
                        cv::Point(kCardW - 1 - r, kCardH - 1 - r)}) {
    cv::circle(mask, c, r, cv::Scalar(255), cv::FILLED, cv::LINE_AA);
  }
  return mask;
}

}  // namespace detail

namespace {

using detail::kCardH;
using detail::kCardW;
using detail::roundedMask;
using detail::splitmix64;

struct Palette {
  cv::Scalar from;  // BGR, gradient start
  cv::Scalar to;    // gradient end
  cv::Scalar ink;   // main print colour
};

// Backgrounds stay clearly lighter than the tray or saturated, and the ink contrasts with
// every point of the gradient.
const std::array<Palette, 8> kPalettes = {{
    {{150, 80, 30}, {210, 140, 60}, {255, 255, 255}},     // blue, white print
    {{70, 120, 20}, {120, 170, 60}, {245, 245, 245}},     // green, white
    {{60, 30, 150}, {90, 60, 200}, {235, 235, 235}},      // burgundy, white
    {{200, 200, 200}, {235, 235, 235}, {40, 40, 40}},     // silver, dark
    {{90, 190, 230}, {140, 220, 250}, {30, 30, 30}},      // gold, dark
    {{230, 190, 140}, {250, 225, 190}, {60, 30, 20}},     // sky blue, navy
    {{120, 110, 110}, {170, 160, 160}, {250, 250, 250}},  // graphite, white
    {{130, 60, 120}, {190, 110, 170}, {255, 255, 255}},   // purple, white
}};

constexpr std::array<const char*, 6> kBanks = {"NORTHWIND BANK", "ALPINE CREDIT",
                                               "HARBOR SAVINGS", "CITYLINE BANK",
                                               "MERIDIAN TRUST", "LAKESIDE UNION"};
constexpr std::array<const char*, 8> kHolders = {"JANE A DOE",  "JOHN SMITH",   "MARIA GARCIA",
                                                 "LI WEI",      "AMINA DIALLO", "OLE NORDMANN",
                                                 "SOFIA ROSSI", "KENJI SATO"};

cv::Scalar mix(const cv::Scalar& a, const cv::Scalar& b, double t) { return a * (1 - t) + b * t; }

// A linear gradient across the card in a random direction, with a few faint decorative discs.
cv::Mat background(const Palette& palette, Rng& rng) {
  cv::Mat card(kCardH, kCardW, CV_8UC3);
  const double angle = rng.uniform(0, 2 * M_PI);
  const double dx = std::cos(angle);
  const double dy = std::sin(angle);
  const double span = std::abs(dx) * kCardW + std::abs(dy) * kCardH;
  for (int y = 0; y < kCardH; ++y) {
    auto* row = card.ptr<cv::Vec3b>(y);
    for (int x = 0; x < kCardW; ++x) {
      const double t =
          std::clamp(((x - kCardW / 2.0) * dx + (y - kCardH / 2.0) * dy) / span + 0.5, 0.0, 1.0);
      const cv::Scalar c = mix(palette.from, palette.to, t);
      row[x] = cv::Vec3b(cv::saturate_cast<uchar>(c[0]), cv::saturate_cast<uchar>(c[1]),
                         cv::saturate_cast<uchar>(c[2]));
    }
  }
  for (int i = 0; i < 3; ++i) {
    cv::Mat overlay = card.clone();
    const cv::Point centre(rng.between(0, kCardW), rng.between(0, kCardH));
    cv::circle(overlay, centre, rng.between(150, 400), mix(palette.to, cv::Scalar::all(255), 0.3),
               cv::FILLED, cv::LINE_AA);
    cv::addWeighted(overlay, 0.07, card, 0.93, 0, card);
  }
  return card;
}

void drawChip(cv::Mat& card, cv::Point at) {
  const cv::Rect chip(at, cv::Size(100, 76));
  cv::rectangle(card, chip, cv::Scalar(80, 180, 215), cv::FILLED, cv::LINE_AA);
  const cv::Scalar line(50, 120, 150);
  cv::rectangle(card, chip, line, 2, cv::LINE_AA);
  cv::line(card, {chip.x, chip.y + 25}, {chip.x + 35, chip.y + 25}, line, 2, cv::LINE_AA);
  cv::line(card, {chip.x, chip.y + 51}, {chip.x + 35, chip.y + 51}, line, 2, cv::LINE_AA);
  cv::line(card, {chip.br().x - 35, chip.y + 25}, {chip.br().x, chip.y + 25}, line, 2, cv::LINE_AA);
  cv::line(card, {chip.br().x - 35, chip.y + 51}, {chip.br().x, chip.y + 51}, line, 2, cv::LINE_AA);
  cv::rectangle(card, cv::Rect(chip.x + 35, chip.y + 15, 30, 46), line, 2, cv::LINE_AA);
}

}  // namespace

Rng::Rng(std::uint64_t seed) : engine_(seed) {}

std::uint64_t Rng::next() { return engine_(); }

double Rng::uniform(double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53;
}

int Rng::between(int lo, int hi) {
  return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1));
}

bool Rng::chance(double p) { return uniform(0, 1) < p; }

void keepFreedMemory() {
  // Blocks up to 32 MiB (glibc's most; a full-size float image is 15 MiB) come from the heap,
  // and the heap is not trimmed below 2 GiB.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

std::uint64_t cardSeed(std::uint64_t run_seed, std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (const char c : name) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  return splitmix64(run_seed ^ splitmix64(h));
}

std::string randomCardNumber(Rng& rng) {
  std::string digits(1, rng.chance(0.5) ? '4' : '5');
  while (digits.size() < 15) {
    digits.push_back(static_cast<char>('0' + rng.between(0, 9)));
  }
  digits.push_back(*cloud::luhnCheckDigit(digits));
  return digits;
}

std::string randomHardCardNumber(Rng& rng) {
  // Issuer prefixes and lengths of the schemes a box will mostly see.
  struct Scheme {
    int weight;
    std::vector<const char*> prefixes;
    std::size_t length;
  };
  static const std::vector<Scheme> kSchemes = {
      {34, {"4"}, 16},                                           // Visa
      {20, {"51", "52", "53", "54", "55", "2221", "2720"}, 16},  // Mastercard
      {12, {"34", "37"}, 15},                                    // American Express
      {5, {"6011", "65"}, 16},                                   // Discover
      {5, {"62"}, 16},                                           // UnionPay
      {12, {"62"}, 19},                                          // UnionPay
      {7, {"6759", "5018", "6304"}, 19},                         // Maestro
      {5, {"4"}, 19},                                            // Visa
  };
  int total = 0;
  for (const auto& s : kSchemes) {
    total += s.weight;
  }
  int pick = rng.between(0, total - 1);
  const Scheme* scheme = &kSchemes.front();
  for (const auto& s : kSchemes) {
    if (pick < s.weight) {
      scheme = &s;
      break;
    }
    pick -= s.weight;
  }
  std::string digits = scheme->prefixes[rng.between(0, scheme->prefixes.size() - 1)];
  while (digits.size() < scheme->length - 1) {
    digits.push_back(static_cast<char>('0' + rng.between(0, 9)));
  }
  digits.push_back(*cloud::luhnCheckDigit(digits));
  return digits;
}

std::string groupDigits(std::string_view digits, const std::vector<int>& group_sizes) {
  std::string out;
  std::size_t pos = 0;
  for (const int g : group_sizes) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    out.append(digits.substr(pos, g));
    pos += g;
  }
  if (pos != digits.size()) {
    throw std::invalid_argument("digit groups do not add up to the number's length");
  }
  return out;
}

std::string groupDigits(std::string_view digits) {
  std::vector<std::size_t> groups;
  if (digits.size() == 15) {
    groups = {4, 6, 5};
  } else {
    for (std::size_t left = digits.size(); left > 0; left -= std::min<std::size_t>(left, 4)) {
      groups.push_back(std::min<std::size_t>(left, 4));
    }
  }
  std::string out;
  std::size_t pos = 0;
  for (const std::size_t g : groups) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    out.append(digits.substr(pos, g));
    pos += g;
  }
  return out;
}

class CardRenderer::Impl {
 public:
  explicit Impl(RendererOptions options) : options_(std::move(options)), mask_(roundedMask()) {
    if (options_.preset == Preset::kHard) {
      hard_ = std::make_unique<detail::HardCardRenderer>(options_.stroke_fonts);
    }
    for (const auto* path : {&options_.mono_font, &options_.sans_font}) {
      if (!std::filesystem::is_regular_file(*path)) {
        throw std::runtime_error("font not found: " + *path + " (install fonts-dejavu-core)");
      }
    }
    mono_ = cv::freetype::createFreeType2();
    mono_->loadFontData(options_.mono_font, 0);
    sans_ = cv::freetype::createFreeType2();
    sans_->loadFontData(options_.sans_font, 0);
  }

  CardPhotos render(const CardSpec& spec, std::uint64_t seed) {
    if (hard_) {
      return hard_->render(spec, seed);
    }
    Rng rng(seed);
    const Palette& palette = kPalettes[rng.between(0, kPalettes.size() - 1)];
    const char* bank = kBanks[rng.between(0, kBanks.size() - 1)];
    const char* holder = kHolders[rng.between(0, kHolders.size() - 1)];
    CardPhotos photos;
    const cv::Mat front = drawFront(spec, palette, bank, holder, rng);
    const cv::Mat back = drawBack(palette, bank, rng);
    photos.front = photograph(front, rng, &photos.front_corners);
    photos.back = photograph(back, rng, &photos.back_corners);
    photos.traits.number_style = spec.number.empty() ? "none" : "flat";
    photos.traits.font = spec.number.empty() ? "" : "DejaVuSans-Bold";
    photos.traits.grouping = groupingOf(groupDigits(spec.number));
    // Which way up the front camera saw the card: its top-left corner right of its
    // bottom-right one means it lies upside down.
    photos.traits.front_quarter_turns =
        photos.front_corners[0].x > photos.front_corners[2].x ? 2 : 0;
    return photos;
  }

 private:
  void text(cv::Mat& img, cv::freetype::FreeType2& font, const std::string& s, cv::Point baseline,
            int height_px, const cv::Scalar& colour) {
    font.putText(img, s, baseline, height_px, colour, -1, cv::LINE_AA, true);
  }

  cv::Mat drawFront(const CardSpec& spec, const Palette& palette, const char* bank,
                    const char* holder, Rng& rng) {
    const std::string& number = spec.number;
    cv::Mat card = background(palette, rng);
    text(card, *sans_, bank, {60, 85}, 38, palette.ink);
    drawChip(card, {90, 165});
    // Contactless mark: three arcs right of the chip.
    for (int i = 0; i < 3; ++i) {
      cv::ellipse(card, {215, 203}, {10 + 9 * i, 10 + 9 * i}, 0, -40, 40, palette.ink, 3,
                  cv::LINE_AA);
    }

    const cv::Point number_at(70 + rng.between(0, 20), 350 + rng.between(-8, 8));
    const int number_height_px = 58;
    if (!number.empty()) {
      // Sans, not mono: DejaVu Sans Mono's dotted zero reads as an 8 to Tesseract's stock
      // English model. Printed card fonts (OCR-B-like) have plain zeros too.
      text(card, *sans_, groupDigits(number), number_at, number_height_px, palette.ink);
    } else {
      const bool scratched = spec.unreadable == Unreadable::kScratched ||
                             (spec.unreadable == Unreadable::kBySeed && rng.chance(0.5));
      if (scratched) {
        // The number area scratched out: an opaque worn band with scratches, no digit left.
        const cv::Rect band(number_at.x - 15, number_at.y - 55, 700, 75);
        cv::rectangle(card, band, mix(palette.from, cv::Scalar::all(90), 0.6), cv::FILLED);
        for (int i = 0; i < 60; ++i) {
          const cv::Point a(band.x + rng.between(0, band.width),
                            band.y + rng.between(0, band.height));
          const cv::Point b = a + cv::Point(rng.between(-80, 80), rng.between(-12, 12));
          cv::line(card, a, b, mix(palette.from, cv::Scalar::all(rng.chance(0.5) ? 200 : 40), 0.5),
                   rng.between(1, 3), cv::LINE_AA);
        }
      }
      // Otherwise a plain card: simply no number line.
    }

    text(card, *sans_, "VALID", {330, 398}, 13, palette.ink);
    text(card, *sans_, "THRU", {330, 413}, 13, palette.ink);
    text(card, *mono_, "12/29", {378, 414}, 30, palette.ink);
    text(card, *mono_, holder, {75, 478}, 32, palette.ink);

    if (!number.empty() && number[0] == '4') {
      text(card, *sans_, "VISA", {660, 485}, 56, palette.ink);
    } else {
      cv::circle(card, {690, 450}, 42, cv::Scalar(30, 30, 225), cv::FILLED, cv::LINE_AA);
      cv::Mat overlay = card.clone();
      cv::circle(overlay, {750, 450}, 42, cv::Scalar(20, 160, 250), cv::FILLED, cv::LINE_AA);
      cv::addWeighted(overlay, 0.85, card, 0.15, 0, card);
    }
    return card;
  }

  cv::Mat drawBack(const Palette& palette, const char* bank, Rng& rng) {
    cv::Mat card = background(palette, rng);
    cv::rectangle(card, cv::Rect(0, 45, kCardW, 85), cv::Scalar(25, 25, 25), cv::FILLED);
    // Signature strip with its woven pattern, then the 3-digit security code beside it.
    const cv::Rect strip(50, 175, 560, 62);
    cv::rectangle(card, strip, cv::Scalar(235, 240, 240), cv::FILLED);
    for (int x = strip.x; x < strip.br().x; x += 9) {
      cv::line(card, {x, strip.y}, {x + 20, strip.br().y - 1}, cv::Scalar(215, 225, 230), 1);
    }
    const cv::Rect code_box(625, 180, 95, 52);
    cv::rectangle(card, code_box, cv::Scalar(250, 250, 250), cv::FILLED);
    const std::string code = std::to_string(rng.between(100, 999));
    text(card, *mono_, code, {code_box.x + 14, code_box.y + 38}, 32, cv::Scalar(30, 30, 30));

    const std::string line1 = std::string("This card is the property of ") + bank + ".";
    text(card, *sans_, line1, {50, 300}, 18, palette.ink);
    text(card, *sans_, "If found, please return it to any branch", {50, 328}, 18, palette.ink);
    text(card, *sans_, "or drop it in a lostcard box.", {50, 356}, 18, palette.ink);
    cv::rectangle(card, cv::Rect(650, 400, 130, 80), mix(palette.to, cv::Scalar::all(255), 0.5),
                  cv::FILLED, cv::LINE_AA);
    return card;
  }

  // The card laid on the tray and seen by a camera: position, mild rotation and perspective,
  // sometimes upside down, a soft shadow, uneven light, sensor noise and a little blur.
  cv::Mat photograph(const cv::Mat& card, Rng& rng, Corners* corners) {
    const int tray_grey = rng.between(45, 70);
    cv::Mat photo(kPhotoHeightPx, kPhotoWidthPx, CV_8UC3, cv::Scalar::all(tray_grey));

    const double width_px = kPhotoWidthPx * rng.uniform(0.64, 0.72);
    const double height_px = width_px * kCardH / kCardW;
    const cv::Point2d centre(kPhotoWidthPx / 2.0 + rng.uniform(-40, 40),
                             kPhotoHeightPx / 2.0 + rng.uniform(-30, 30));
    double angle = rng.uniform(-5, 5) * M_PI / 180;
    if (rng.chance(0.3)) {
      angle += M_PI;
    }
    const std::array<cv::Point2d, 4> local = {
        cv::Point2d(-width_px / 2, -height_px / 2), cv::Point2d(width_px / 2, -height_px / 2),
        cv::Point2d(width_px / 2, height_px / 2), cv::Point2d(-width_px / 2, height_px / 2)};
    std::array<cv::Point2f, 4> dst;
    const double jitter_px = 0.015 * width_px;
    for (std::size_t i = 0; i < 4; ++i) {
      const cv::Point2d p = local[i];
      dst[i] =
          cv::Point2f(static_cast<float>(centre.x + p.x * std::cos(angle) - p.y * std::sin(angle) +
                                         rng.uniform(-jitter_px, jitter_px)),
                      static_cast<float>(centre.y + p.x * std::sin(angle) + p.y * std::cos(angle) +
                                         rng.uniform(-jitter_px, jitter_px)));
    }
    const std::array<cv::Point2f, 4> src = {cv::Point2f(0, 0), cv::Point2f(kCardW, 0),
                                            cv::Point2f(kCardW, kCardH), cv::Point2f(0, kCardH)};
    const cv::Mat h = cv::getPerspectiveTransform(src.data(), dst.data());
    std::copy(dst.begin(), dst.end(), corners->begin());
    const cv::Size size(kPhotoWidthPx, kPhotoHeightPx);
    cv::Mat warped;
    cv::Mat alpha;
    cv::warpPerspective(card, warped, h, size, cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    cv::warpPerspective(mask_, alpha, h, size, cv::INTER_LINEAR, cv::BORDER_CONSTANT);

    // Shadow: the card's outline, shifted and blurred, darkens the tray.
    cv::Mat shadow;
    const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, 7, 0, 1, 9);
    cv::warpAffine(alpha, shadow, shift, size);
    cv::GaussianBlur(shadow, shadow, cv::Size(0, 0), 9);

    cv::Mat tray_f;
    photo.convertTo(tray_f, CV_32FC3);
    cv::Mat photo_f = detail::layOnTray(tray_f, warped, alpha, shadow, 0.35);

    // Uneven light: brighter towards a random side of the tray.
    const double light_angle = rng.uniform(0, 2 * M_PI);
    const double strength = rng.uniform(0.05, 0.12);
    cv::Mat light(size, CV_32FC1);
    for (int y = 0; y < size.height; ++y) {
      auto* row = light.ptr<float>(y);
      for (int x = 0; x < size.width; ++x) {
        const double t = ((x - size.width / 2.0) * std::cos(light_angle) +
                          (y - size.height / 2.0) * std::sin(light_angle)) /
                         size.width;
        row[x] = static_cast<float>(1.0 + strength * t * 2);
      }
    }
    cv::Mat light3;
    cv::merge(std::vector<cv::Mat>{light, light, light}, light3);
    photo_f = photo_f.mul(light3);

    cv::Mat noise(size, CV_32FC3);
    cv::RNG cv_rng(rng.next());  // cv::RNG is deterministic for a given seed
    cv_rng.fill(noise, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(2.5));
    photo_f += noise;
    cv::GaussianBlur(photo_f, photo_f, cv::Size(0, 0), rng.uniform(0.5, 0.8));
    photo_f.convertTo(photo, CV_8UC3);
    return photo;
  }

  // "4-4-4-4" for "4111 1111 1111 1111".
  static std::string groupingOf(const std::string& grouped) {
    std::string out;
    std::size_t run = 0;
    for (std::size_t i = 0; i <= grouped.size(); ++i) {
      if (i == grouped.size() || grouped[i] == ' ') {
        if (run > 0) {
          out += (out.empty() ? "" : "-") + std::to_string(run);
        }
        run = 0;
      } else {
        ++run;
      }
    }
    return out;
  }

  RendererOptions options_;
  std::unique_ptr<detail::HardCardRenderer> hard_;
  cv::Mat mask_;
  cv::Ptr<cv::freetype::FreeType2> mono_;
  cv::Ptr<cv::freetype::FreeType2> sans_;
};

CardRenderer::CardRenderer(RendererOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
CardRenderer::~CardRenderer() = default;

CardPhotos CardRenderer::render(const CardSpec& spec, std::uint64_t seed) {
  return impl_->render(spec, seed);
}

}  // namespace lostcard::cardgen
