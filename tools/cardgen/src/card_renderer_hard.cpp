// The hard preset: cards as a box really receives them. What varies, and why:
//  - the number: embossed (raised digits lit by one light, with silver, gold or no tipping: the
//    untipped ones show only by their highlights and shadows) or flat print in one of several
//    fonts (OCR-A, OCR-B, DejaVu, Liberation, FreeFont), 15/16/19 digits grouped 4-6-5,
//    4-4-4-4, 6-13 or 4-4-4-4-3, sometimes printed on the back only ("numberless" fronts);
//  - the face: gradients, guilloche and geometric patterns, procedural pictures (landscapes,
//    bokeh, waves), large watermark logos; an embossed card's back shows the digits mirrored
//    and pressed in;
//  - the photo: any of four orientations and either face up, perspective, tray texture, uneven
//    and coloured light, vignetting, glare, focus and motion blur, sensor noise, JPEG quality.
// Readability is kept honest: where the number sits, the background is calmed until the print
// (or, for untipped embossing, the relief) stands out, and the worst blur, noise and glare are
// kept off the hardest number styles. A careful human can read every card it draws.
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <opencv2/freetype.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "card_parts.hpp"
#include "lostcard/cardgen/card_renderer.hpp"
#include "lostcard/cardgen/stroke_font.hpp"

namespace lostcard::cardgen {

namespace {

const std::string kDejaVu = "/usr/share/fonts/truetype/dejavu/";
const std::string kLiberation = "/usr/share/fonts/truetype/liberation2/";
const std::string kFreeFont = "/usr/share/fonts/truetype/freefont/";

}  // namespace

const std::vector<FontFile>& hardFonts() {
  static const std::vector<FontFile> kFonts = {
      {"/usr/share/fonts/truetype/ocr-a/OCRA.ttf", "fonts-ocr-a"},
      {"/usr/share/fonts/opentype/ocr-b/OCRB.otf", "fonts-ocr-b"},
      {kDejaVu + "DejaVuSans.ttf", "fonts-dejavu-core"},
      {kDejaVu + "DejaVuSans-Bold.ttf", "fonts-dejavu-core"},
      {kDejaVu + "DejaVuSansMono-Bold.ttf", "fonts-dejavu-core"},
      {kDejaVu + "DejaVuSerif-Bold.ttf", "fonts-dejavu-core"},
      {kLiberation + "LiberationSans-Regular.ttf", "fonts-liberation2"},
      {kLiberation + "LiberationSans-Bold.ttf", "fonts-liberation2"},
      {kLiberation + "LiberationMono-Bold.ttf", "fonts-liberation2"},
      {kLiberation + "LiberationSerif-Bold.ttf", "fonts-liberation2"},
      {kFreeFont + "FreeSans.ttf", "fonts-freefont-ttf"},
      {kFreeFont + "FreeSansBold.ttf", "fonts-freefont-ttf"},
      {kFreeFont + "FreeMonoBold.ttf", "fonts-freefont-ttf"},
      {kFreeFont + "FreeSerifBold.ttf", "fonts-freefont-ttf"},
  };
  return kFonts;
}

namespace detail {
namespace {

// Fonts by file stem. Number fonts are those card issuers print numbers in (plain zeros:
// DejaVu Sans Mono's dotted zero is kept for other text); emboss fonts are the heavy monospaced
// shapes an embosser stamps (OCR-B stands in for Farrington 7B).
const std::vector<std::string> kFlatNumberFonts = {"OCRA",
                                                   "OCRB",
                                                   "DejaVuSans",
                                                   "DejaVuSans-Bold",
                                                   "LiberationSans-Regular",
                                                   "LiberationSans-Bold",
                                                   "LiberationMono-Bold",
                                                   "FreeSans",
                                                   "FreeSansBold",
                                                   "FreeMonoBold"};
const std::vector<std::string> kEmbossFonts = {"OCRB", "OCRB", "LiberationMono-Bold",
                                               "FreeMonoBold", "DejaVuSans-Bold"};
// With RendererOptions::stroke_fonts: the embossers' digits (Farrington 7B's shapes, as nearly
// every embossed card has them) join the emboss fonts as three in eight, and they and the squared
// face join the flat number fonts.
const std::vector<std::string> kStrokeEmbossFonts = {strokeFontName(StrokeStyle::kEmbossing),
                                                     strokeFontName(StrokeStyle::kEmbossing),
                                                     strokeFontName(StrokeStyle::kEmbossingFooted)};
const std::vector<std::string> kStrokeFlatFonts = {strokeFontName(StrokeStyle::kEmbossing),
                                                   strokeFontName(StrokeStyle::kSquare)};
const std::vector<std::string> kTextFonts = {
    "DejaVuSans-Bold", "DejaVuSerif-Bold", "LiberationSans-Bold", "LiberationSerif-Bold",
    "FreeSansBold",    "FreeSerifBold",    "DejaVuSansMono-Bold", "OCRB"};

const std::array<const char*, 10> kBanks = {
    "NORTHWIND BANK", "ALPINE CREDIT", "HARBOR SAVINGS", "CITYLINE BANK", "MERIDIAN TRUST",
    "LAKESIDE UNION", "Banco del Sol", "Kestrel & Co",   "FIRST CASCADE", "Union Mutuelle"};
const std::array<const char*, 12> kHolders = {
    "JANE A DOE",  "JOHN SMITH", "MARIA GARCIA", "LI WEI",       "AMINA DIALLO", "OLE NORDMANN",
    "SOFIA ROSSI", "KENJI SATO", "PRIYA NAIR",   "TOMASZ NOWAK", "A B CHEN",     "MR J O'NEILL"};
const std::array<const char*, 8> kTiers = {"DEBIT",    "PLATINUM", "GOLD",    "WORLD",
                                           "BUSINESS", "CLASSIC",  "REWARDS", "SIGNATURE"};

std::string stemOf(const std::string& path) { return std::filesystem::path(path).stem(); }

cv::Scalar mix(const cv::Scalar& a, const cv::Scalar& b, double t) { return a * (1 - t) + b * t; }

double luminance(const cv::Scalar& bgr) { return 0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2]; }

// A colour from hue (0..360), saturation and value (0..1).
cv::Scalar hsv(double hue, double sat, double val) {
  hue = std::fmod(std::fmod(hue, 360.0) + 360.0, 360.0);
  const double c = val * sat;
  const double x = c * (1 - std::abs(std::fmod(hue / 60.0, 2.0) - 1));
  const double m = val - c;
  double r = 0;
  double g = 0;
  double b = 0;
  if (hue < 60) {
    r = c, g = x;
  } else if (hue < 120) {
    r = x, g = c;
  } else if (hue < 180) {
    g = c, b = x;
  } else if (hue < 240) {
    g = x, b = c;
  } else if (hue < 300) {
    r = x, b = c;
  } else {
    r = c, b = x;
  }
  return cv::Scalar((b + m) * 255, (g + m) * 255, (r + m) * 255);
}

template <class T>
const T& pickOf(const std::vector<T>& items, Rng& rng) {
  return items[rng.between(0, static_cast<int>(items.size()) - 1)];
}

template <class T, std::size_t N>
const T& pickOf(const std::array<T, N>& items, Rng& rng) {
  return items[rng.between(0, static_cast<int>(N) - 1)];
}

// A smooth random field in [lo, hi] over `size`: a coarse random grid, upscaled.
cv::Mat smoothField(cv::Size size, int cells, double lo, double hi, Rng& rng) {
  cv::Mat coarse(std::max(2, cells * size.height / size.width), cells, CV_32F);
  for (int y = 0; y < coarse.rows; ++y) {
    for (int x = 0; x < coarse.cols; ++x) {
      coarse.at<float>(y, x) = static_cast<float>(rng.uniform(lo, hi));
    }
  }
  cv::Mat field;
  cv::resize(coarse, field, size, 0, 0, cv::INTER_CUBIC);
  return field;
}

// out = base * (1 - alpha) + colour * alpha, alpha in 0..1 (CV_32F) per pixel.
void blend(cv::Mat& card, const cv::Mat& alpha, const cv::Scalar& colour) {
  for (int y = 0; y < card.rows; ++y) {
    auto* row = card.ptr<cv::Vec3b>(y);
    const float* a = alpha.ptr<float>(y);
    for (int x = 0; x < card.cols; ++x) {
      if (a[x] <= 0.0f) {
        continue;
      }
      for (int c = 0; c < 3; ++c) {
        row[x][c] = cv::saturate_cast<uchar>(row[x][c] * (1 - a[x]) + colour[c] * a[x]);
      }
    }
  }
}

// --- backgrounds -----------------------------------------------------------------------------

struct Look {
  cv::Scalar base;    // the card's main colour
  cv::Scalar second;  // its gradient partner
  cv::Scalar accent;  // for patterns and logos
};

Look randomLook(Rng& rng) {
  const double hue = rng.uniform(0, 360);
  Look look;
  switch (rng.between(0, 5)) {
    case 0:  // dark: black, navy, deep green
      look.base = hsv(hue, rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.3));
      look.second = hsv(hue + rng.uniform(-30, 30), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.4));
      break;
    case 1:  // light: white, cream, pastel
      look.base = hsv(hue, rng.uniform(0.0, 0.25), rng.uniform(0.85, 1.0));
      look.second =
          hsv(hue + rng.uniform(-40, 40), rng.uniform(0.05, 0.35), rng.uniform(0.75, 0.95));
      break;
    case 2:  // metallic silver or graphite
      look.base = hsv(hue, rng.uniform(0.0, 0.08), rng.uniform(0.55, 0.85));
      look.second = hsv(hue, rng.uniform(0.0, 0.08), rng.uniform(0.7, 0.95));
      break;
    case 3:  // gold
      look.base = hsv(rng.uniform(38, 50), rng.uniform(0.35, 0.6), rng.uniform(0.65, 0.85));
      look.second = hsv(rng.uniform(40, 55), rng.uniform(0.25, 0.5), rng.uniform(0.8, 0.97));
      break;
    default:  // saturated brand colours
      look.base = hsv(hue, rng.uniform(0.5, 0.95), rng.uniform(0.4, 0.85));
      look.second = hsv(hue + rng.uniform(-60, 60), rng.uniform(0.4, 0.95), rng.uniform(0.4, 0.9));
      break;
  }
  look.accent = hsv(hue + rng.uniform(90, 270), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0));
  return look;
}

cv::Mat gradient(const Look& look, Rng& rng) {
  cv::Mat card(kCardH, kCardW, CV_8UC3);
  const bool radial = rng.chance(0.35);
  const double angle = rng.uniform(0, 2 * M_PI);
  const cv::Point2d centre(rng.uniform(0, kCardW), rng.uniform(0, kCardH));
  const double radius = rng.uniform(300, 900);
  const double dx = std::cos(angle);
  const double dy = std::sin(angle);
  const double span = std::abs(dx) * kCardW + std::abs(dy) * kCardH;
  for (int y = 0; y < kCardH; ++y) {
    auto* row = card.ptr<cv::Vec3b>(y);
    for (int x = 0; x < kCardW; ++x) {
      const double t =
          radial ? std::min(1.0, std::hypot(x - centre.x, y - centre.y) / radius)
                 : std::clamp(((x - kCardW / 2.0) * dx + (y - kCardH / 2.0) * dy) / span + 0.5, 0.0,
                              1.0);
      const cv::Scalar c = mix(look.base, look.second, t);
      row[x] = cv::Vec3b(cv::saturate_cast<uchar>(c[0]), cv::saturate_cast<uchar>(c[1]),
                         cv::saturate_cast<uchar>(c[2]));
    }
  }
  return card;
}

// Families of thin wavy lines, as on banknotes and many bank cards.
void guilloche(cv::Mat& card, const Look& look, Rng& rng) {
  const int families = rng.between(1, 3);
  for (int f = 0; f < families; ++f) {
    const cv::Scalar colour = mix(look.base, rng.chance(0.5) ? look.accent : cv::Scalar::all(255),
                                  rng.uniform(0.15, 0.45));
    const double amp = rng.uniform(10, 60);
    const double wave = rng.uniform(60, 260);
    const double phase_step = rng.uniform(0.05, 0.35);
    const int lines = rng.between(15, 45);
    const double y0 = rng.uniform(-100, kCardH);
    const double spacing = rng.uniform(4, 14);
    for (int i = 0; i < lines; ++i) {
      std::vector<cv::Point> pts;
      for (int x = -10; x <= kCardW + 10; x += 6) {
        pts.emplace_back(x, static_cast<int>(y0 + i * spacing +
                                             amp * std::sin(x / wave * 2 * M_PI + i * phase_step)));
      }
      cv::polylines(card, pts, false, colour, 1, cv::LINE_AA);
    }
  }
}

void geometricPattern(cv::Mat& card, const Look& look, Rng& rng) {
  const cv::Scalar colour = mix(look.base, look.accent, rng.uniform(0.15, 0.5));
  const int step = rng.between(14, 48);
  switch (rng.between(0, 2)) {
    case 0:  // dots
      for (int y = 0; y < kCardH; y += step) {
        for (int x = (y / step) % 2 == 0 ? 0 : step / 2; x < kCardW; x += step) {
          cv::circle(card, {x, y}, std::max(2, step / 5), colour, cv::FILLED, cv::LINE_AA);
        }
      }
      break;
    case 1:  // diagonal stripes
      for (int x = -kCardH; x < kCardW; x += step) {
        cv::line(card, {x, 0}, {x + kCardH, kCardH}, colour, std::max(1, step / 4), cv::LINE_AA);
      }
      break;
    default:  // hexagons
      for (int y = 0; y < kCardH + step; y += step) {
        for (int x = (y / step) % 2 == 0 ? 0 : step; x < kCardW + step; x += 2 * step) {
          std::vector<cv::Point> hex;
          for (int k = 0; k < 6; ++k) {
            hex.emplace_back(x + static_cast<int>(step * 0.9 * std::cos(k * M_PI / 3)),
                             y + static_cast<int>(step * 0.9 * std::sin(k * M_PI / 3)));
          }
          cv::polylines(card, hex, true, colour, 1, cv::LINE_AA);
        }
      }
      break;
  }
}

// A landscape: sky, sun, mountain ranges, sometimes water.
void landscape(cv::Mat& card, Rng& rng) {
  const double hue = rng.uniform(180, 260);
  const cv::Scalar top = hsv(hue, rng.uniform(0.3, 0.8), rng.uniform(0.5, 0.9));
  const cv::Scalar horizon = hsv(rng.uniform(20, 60), rng.uniform(0.2, 0.7), rng.uniform(0.8, 1.0));
  for (int y = 0; y < kCardH; ++y) {
    card.row(y).setTo(mix(top, horizon, std::min(1.0, static_cast<double>(y) / (kCardH * 0.7))));
  }
  cv::circle(card, {rng.between(100, kCardW - 100), rng.between(60, 250)}, rng.between(25, 70),
             hsv(rng.uniform(30, 55), 0.5, 1.0), cv::FILLED, cv::LINE_AA);
  const int ranges = rng.between(2, 4);
  for (int r = 0; r < ranges; ++r) {
    const double base_y = kCardH * (0.45 + 0.15 * r) + rng.uniform(-20, 20);
    std::vector<cv::Point> ridge = {{0, kCardH}};
    double y = base_y;
    for (int x = 0; x <= kCardW; x += rng.between(30, 90)) {
      y = std::clamp(y + rng.uniform(-60, 60), base_y - 120, base_y + 40);
      ridge.emplace_back(x, static_cast<int>(y));
    }
    ridge.emplace_back(kCardW, static_cast<int>(y));
    ridge.emplace_back(kCardW, kCardH);
    const cv::Scalar colour = hsv(rng.uniform(90, 250), rng.uniform(0.2, 0.6),
                                  rng.uniform(0.15, 0.6) + 0.1 * (ranges - r));
    cv::fillPoly(card, std::vector<std::vector<cv::Point>>{ridge}, colour, cv::LINE_AA);
  }
  if (rng.chance(0.5)) {
    const int water_y = static_cast<int>(kCardH * rng.uniform(0.7, 0.85));
    cv::Mat water = card.rowRange(water_y, kCardH);
    water.convertTo(water, -1, 0.6, 0);
    water += hsv(hue, 0.5, 0.6) * 0.4;
    for (int i = 0; i < 40; ++i) {
      const int y = rng.between(water_y, kCardH - 1);
      const int x = rng.between(0, kCardW);
      cv::line(card, {x, y}, {x + rng.between(20, 90), y}, cv::Scalar::all(230), 1, cv::LINE_AA);
    }
  }
}

// Out-of-focus lights.
void bokeh(cv::Mat& card, const Look& look, Rng& rng) {
  const int n = rng.between(12, 40);
  for (int i = 0; i < n; ++i) {
    cv::Mat overlay = card.clone();
    const cv::Scalar colour = hsv(rng.uniform(0, 360), rng.uniform(0.2, 0.9), rng.uniform(0.5, 1));
    cv::circle(overlay, {rng.between(0, kCardW), rng.between(0, kCardH)}, rng.between(15, 110),
               colour, cv::FILLED, cv::LINE_AA);
    cv::addWeighted(overlay, rng.uniform(0.15, 0.45), card, 1.0, 0, card);
    card = card * 0.85 + look.base * 0.15;  // keep the card's own colour
  }
}

// Layered filled waves.
void waves(cv::Mat& card, const Look& look, Rng& rng) {
  const int layers = rng.between(2, 5);
  for (int l = 0; l < layers; ++l) {
    const double base_y = rng.uniform(0, kCardH);
    const double amp = rng.uniform(15, 80);
    const double wave = rng.uniform(200, 700);
    const double phase = rng.uniform(0, 2 * M_PI);
    std::vector<cv::Point> poly = {{0, kCardH}};
    for (int x = 0; x <= kCardW; x += 8) {
      poly.emplace_back(x, static_cast<int>(base_y + amp * std::sin(x / wave * 2 * M_PI + phase)));
    }
    poly.emplace_back(kCardW, kCardH);
    cv::Mat overlay = card.clone();
    cv::fillPoly(overlay, std::vector<std::vector<cv::Point>>{poly},
                 mix(look.second, look.accent, rng.uniform(0, 0.6)), cv::LINE_AA);
    cv::addWeighted(overlay, rng.uniform(0.25, 0.6), card, 1.0, 0, card);
  }
}

// --- glyphs ----------------------------------------------------------------------------------

// One digit rendered alone: its 8-bit coverage and where it sits relative to the pen.
struct Glyph {
  cv::Mat coverage;  // CV_8UC1, tight around the ink
  int left = 0;      // ink's left edge from the pen position
  int top = 0;       // ink's top from the baseline (negative: above)
};

Glyph renderGlyph(cv::freetype::FreeType2& font, const std::string& ch, int height_px) {
  const int pad = height_px;
  cv::Mat canvas(height_px * 3, height_px * 3, CV_8UC3, cv::Scalar::all(0));
  const cv::Point pen(pad, pad * 2);
  font.putText(canvas, ch, pen, height_px, cv::Scalar::all(255), -1, cv::LINE_AA, true);
  cv::Mat one;
  cv::extractChannel(canvas, one, 0);
  const cv::Rect box = cv::boundingRect(one);
  Glyph g;
  if (box.area() == 0) {
    return g;
  }
  g.coverage = one(box).clone();
  g.left = box.x - pen.x;
  g.top = box.y - pen.y;
  return g;
}

// A line of text laid out glyph by glyph: every character in a cell `pitch_px` wide (centred),
// and `gap_px` for each space. Writes coverage into `mask` (CV_8UC1, same size as the card);
// returns the ink's bounding box.
cv::Rect layOutLine(cv::Mat& mask, cv::freetype::FreeType2& font, const std::string& text,
                    cv::Point start, int height_px, double pitch_px, double gap_px) {
  std::map<char, Glyph> glyphs;
  double x = start.x;
  cv::Rect ink;
  for (const char c : text) {
    if (c == ' ') {
      x += gap_px;
      continue;
    }
    auto it = glyphs.find(c);
    if (it == glyphs.end()) {
      it = glyphs.emplace(c, renderGlyph(font, std::string(1, c), height_px)).first;
    }
    const Glyph& g = it->second;
    if (!g.coverage.empty()) {
      const int gx = static_cast<int>(std::lround(x + (pitch_px - g.coverage.cols) / 2.0));
      const int gy = start.y + g.top;
      const cv::Rect at(gx, gy, g.coverage.cols, g.coverage.rows);
      const cv::Rect clipped = at & cv::Rect(0, 0, mask.cols, mask.rows);
      if (clipped.area() > 0) {
        cv::Mat dst = mask(clipped);
        cv::max(dst, g.coverage(cv::Rect(clipped.tl() - at.tl(), clipped.size())), dst);
        ink = ink.area() == 0 ? clipped : (ink | clipped);
      }
    }
    x += pitch_px;
  }
  return ink;
}

// The widest digit of `font` at `height_px`: the pitch of tabular figures.
int digitWidth(cv::freetype::FreeType2& font, int height_px) {
  int widest = 1;
  for (char c = '0'; c <= '9'; ++c) {
    widest = std::max(widest, renderGlyph(font, std::string(1, c), height_px).coverage.cols);
  }
  return widest;
}

// Natural-width text (names, bank names): FreeType's own layout.
cv::Rect drawText(cv::Mat& card, cv::freetype::FreeType2& font, const std::string& text,
                  cv::Point baseline, int height_px, const cv::Scalar& colour) {
  cv::Mat canvas(card.size(), CV_8UC3, cv::Scalar::all(0));
  font.putText(canvas, text, baseline, height_px, cv::Scalar::all(255), -1, cv::LINE_AA, true);
  cv::Mat one;
  cv::extractChannel(canvas, one, 0);
  cv::Mat alpha;
  one.convertTo(alpha, CV_32F, 1.0 / 255);
  blend(card, alpha, colour);
  return cv::boundingRect(one);
}

// --- embossing -------------------------------------------------------------------------------

struct Emboss {
  bool tipped = false;
  cv::Scalar foil;        // tipping colour
  double light_rad = 0;   // direction the light comes from, in card coordinates
  double highlight = 60;  // brightening of edges facing the light, grey levels
  double shadow = 70;     // darkening of edges turned away
  double whitening = 0;   // untipped: the stretched plastic goes a little lighter
  double sigma_px = 1.4;  // softness of the relief's edges
};

// Shades a relief (height 0..1, CV_32F) lit from one side: faces towards the light brighter,
// the others darker, and a short cast shadow. `sign` -1 for a recess.
void shadeRelief(cv::Mat& card, const cv::Mat& height, const Emboss& e, double sign,
                 double strength) {
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(height, gx, CV_32F, 1, 0, 3);
  cv::Sobel(height, gy, CV_32F, 0, 1, 3);
  // The steepest slope of a step blurred by sigma, as Sobel (x8) measures it.
  const double norm = 8.0 / (e.sigma_px * std::sqrt(2 * M_PI));
  const double lx = std::cos(e.light_rad);
  const double ly = std::sin(e.light_rad);
  // Cast shadow: the relief shifted away from the light.
  cv::Mat cast;
  const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, -2.5 * lx, 0, 1, -2.5 * ly);
  cv::warpAffine(height, cast, shift, height.size());
  for (int y = 0; y < card.rows; ++y) {
    auto* row = card.ptr<cv::Vec3b>(y);
    const float* px = gx.ptr<float>(y);
    const float* py = gy.ptr<float>(y);
    const float* h = height.ptr<float>(y);
    const float* c = cast.ptr<float>(y);
    for (int x = 0; x < card.cols; ++x) {
      // Towards the light, a raised face slopes down: its normal leans towards the light.
      const double s = std::clamp(-sign * (px[x] * lx + py[x] * ly) / norm, -1.0, 1.0);
      double delta = s > 0 ? e.highlight * s : e.shadow * s;
      if (sign > 0) {
        delta -= 0.25 * e.shadow * std::max(0.0f, c[x] - h[x]);
      }
      delta *= strength;
      for (int k = 0; k < 3; ++k) {
        row[x][k] = cv::saturate_cast<uchar>(row[x][k] + delta);
      }
    }
  }
}

// Raised digits: foil on their tops (if tipped), then the light's shading. Returns the relief.
cv::Mat emboss(cv::Mat& card, const cv::Mat& coverage, const Emboss& e, Rng& rng) {
  cv::Mat solid;
  // Embossed strokes are heavier than the font's: the die pushes a wide rounded ridge.
  cv::dilate(coverage, solid, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(3, 3)));
  cv::Mat height;
  solid.convertTo(height, CV_32F, 1.0 / 255);
  cv::GaussianBlur(height, height, cv::Size(0, 0), e.sigma_px);
  if (e.tipped) {
    cv::Mat top;
    cv::erode(coverage, top, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(3, 3)));
    cv::Mat alpha;
    top.convertTo(alpha, CV_32F, 1.0 / 255);
    // Worn tipping: a few spots where the foil has rubbed thin.
    const int spots = rng.between(0, 6);
    for (int i = 0; i < spots; ++i) {
      cv::Mat wear(alpha.size(), CV_32F, cv::Scalar(1));
      const cv::Rect ink = cv::boundingRect(coverage);
      cv::ellipse(wear,
                  cv::Point(ink.x + rng.between(0, std::max(1, ink.width)),
                            ink.y + rng.between(0, std::max(1, ink.height))),
                  cv::Size(rng.between(3, 12), rng.between(3, 10)), rng.uniform(0, 180), 0, 360,
                  cv::Scalar(rng.uniform(0.45, 0.8)), cv::FILLED);
      alpha = alpha.mul(wear);
    }
    // Metallic sheen: foil brightness drifts along the line.
    const cv::Mat sheen = smoothField(card.size(), 12, 0.82, 1.15, rng);
    for (int y = 0; y < card.rows; ++y) {
      auto* row = card.ptr<cv::Vec3b>(y);
      const float* a = alpha.ptr<float>(y);
      const float* s = sheen.ptr<float>(y);
      for (int x = 0; x < card.cols; ++x) {
        if (a[x] > 0) {
          for (int k = 0; k < 3; ++k) {
            row[x][k] = cv::saturate_cast<uchar>(row[x][k] * (1 - a[x]) + e.foil[k] * s[x] * a[x]);
          }
        }
      }
    }
  } else if (e.whitening > 0) {
    cv::Mat alpha;
    coverage.convertTo(alpha, CV_32F, e.whitening / 255.0 / 255.0);
    blend(card, alpha, cv::Scalar::all(255));
  }
  shadeRelief(card, height, e, +1.0, 1.0);
  return height;
}

// --- chips, brands, stripes ------------------------------------------------------------------

void drawChip(cv::Mat& card, cv::Point at, Rng& rng) {
  const bool silver = rng.chance(0.35);
  const cv::Scalar fill = silver ? cv::Scalar(190, 195, 200) : cv::Scalar(80, 175, 215);
  const cv::Scalar line = silver ? cv::Scalar(120, 125, 130) : cv::Scalar(45, 115, 150);
  const cv::Size size(rng.between(92, 110), rng.between(70, 82));
  const cv::Rect chip(at, size);
  cv::rectangle(card, chip, fill, cv::FILLED, cv::LINE_AA);
  cv::rectangle(card, chip, line, 2, cv::LINE_AA);
  const int third = size.height / 3;
  for (int k = 1; k <= 2; ++k) {
    cv::line(card, {chip.x, chip.y + k * third}, {chip.x + size.width / 3, chip.y + k * third},
             line, 2, cv::LINE_AA);
    cv::line(card, {chip.br().x - size.width / 3, chip.y + k * third},
             {chip.br().x, chip.y + k * third}, line, 2, cv::LINE_AA);
  }
  cv::rectangle(card,
                cv::Rect(chip.x + size.width / 3, chip.y + size.height / 5, size.width / 3,
                         size.height * 3 / 5),
                line, 2, cv::LINE_AA);
}

void drawBrand(cv::Mat& card, const std::string& number, cv::freetype::FreeType2& font,
               const cv::Scalar& ink, cv::Point at) {
  if (number.empty() || number[0] == '4') {
    drawText(card, font, "VISA", at + cv::Point(0, 40), 54, ink);
  } else if (number.rfind("34", 0) == 0 || number.rfind("37", 0) == 0) {
    cv::rectangle(card, cv::Rect(at.x, at.y - 20, 120, 70), cv::Scalar(200, 120, 30), cv::FILLED);
    drawText(card, font, "AMEX", at + cv::Point(8, 30), 34, cv::Scalar::all(255));
  } else if (number.rfind("62", 0) == 0) {
    const std::array<cv::Scalar, 3> tiles = {cv::Scalar(40, 30, 200), cv::Scalar(120, 60, 20),
                                             cv::Scalar(120, 130, 20)};
    for (int i = 0; i < 3; ++i) {
      cv::rectangle(card, cv::Rect(at.x + i * 38, at.y - 20, 44, 64), tiles[i], cv::FILLED);
    }
    drawText(card, font, "UnionPay", at + cv::Point(6, 24), 20, cv::Scalar::all(255));
  } else {
    cv::circle(card, at + cv::Point(30, 10), 36, cv::Scalar(30, 30, 225), cv::FILLED, cv::LINE_AA);
    cv::Mat overlay = card.clone();
    cv::circle(overlay, at + cv::Point(82, 10), 36, cv::Scalar(20, 160, 250), cv::FILLED,
               cv::LINE_AA);
    cv::addWeighted(overlay, 0.85, card, 0.15, 0, card);
  }
}

// --- the photograph --------------------------------------------------------------------------

// Where one camera sees the card: its corners in the photo, in the face's own order.
Corners placeCard(int quarter_turns, double tilt_rad, cv::Point2d centre, double long_px,
                  double perspective, Rng& rng) {
  const double angle = quarter_turns * M_PI / 2 + tilt_rad;
  const double short_px = long_px * kCardH / kCardW;
  const std::array<cv::Point2d, 4> local = {
      cv::Point2d(-long_px / 2, -short_px / 2), cv::Point2d(long_px / 2, -short_px / 2),
      cv::Point2d(long_px / 2, short_px / 2), cv::Point2d(-long_px / 2, short_px / 2)};
  // Keystone: one side of the card nearer the camera than the other.
  const double keystone = rng.uniform(-perspective, perspective);
  const bool along_long = rng.chance(0.5);
  std::array<cv::Point2d, 4> pts;
  for (std::size_t i = 0; i < 4; ++i) {
    cv::Point2d p = local[i];
    const double k = along_long ? (p.y < 0 ? 1 + keystone : 1 - keystone)
                                : (p.x < 0 ? 1 + keystone : 1 - keystone);
    p = along_long ? cv::Point2d(p.x * k, p.y) : cv::Point2d(p.x, p.y * k);
    const double j = perspective * long_px * 0.6;
    p += cv::Point2d(rng.uniform(-j, j), rng.uniform(-j, j));
    pts[i] = cv::Point2d(centre.x + p.x * std::cos(angle) - p.y * std::sin(angle),
                         centre.y + p.x * std::sin(angle) + p.y * std::cos(angle));
  }
  // Keep the whole card in the frame (the tray is smaller than the camera's view).
  constexpr double kMarginPx = 12;
  double min_x = 1e9;
  double max_x = -1e9;
  double min_y = 1e9;
  double max_y = -1e9;
  for (const auto& p : pts) {
    min_x = std::min(min_x, p.x);
    max_x = std::max(max_x, p.x);
    min_y = std::min(min_y, p.y);
    max_y = std::max(max_y, p.y);
  }
  const double fit = std::min({1.0, (kPhotoWidthPx - 2 * kMarginPx) / (max_x - min_x),
                               (kPhotoHeightPx - 2 * kMarginPx) / (max_y - min_y)});
  const cv::Point2d mid((min_x + max_x) / 2, (min_y + max_y) / 2);
  Corners corners;
  double shift_x = 0;
  double shift_y = 0;
  const double half_w = (max_x - min_x) * fit / 2;
  const double half_h = (max_y - min_y) * fit / 2;
  shift_x = std::clamp(mid.x, kMarginPx + half_w, kPhotoWidthPx - kMarginPx - half_w) - mid.x;
  shift_y = std::clamp(mid.y, kMarginPx + half_h, kPhotoHeightPx - kMarginPx - half_h) - mid.y;
  for (std::size_t i = 0; i < 4; ++i) {
    const cv::Point2d p = mid + (pts[i] - mid) * fit + cv::Point2d(shift_x, shift_y);
    corners[i] = cv::Point2f(static_cast<float>(p.x), static_cast<float>(p.y));
  }
  return corners;
}

// What one camera's picture suffers.
struct Damage {
  double blur_sigma_px = 0.6;
  int motion_px = 0;  // 0 = no motion blur
  double motion_rad = 0;
  double noise_sigma = 2.5;
  double light_strength = 0.1;  // brightness slope across the tray
  double vignette = 0.0;
  double glare_peak = 0.0;  // 0 = no glare
  cv::Scalar cast = cv::Scalar::all(1.0);
};

cv::Mat photograph(const cv::Mat& face, const cv::Mat& card_mask, const Corners& dst, int tray_grey,
                   const Damage& d, Rng& rng) {
  const cv::Size size(kPhotoWidthPx, kPhotoHeightPx);
  // The tray: grey with a faint texture.
  cv::Mat tray_field = smoothField(size, 16, tray_grey - 6, tray_grey + 6, rng);
  cv::Mat photo_f;
  cv::merge(std::vector<cv::Mat>{tray_field, tray_field, tray_field}, photo_f);

  const std::array<cv::Point2f, 4> src = {cv::Point2f(0, 0), cv::Point2f(kCardW, 0),
                                          cv::Point2f(kCardW, kCardH), cv::Point2f(0, kCardH)};
  const cv::Mat h = cv::getPerspectiveTransform(src.data(), dst.data());
  cv::Mat warped;
  cv::Mat alpha;
  cv::warpPerspective(face, warped, h, size, cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  cv::warpPerspective(card_mask, alpha, h, size, cv::INTER_LINEAR, cv::BORDER_CONSTANT);

  cv::Mat shadow;
  const cv::Mat shift =
      (cv::Mat_<double>(2, 3) << 1, 0, rng.uniform(-9, 9), 0, 1, rng.uniform(-9, 9));
  cv::warpAffine(alpha, shadow, shift, size);
  cv::GaussianBlur(shadow, shadow, cv::Size(0, 0), 9);
  photo_f = layOnTray(photo_f, warped, alpha, shadow, 0.4);
  cv::Mat a;  // the card's coverage, 0..1: glare lies on the card only
  alpha.convertTo(a, CV_32F, 1.0 / 255);

  // Uneven light: a slope, a vignette and the light's colour.
  const double light_angle = rng.uniform(0, 2 * M_PI);
  cv::Mat light(size, CV_32FC1);
  for (int y = 0; y < size.height; ++y) {
    auto* row = light.ptr<float>(y);
    for (int x = 0; x < size.width; ++x) {
      const double u = (x - size.width / 2.0) / size.width;
      const double v = (y - size.height / 2.0) / size.width;
      const double t = u * std::cos(light_angle) + v * std::sin(light_angle);
      row[x] = static_cast<float>((1.0 + 2 * d.light_strength * t) *
                                  (1.0 - d.vignette * (u * u + v * v) * 3));
    }
  }
  cv::Mat light3;
  cv::merge(std::vector<cv::Mat>{light * d.cast[0], light * d.cast[1], light * d.cast[2]}, light3);
  photo_f = photo_f.mul(light3);

  // Glare: the light's reflection on the glossy card, a soft bright ellipse.
  if (d.glare_peak > 0) {
    const double u = rng.uniform(0.1, 0.9);
    const double v = rng.uniform(0.1, 0.9);
    const cv::Point2f top = dst[0] + (dst[1] - dst[0]) * static_cast<float>(u);
    const cv::Point2f bottom = dst[3] + (dst[2] - dst[3]) * static_cast<float>(u);
    const cv::Point2f centre = top + (bottom - top) * static_cast<float>(v);
    const double ax = rng.uniform(60, 220);
    const double ay = rng.uniform(30, 110);
    const double rot = rng.uniform(0, M_PI);
    const double cr = std::cos(rot);
    const double sr = std::sin(rot);
    for (int y = 0; y < size.height; ++y) {
      auto* row = photo_f.ptr<cv::Vec3f>(y);
      const float* al = a.ptr<float>(y);
      for (int x = 0; x < size.width; ++x) {
        const double dx = x - centre.x;
        const double dy = y - centre.y;
        const double p = (dx * cr + dy * sr) / ax;
        const double q = (-dx * sr + dy * cr) / ay;
        const double r2 = p * p + q * q;
        if (r2 > 9) {
          continue;
        }
        const float g = static_cast<float>(d.glare_peak * std::exp(-r2) * (0.15 + 0.85 * al[x]));
        row[x] = row[x] * (1 - g) + cv::Vec3f(255, 255, 255) * g;
      }
    }
  }

  if (d.motion_px > 1) {
    cv::Mat kernel = cv::Mat::zeros(d.motion_px | 1, d.motion_px | 1, CV_32F);
    const cv::Point2d c(kernel.cols / 2.0, kernel.rows / 2.0);
    const cv::Point2d half(std::cos(d.motion_rad) * d.motion_px / 2.0,
                           std::sin(d.motion_rad) * d.motion_px / 2.0);
    cv::line(kernel, c - half, c + half, cv::Scalar(1), 1, cv::LINE_AA);
    kernel /= cv::sum(kernel)[0];
    cv::filter2D(photo_f, photo_f, -1, kernel);
  }
  cv::GaussianBlur(photo_f, photo_f, cv::Size(0, 0), d.blur_sigma_px);
  cv::Mat noise(size, CV_32FC3);
  cv::RNG cv_rng(rng.next());
  cv_rng.fill(noise, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(d.noise_sigma));
  photo_f += noise;
  cv::Mat photo;
  photo_f.convertTo(photo, CV_8UC3);
  return photo;
}

}  // namespace

class HardCardRenderer::Impl {
 public:
  explicit Impl(bool stroke_fonts) : mask_(roundedMask()) {
    for (const FontFile& f : hardFonts()) {
      if (!std::filesystem::is_regular_file(f.path)) {
        throw std::runtime_error("font not found: " + f.path + " (install " + f.package + ")");
      }
      auto font = cv::freetype::createFreeType2();
      font->loadFontData(f.path, 0);
      fonts_[stemOf(f.path)] = font;
    }
    if (stroke_fonts) {
      for (const StrokeStyle style :
           {StrokeStyle::kEmbossing, StrokeStyle::kEmbossingFooted, StrokeStyle::kSquare}) {
        fonts_[strokeFontName(style)] = createStrokeFont(style, fonts_.at("OCRB"));
      }
      emboss_fonts_.insert(emboss_fonts_.end(), kStrokeEmbossFonts.begin(),
                           kStrokeEmbossFonts.end());
      flat_number_fonts_.insert(flat_number_fonts_.end(), kStrokeFlatFonts.begin(),
                                kStrokeFlatFonts.end());
    }
  }

  CardPhotos render(const CardSpec& spec, std::uint64_t seed) {
    Rng rng(seed);
    Card card = design(spec, rng);
    cv::Mat front = drawFront(card, rng);
    cv::Mat back = drawBack(card, rng);
    return photographBoth(card, front, back, rng);
  }

 private:
  // Everything decided about one card before drawing it.
  struct Card {
    std::string number;
    bool scratched = false;  // unreadable card: the number area scratched out
    std::string style;       // CardTraits::number_style
    std::string font;
    std::vector<int> groups;
    bool on_back = false;
    Look look;
    Look back_look;
    int background_kind = 0;
    std::string bank;
    std::string holder;
    std::string text_font;
    Emboss emboss;
    cv::Mat relief;       // the embossed digits' height map, for the back's mirror image
    cv::Rect number_box;  // CardTraits::number_box
  };

  cv::freetype::FreeType2& font(const std::string& stem) { return *fonts_.at(stem); }

  Card design(const CardSpec& spec, Rng& rng) {
    Card c;
    c.number = spec.number;
    c.look = randomLook(rng);
    c.back_look = rng.chance(0.6) ? c.look : randomLook(rng);
    c.background_kind = rng.between(0, 6);
    c.bank = pickOf(kBanks, rng);
    c.holder = pickOf(kHolders, rng);
    c.text_font = pickOf(kTextFonts, rng);
    if (c.number.empty()) {
      c.style = "none";
      c.scratched = spec.unreadable == Unreadable::kScratched ||
                    (spec.unreadable == Unreadable::kBySeed && rng.chance(0.5));
      return c;
    }
    const double style = rng.uniform(0, 1);
    if (style < 0.18) {
      c.style = "embossed-plain";
    } else if (style < 0.36) {
      c.style = "embossed-silver";
    } else if (style < 0.48) {
      c.style = "embossed-gold";
    } else {
      c.style = "flat";
    }
    const bool embossed = c.style != "flat";
    c.font = embossed ? pickOf(emboss_fonts_, rng) : pickOf(flat_number_fonts_, rng);
    c.on_back = !embossed && rng.chance(0.3);
    switch (c.number.size()) {
      case 15:
        c.groups = {4, 6, 5};
        break;
      case 16:
        c.groups = {4, 4, 4, 4};
        break;
      case 19:
        c.groups = rng.chance(0.5) ? std::vector<int>{6, 13} : std::vector<int>{4, 4, 4, 4, 3};
        break;
      default: {
        for (int left = static_cast<int>(c.number.size()); left > 0; left -= 4) {
          c.groups.push_back(std::min(left, 4));
        }
      }
    }
    if (embossed) {
      c.emboss.tipped = c.style != "embossed-plain";
      c.emboss.foil = c.style == "embossed-gold"
                          ? hsv(rng.uniform(38, 48), rng.uniform(0.45, 0.7), rng.uniform(0.7, 0.9))
                          : hsv(rng.uniform(0, 360), rng.uniform(0, 0.06), rng.uniform(0.75, 0.92));
      c.emboss.light_rad = rng.uniform(0, 2 * M_PI);
      c.emboss.sigma_px = rng.uniform(1.1, 1.8);
      c.emboss.highlight = rng.uniform(55, 95);
      c.emboss.shadow = rng.uniform(60, 100);
      c.emboss.whitening = c.emboss.tipped ? 0 : rng.uniform(0, 20);
    }
    return c;
  }

  cv::Mat background(const Look& look, int kind, Rng& rng) {
    cv::Mat face = gradient(look, rng);
    switch (kind) {
      case 0:
        break;  // the gradient alone
      case 1:
        guilloche(face, look, rng);
        break;
      case 2:
        geometricPattern(face, look, rng);
        break;
      case 3:
        landscape(face, rng);
        break;
      case 4:
        bokeh(face, look, rng);
        break;
      case 5:
        waves(face, look, rng);
        break;
      default:
        waves(face, look, rng);
        guilloche(face, look, rng);
        break;
    }
    // A large watermark logo: rings, a sweep, or the bank's initial.
    if (rng.chance(0.5)) {
      cv::Mat overlay = face.clone();
      const cv::Point centre(rng.between(0, kCardW), rng.between(0, kCardH));
      const int radius = rng.between(80, 260);
      const cv::Scalar colour = rng.chance(0.5) ? look.accent : cv::Scalar::all(255);
      switch (rng.between(0, 2)) {
        case 0:
          for (int r = radius; r > 10; r -= rng.between(12, 30)) {
            cv::circle(overlay, centre, r, colour, rng.between(3, 12), cv::LINE_AA);
          }
          break;
        case 1:
          cv::ellipse(overlay, centre, cv::Size(radius, radius / 2), rng.uniform(0, 180), 0, 250,
                      colour, rng.between(15, 45), cv::LINE_AA);
          break;
        default: {
          auto& logo_font = font(pickOf(kTextFonts, rng));
          const std::string initial(1, static_cast<char>('A' + rng.between(0, 25)));
          drawText(overlay, logo_font, initial, centre, radius * 2, colour);
          break;
        }
      }
      cv::addWeighted(overlay, rng.uniform(0.12, 0.35), face, 1.0, 0, face);
    }
    return face;
  }

  // Pixels of the face under `region` calmed until ink of `ink` luminance stands out by
  // `min_contrast` grey levels from nearly all of them (or, for relief, until the background is
  // smooth enough that highlights and shadows show). Honest readability, not realism, decides.
  static void calmBehind(cv::Mat& face, const cv::Rect& region, double ink_luminance,
                         double min_contrast, double max_spread) {
    const cv::Rect area = region & cv::Rect(0, 0, face.cols, face.rows);
    if (area.area() == 0) {
      return;
    }
    cv::Mat feather(face.size(), CV_32F, cv::Scalar(0));
    cv::rectangle(feather, area, cv::Scalar(1), cv::FILLED);
    cv::GaussianBlur(feather, feather, cv::Size(0, 0), 8);
    for (int step = 0; step < 8; ++step) {
      cv::Mat gray;
      cv::cvtColor(face(area), gray, cv::COLOR_BGR2GRAY);
      std::vector<uchar> v(gray.begin<uchar>(), gray.end<uchar>());
      std::sort(v.begin(), v.end());
      const double p05 = v[v.size() / 20];
      const double p95 = v[v.size() * 19 / 20];
      const double mean = cv::mean(gray)[0];
      const bool same_side = (p05 - ink_luminance) * (p95 - ink_luminance) > 0;
      const double room = std::min(std::abs(p05 - ink_luminance), std::abs(p95 - ink_luminance));
      const bool contrast_ok = ink_luminance < 0 || (same_side && room >= min_contrast);
      const bool smooth_ok = p95 - p05 <= max_spread;
      if (contrast_ok && smooth_ok) {
        return;
      }
      // Pull the background towards a calm tone on the far side from the ink.
      double target = mean;
      if (ink_luminance >= 0) {
        target = ink_luminance > 127 ? std::min(mean, ink_luminance - min_contrast - 25)
                                     : std::max(mean, ink_luminance + min_contrast + 25);
        target = std::clamp(target, 0.0, 255.0);
      }
      const cv::Scalar avg = cv::mean(face(area));
      const double avg_lum = std::max(1.0, luminance(avg));
      cv::Scalar tone = avg * (target / avg_lum);
      for (int k = 0; k < 3; ++k) {
        tone[k] = std::clamp(tone[k], 0.0, 255.0);
      }
      cv::Mat alpha = feather * 0.35;
      blend(face, alpha, tone);
    }
  }

  // The number line: calmed background, then ink or embossing. Returns the ink's box.
  cv::Rect drawNumber(cv::Mat& face, Card& c, cv::Point start, int height_px, double max_width,
                      bool embossed, Rng& rng) {
    auto& f = font(c.font);
    const std::string text = groupDigits(c.number, c.groups);
    // Tabular digits, a little tracking, a clear gap between groups; shrink to fit the card.
    const double tracking = embossed ? rng.uniform(1.12, 1.3) : rng.uniform(1.0, 1.25);
    const double gap_share = rng.uniform(0.6, 1.3);
    const int digits = static_cast<int>(c.number.size());
    const int spaces = static_cast<int>(c.groups.size()) - 1;
    double pitch = digitWidth(f, height_px) * tracking;
    while (height_px > 30 && pitch * (digits + gap_share * spaces) > max_width) {
      height_px -= 2;
      pitch = digitWidth(f, height_px) * tracking;
    }
    cv::Mat coverage(face.size(), CV_8UC1, cv::Scalar(0));
    const cv::Rect ink = layOutLine(coverage, f, text, start, height_px, pitch, pitch * gap_share);
    const cv::Rect around(ink.x - 14, ink.y - 12, ink.width + 28, ink.height + 24);
    if (embossed) {
      // The relief shows whatever the colours (silver tipping on a white card is read by its
      // shading, as untipped digits are); only a busy picture behind it would hide it.
      calmBehind(face, around, -1, 0, c.emboss.tipped ? 110 : 55);
      c.relief = emboss(face, coverage, c.emboss, rng);
    } else {
      // Ink: dark or light, whichever the background under the line leaves more room for.
      cv::Mat gray;
      cv::cvtColor(face(around & cv::Rect(0, 0, face.cols, face.rows)), gray, cv::COLOR_BGR2GRAY);
      const double bg = cv::mean(gray)[0];
      cv::Scalar ink_colour;
      if (bg > 120) {
        ink_colour = rng.chance(0.7)
                         ? hsv(rng.uniform(0, 360), rng.uniform(0, 0.6), rng.uniform(0.0, 0.25))
                         : hsv(rng.uniform(0, 360), rng.uniform(0.5, 1), 0.35);
      } else {
        ink_colour = rng.chance(0.7)
                         ? hsv(rng.uniform(0, 360), rng.uniform(0, 0.1), rng.uniform(0.88, 1.0))
                         : hsv(rng.uniform(38, 50), rng.uniform(0.3, 0.5), 0.95);
      }
      calmBehind(face, around, luminance(ink_colour), 70, 255);
      cv::Mat alpha;
      coverage.convertTo(alpha, CV_32F, 1.0 / 255);
      blend(face, alpha, ink_colour);
    }
    return ink;
  }

  // Ink for small text that contrasts with the face's colour.
  static cv::Scalar textInk(const Look& look) {
    return luminance(look.base) > 130 ? cv::Scalar(30, 25, 20) : cv::Scalar(245, 245, 245);
  }

  cv::Mat drawFront(Card& c, Rng& rng) {
    cv::Mat face = background(c.look, c.background_kind, rng);
    const cv::Scalar ink = textInk(c.look);
    auto& text_font = font(c.text_font);
    drawText(face, text_font, c.bank, {rng.between(45, 90), rng.between(70, 95)},
             rng.between(30, 42), ink);
    if (rng.chance(0.4)) {
      drawText(face, font("DejaVuSans-Bold"), pickOf(kTiers, rng), {rng.between(560, 680), 80}, 22,
               ink);
    }
    drawChip(face, {rng.between(70, 110), rng.between(150, 185)}, rng);
    for (int i = 0; i < 3; ++i) {
      cv::ellipse(face, {240, 205}, {10 + 9 * i, 10 + 9 * i}, 0, -40, 40, ink, 3, cv::LINE_AA);
    }
    const bool embossed = c.style.rfind("embossed", 0) == 0;
    const int number_x = rng.between(55, 100);
    const int baseline = rng.between(335, 385);
    if (!c.number.empty() && !c.on_back) {
      const int height_px = embossed ? rng.between(54, 66) : rng.between(46, 66);
      const cv::Rect ink_box = drawNumber(face, c, {number_x, baseline}, height_px,
                                          kCardW - number_x - 40, embossed, rng);
      c.number_box = ink_box;
      // Many embossed cards repeat the first four digits in small print under the number.
      if (embossed && rng.chance(0.35)) {
        drawText(face, font("OCRB"), c.number.substr(0, 4), {ink_box.x, ink_box.br().y + 22}, 17,
                 ink);
      }
    } else if (c.scratched) {
      const cv::Rect band(number_x - 15, baseline - 60, 720, 80);
      cv::rectangle(face, band, mix(c.look.base, cv::Scalar::all(90), 0.6), cv::FILLED);
      for (int i = 0; i < 70; ++i) {
        const cv::Point a(band.x + rng.between(0, band.width),
                          band.y + rng.between(0, band.height));
        const cv::Point b = a + cv::Point(rng.between(-80, 80), rng.between(-12, 12));
        cv::line(face, a, b, mix(c.look.base, cv::Scalar::all(rng.chance(0.5) ? 200 : 40), 0.5),
                 rng.between(1, 3), cv::LINE_AA);
      }
    }
    // Expiry and holder: embossed with the number on embossed cards, printed otherwise.
    const std::string expiry = twoDigits(rng.between(1, 12)) + "/" + twoDigits(rng.between(25, 34));
    const cv::Point expiry_at(rng.between(320, 400), 430);
    const cv::Point holder_at(rng.between(60, 90), rng.between(475, 495));
    if (embossed) {
      cv::Mat coverage(face.size(), CV_8UC1, cv::Scalar(0));
      auto& f = font(c.font);
      layOutLine(coverage, f, expiry, expiry_at, 34, digitWidth(f, 34) * 1.1, 14);
      layOutLine(coverage, f, c.holder, holder_at, 32, digitWidth(f, 32) * 1.05, 18);
      emboss(face, coverage, c.emboss, rng);
      // The number's relief is kept for the back; the smaller lines are pressed through too.
      cv::Mat all_relief;
      coverage.convertTo(all_relief, CV_32F, 1.0 / 255);
      cv::GaussianBlur(all_relief, all_relief, cv::Size(0, 0), c.emboss.sigma_px);
      c.relief = cv::max(c.relief, all_relief);
    } else {
      if (!c.on_back || rng.chance(0.5)) {
        drawText(face, font("DejaVuSans"), "VALID THRU", expiry_at + cv::Point(-95, -8), 12, ink);
        drawText(face, text_font, expiry, expiry_at, 28, ink);
      }
      drawText(face, text_font, c.holder, holder_at, rng.between(24, 32), ink);
    }
    drawBrand(face, c.number, font("DejaVuSans-Bold"), ink,
              {rng.between(640, 680), rng.between(430, 450)});
    return face;
  }

  cv::Mat drawBack(Card& c, Rng& rng) {
    cv::Mat face = background(c.back_look, rng.chance(0.5) ? 0 : rng.between(1, 6), rng);
    const cv::Scalar ink = textInk(c.back_look);
    // Magnetic stripe, signature panel, security code.
    const int stripe_y = rng.between(35, 55);
    cv::rectangle(face, cv::Rect(0, stripe_y, kCardW, rng.between(78, 90)),
                  hsv(rng.uniform(20, 40), rng.uniform(0, 0.5), rng.uniform(0.08, 0.2)),
                  cv::FILLED);
    const cv::Rect strip(rng.between(40, 60), stripe_y + 130, rng.between(480, 560), 58);
    cv::rectangle(face, strip, cv::Scalar(232, 238, 240), cv::FILLED);
    for (int x = strip.x; x < strip.br().x; x += 9) {
      cv::line(face, {x, strip.y}, {x + 20, strip.br().y - 1}, cv::Scalar(212, 222, 228), 1);
    }
    const cv::Rect code_box(strip.br().x + 12, strip.y + 4, 95, 50);
    cv::rectangle(face, code_box, cv::Scalar(250, 250, 250), cv::FILLED);
    drawText(face, font("DejaVuSansMono-Bold"), std::to_string(rng.between(100, 999)),
             {code_box.x + 14, code_box.y + 37}, 30, cv::Scalar(30, 30, 30));

    int text_y = strip.br().y + 45;
    if (c.on_back) {
      // Numberless front: the number is printed here, under the signature panel or low down.
      const bool low = rng.chance(0.4);
      const int baseline = low ? rng.between(470, 500) : strip.br().y + rng.between(60, 80);
      c.number_box = drawNumber(face, c, {rng.between(45, 80), baseline}, rng.between(40, 52),
                                kCardW - 120, false, rng);
      drawText(face, font(c.text_font), c.holder,
               {rng.between(45, 80), low ? baseline - 75 : baseline + 50}, 22, ink);
      text_y = low ? strip.br().y + 40 : 505;
    }
    auto& small = font(
        pickOf(std::vector<std::string>{"DejaVuSans", "LiberationSans-Regular", "FreeSans"}, rng));
    drawText(face, small, "This card is the property of " + c.bank + ". If found, please",
             {50, text_y}, 17, ink);
    if (text_y + 25 < kCardH - 20) {
      // A phone number: digits that are not the card number.
      drawText(face, small,
               "return it or call +44 20 " + std::to_string(rng.between(1000, 9999)) + " " +
                   std::to_string(rng.between(1000, 9999)),
               {50, text_y + 25}, 17, ink);
    }
    if (!c.on_back && rng.chance(0.5)) {
      // A hologram: a small rainbow patch.
      const cv::Rect holo(rng.between(640, 700), rng.between(390, 420), 110, 70);
      for (int x = holo.x; x < holo.br().x; ++x) {
        cv::line(face, {x, holo.y}, {x, holo.br().y}, hsv((x - holo.x) * 3.3, 0.35, 0.9), 1);
      }
    }
    // An embossed card's back: the same digits, mirrored and pressed in.
    if (!c.relief.empty()) {
      cv::Mat mirrored;
      cv::flip(c.relief, mirrored, 1);
      Emboss back = c.emboss;
      back.light_rad = M_PI - c.emboss.light_rad;  // the card turned over, the light stays
      shadeRelief(face, mirrored, back, -1.0, rng.uniform(0.3, 0.5));
    }
    return face;
  }

  static std::string twoDigits(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

  Damage randomDamage(double severity, Rng& rng) {
    Damage d;
    d.blur_sigma_px = 0.5 + 1.3 * severity * rng.uniform(0.3, 1.0);
    if (rng.chance(0.25 * severity)) {
      d.motion_px = rng.between(3, 3 + static_cast<int>(6 * severity));
      d.motion_rad = rng.uniform(0, M_PI);
    }
    d.noise_sigma = 1.5 + 6.5 * severity * rng.uniform(0.3, 1.0);
    d.light_strength = rng.uniform(0.05, 0.35);
    d.vignette = rng.uniform(0, 0.25);
    d.glare_peak = rng.chance(0.4) ? rng.uniform(0.3, 0.35 + 0.3 * severity) : 0.0;
    d.cast = cv::Scalar(rng.uniform(0.9, 1.1), rng.uniform(0.95, 1.05), rng.uniform(0.9, 1.1));
    return d;
  }

  CardPhotos photographBoth(const Card& c, const cv::Mat& front, const cv::Mat& back, Rng& rng) {
    // How hard the photos are: untipped embossing is already hard, so it gets less damage.
    double severity = rng.uniform(0, 1);
    if (c.style == "embossed-plain") {
      severity *= 0.6;
    }
    const bool back_up = rng.chance(0.5);
    const int turns = rng.between(0, 3);
    const double tilt = rng.uniform(-8, 8) * M_PI / 180;
    const double long_px = turns % 2 == 0 ? kPhotoWidthPx * rng.uniform(0.55, 0.72)
                                          : kPhotoHeightPx * rng.uniform(0.72, 0.9);
    const cv::Point2d centre(kPhotoWidthPx / 2.0 + rng.uniform(-80, 80),
                             kPhotoHeightPx / 2.0 + rng.uniform(-60, 60));
    const double perspective = 0.01 + 0.05 * rng.uniform(0, 1);
    const cv::Mat& upper = back_up ? back : front;
    const cv::Mat& lower = back_up ? front : back;
    // The lower camera looks up at the other face: the card's pose is mirrored left-right.
    const int lower_turns = (4 - turns) % 4;
    const Corners upper_corners = placeCard(turns, tilt, centre, long_px, perspective, rng);
    const Corners lower_corners = placeCard(
        lower_turns, -tilt, {kPhotoWidthPx - centre.x, centre.y}, long_px, perspective, rng);

    // The tray stays clearly apart from the card's edge so the card has an outline.
    const double card_lum = luminance(c.look.base);
    const int tray_grey = card_lum > 90 ? rng.between(30, 65) : rng.between(95, 125);

    CardPhotos photos;
    photos.front =
        photograph(upper, mask_, upper_corners, tray_grey, randomDamage(severity, rng), rng);
    photos.back =
        photograph(lower, mask_, lower_corners, tray_grey, randomDamage(severity, rng), rng);
    photos.front_corners = upper_corners;
    photos.back_corners = lower_corners;
    photos.jpeg_quality = static_cast<int>(std::lround(90 - 50 * severity * rng.uniform(0.4, 1.0)));
    photos.traits.number_style = c.style;
    photos.traits.font = c.font;
    std::string grouping;
    for (const int g : c.groups) {
      grouping += (grouping.empty() ? "" : "-") + std::to_string(g);
    }
    photos.traits.grouping = grouping;
    photos.traits.number_on_back = c.on_back;
    photos.traits.number_box = c.number_box;
    photos.traits.back_up = back_up;
    photos.traits.front_quarter_turns = turns;
    return photos;
  }

  cv::Mat mask_;
  std::map<std::string, cv::Ptr<cv::freetype::FreeType2>> fonts_;
  std::vector<std::string> emboss_fonts_ = kEmbossFonts;
  std::vector<std::string> flat_number_fonts_ = kFlatNumberFonts;
};

HardCardRenderer::HardCardRenderer(bool stroke_fonts)
    : impl_(std::make_unique<Impl>(stroke_fonts)) {}
HardCardRenderer::~HardCardRenderer() = default;

CardPhotos HardCardRenderer::render(const CardSpec& spec, std::uint64_t seed) {
  return impl_->render(spec, seed);
}

}  // namespace detail
}  // namespace lostcard::cardgen
