// lostcard-train-digits: trains the recognition's digit classifier (digit_classifier.hpp) and
// writes the model the recognizer loads from models/digits/.
//
//   lostcard-train-digits --out models/digits/digit_mlp.yml.gz [--seed 1] [--lines 2400]
//                         [--card-photos 5000]
//
// It renders lines of random card digits in the fonts cards are printed with (Debian's font
// packages: fonts-ocr-a, fonts-ocr-b, fonts-dejavu-core, fonts-liberation2, fonts-freefont-ttf),
// on light and dark backgrounds with patterns, blur, noise, a slight tilt, lost resolution and
// JPEG compression, sometimes as embossed relief lit from one side; then cuts each line into
// glyphs with the recognizer's own prepareLine + segmentLine, so the network learns from the
// very crops it will see. Lines whose cut does not give one glyph per digit are left out.
// With --card-photos, it also draws whole cards with lostcard-cardgen's hard preset (named
// train-NNNNN: no benchmark set has such a card) and learns from the glyphs the recognizer cuts
// from their number lines: tipping, glare, perspective and the patterns behind the number, as
// the box's cameras see them.
// Every tenth line is kept back for validation; the last line printed is
//   train-digits: lines=.. glyphs=.. validation_glyphs=.. glyph_accuracy=.. line_accuracy=..
//                 relief_line_accuracy=.. card_photo_line_accuracy=..
// (line_accuracy over all lines kept back, the card photos' among them).
// Deterministic: the same seed and fonts give the same model.
//
// With --glyph-set FILE it also writes every glyph (learnt from and kept back) with its label to
// FILE, for models/digits/train_cnn.py, which trains the convolutional network; without --out it
// then trains no MLP. --exact-groups keeps only cuts whose groups are the printed ones; --height
// also cuts embossed lines and cards with the height preparation (LinePrep::kHeight); --pitch
// also cuts the number lines of embossed card photos by pitch (segmentLineByPitch), as the
// recognizer cuts inkless embossing. --stroke-fonts adds the digits drawn from strokes
// (lostcard/cardgen/stroke_font.hpp: the embossers' Farrington-7B-like digits, as nearly every
// embossed card has them, and a squared print face) to the rendered lines and the card photos.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <opencv2/freetype.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "lostcard/cardgen/card_renderer.hpp"
#include "lostcard/cardgen/stroke_font.hpp"
#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/cloud/digit_classifier.hpp"
#include "lostcard/cloud/recognition_stages.hpp"

namespace po = boost::program_options;
namespace lc = lostcard::cloud;

namespace {

struct FontFile {
  std::string path;
  std::string package;
};

const std::vector<FontFile>& fontFiles() {
  static const std::string dejavu = "/usr/share/fonts/truetype/dejavu/";
  static const std::string liberation = "/usr/share/fonts/truetype/liberation2/";
  static const std::string freefont = "/usr/share/fonts/truetype/freefont/";
  static const std::vector<FontFile> fonts = {
      {"/usr/share/fonts/truetype/ocr-a/OCRA.ttf", "fonts-ocr-a"},
      {"/usr/share/fonts/opentype/ocr-b/OCRB.otf", "fonts-ocr-b"},
      {dejavu + "DejaVuSans.ttf", "fonts-dejavu-core"},
      {dejavu + "DejaVuSans-Bold.ttf", "fonts-dejavu-core"},
      {dejavu + "DejaVuSansMono.ttf", "fonts-dejavu-core"},
      {dejavu + "DejaVuSansMono-Bold.ttf", "fonts-dejavu-core"},
      {dejavu + "DejaVuSerif.ttf", "fonts-dejavu-core"},
      {dejavu + "DejaVuSerif-Bold.ttf", "fonts-dejavu-core"},
      {liberation + "LiberationSans-Regular.ttf", "fonts-liberation2"},
      {liberation + "LiberationSans-Bold.ttf", "fonts-liberation2"},
      {liberation + "LiberationMono-Regular.ttf", "fonts-liberation2"},
      {liberation + "LiberationMono-Bold.ttf", "fonts-liberation2"},
      {liberation + "LiberationSerif-Bold.ttf", "fonts-liberation2"},
      {freefont + "FreeSans.ttf", "fonts-freefont-ttf"},
      {freefont + "FreeSansBold.ttf", "fonts-freefont-ttf"},
      {freefont + "FreeMono.ttf", "fonts-freefont-ttf"},
      {freefont + "FreeMonoBold.ttf", "fonts-freefont-ttf"},
      {freefont + "FreeSerifBold.ttf", "fonts-freefont-ttf"},
  };
  return fonts;
}

const std::vector<std::vector<int>> kGroupings = {{4, 4, 4, 4},    {4, 6, 5}, {6, 13},
                                                  {4, 4, 4, 4, 3}, {4, 6, 4}, {16}};

using Rng = std::mt19937;

double uniform(Rng& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}
int uniformInt(Rng& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
bool chance(Rng& rng, double p) { return uniform(rng, 0, 1) < p; }

struct RenderedLine {
  cv::Mat image;      // BGR
  cv::Rect text_box;  // where a line locator would put the box
  std::string digits;
  std::vector<std::size_t> groups;  // as printed
  bool embossed = false;
};

// A background like a card's: a gradient between two colours, sometimes with waves or stripes.
cv::Mat background(Rng& rng, cv::Size size, bool dark) {
  const auto colour = [&] {
    return dark
               ? cv::Scalar(uniform(rng, 10, 90), uniform(rng, 10, 90), uniform(rng, 10, 90))
               : cv::Scalar(uniform(rng, 160, 255), uniform(rng, 160, 255), uniform(rng, 160, 255));
  };
  const cv::Scalar a = colour();
  const cv::Scalar b = colour();
  cv::Mat bg(size, CV_8UC3);
  const double angle = uniform(rng, 0, 2 * M_PI);
  for (int y = 0; y < size.height; ++y) {
    auto* row = bg.ptr<cv::Vec3b>(y);
    for (int x = 0; x < size.width; ++x) {
      const double t = 0.5 + 0.5 * std::sin(angle) * (x - size.width / 2.0) / size.width +
                       0.5 * std::cos(angle) * (y - size.height / 2.0) / size.height;
      for (int c = 0; c < 3; ++c) {
        row[x][c] = cv::saturate_cast<uchar>(a[c] * (1 - t) + b[c] * t);
      }
    }
  }
  if (chance(rng, 0.4)) {
    const cv::Scalar line_colour = colour() * uniform(rng, 0.85, 1.15);
    const double period = uniform(rng, 8, 30);
    const double amp = uniform(rng, 2, 12);
    for (int k = 0; k < size.height / 8 + 2; ++k) {
      std::vector<cv::Point> pts;
      for (int x = 0; x < size.width; x += 4) {
        pts.emplace_back(x, static_cast<int>(k * 9 + amp * std::sin(x / period + k)));
      }
      cv::polylines(bg, pts, false, line_colour, 1, cv::LINE_AA);
    }
  }
  return bg;
}

// Raised digits lit from one side: the glyph mask (widened as an embosser's die widens the
// strokes, sometimes) as a height field, shaded by its slope towards a light at any angle, with
// separate strengths for the lit and the shaded side, sometimes a short cast shadow, and either
// foil on the tops (tipped) or only a slight whitening of the stretched plastic (untipped).
cv::Mat embossed(Rng& rng, const cv::Mat& bg, const cv::Mat& mask, int font_px, bool tipped) {
  cv::Mat solid = mask;
  if (chance(rng, 0.6)) {
    const int k = std::max(3, (font_px / 14) | 1);
    cv::dilate(mask, solid, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(k, k)));
  }
  cv::Mat height;
  solid.convertTo(height, CV_32F, 1.0 / 255);
  const double softness = uniform(rng, 0.8, 1.9) * font_px / 34.0;
  cv::GaussianBlur(height, height, cv::Size(), softness);
  cv::Mat gx;
  cv::Mat gy;
  cv::Sobel(height, gx, CV_32F, 1, 0, 3);
  cv::Sobel(height, gy, CV_32F, 0, 1, 3);
  const double light = uniform(rng, 0, 2 * M_PI);
  const double lx = std::cos(light);
  const double ly = std::sin(light);
  // Slope along the light, scaled so a full step reads about 1.
  cv::Mat slope = -(gx * lx + gy * ly) * (softness * std::sqrt(2 * M_PI) / 8.0);
  const double lit = uniform(rng, 45, 110);
  const double shaded = uniform(rng, 50, 120);
  cv::Mat shade(slope.size(), CV_32F);
  for (int y = 0; y < slope.rows; ++y) {
    const float* s = slope.ptr<float>(y);
    float* d = shade.ptr<float>(y);
    for (int x = 0; x < slope.cols; ++x) {
      const double v = std::clamp(static_cast<double>(s[x]), -1.0, 1.0);
      d[x] = static_cast<float>(v > 0 ? lit * v : shaded * v);
    }
  }
  if (chance(rng, 0.5)) {
    const double reach = uniform(rng, 1.0, 3.0) * font_px / 34.0;
    cv::Mat cast;
    const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, -reach * lx, 0, 1, -reach * ly);
    cv::warpAffine(height, cast, shift, height.size());
    shade -= 0.25 * shaded * cv::max(cast - height, 0.0);
  }
  cv::Mat out;
  bg.convertTo(out, CV_32FC3);
  std::vector<cv::Mat> channels;
  cv::split(out, channels);
  const cv::Scalar tip = chance(rng, 0.5) ? cv::Scalar(200, 200, 205) : cv::Scalar(70, 170, 215);
  const double whitening = tipped ? 0.0 : uniform(rng, 0, 0.08);
  for (int c = 0; c < 3; ++c) {
    if (tipped) {
      channels[c] = channels[c].mul(1 - height) + height * tip[c];
    } else {
      channels[c] += height * (255.0 * whitening);
    }
    channels[c] += shade;
  }
  cv::merge(channels, out);
  out.convertTo(out, CV_8UC3);
  return out;
}

RenderedLine renderLine(Rng& rng, cv::freetype::FreeType2& font) {
  const auto& grouping = kGroupings[uniformInt(rng, 0, static_cast<int>(kGroupings.size()) - 1)];
  const std::string gap(chance(rng, 0.7) ? 1 : 2, ' ');
  RenderedLine line;
  line.groups.assign(grouping.begin(), grouping.end());
  std::string text;
  for (std::size_t g = 0; g < grouping.size(); ++g) {
    if (g > 0) {
      text += gap;
    }
    for (int i = 0; i < grouping[g]; ++i) {
      const char d = static_cast<char>('0' + uniformInt(rng, 0, 9));
      text += d;
      line.digits += d;
    }
  }
  const int font_px = uniformInt(rng, 22, 64);
  int baseline = 0;
  const cv::Size text_size = font.getTextSize(text, font_px, -1, &baseline);
  const int margin = font_px;
  const cv::Size size(text_size.width + 2 * margin, text_size.height + baseline + 2 * margin);
  const bool dark = chance(rng, 0.25);
  const int style = uniformInt(rng, 0, 9);  // 0..1: untipped embossing, 2: tipped, else flat
  line.embossed = style <= 2;
  cv::Mat bg = background(rng, size, dark && !line.embossed);
  const cv::Point org(margin, margin);
  cv::Mat mask(size, CV_8UC3, cv::Scalar::all(0));  // FreeType draws on colour images only
  font.putText(mask, text, org, font_px, cv::Scalar::all(255), -1, cv::LINE_AA, false);
  cv::cvtColor(mask, mask, cv::COLOR_BGR2GRAY);
  const cv::Rect ink_box = cv::boundingRect(mask);  // where the glyphs really are
  if (line.embossed) {
    line.image = embossed(rng, bg, mask, font_px, style == 2);
  } else {
    const cv::Scalar ink =
        dark ? cv::Scalar::all(uniform(rng, 190, 255))
             : cv::Scalar(uniform(rng, 0, 90), uniform(rng, 0, 90), uniform(rng, 0, 90));
    cv::Mat alpha;
    mask.convertTo(alpha, CV_32F, 1.0 / 255);
    cv::cvtColor(alpha, alpha, cv::COLOR_GRAY2BGR);
    cv::Mat printed;
    bg.convertTo(printed, CV_32FC3);
    const cv::Mat ink_layer(size, CV_32FC3, ink);
    printed = printed.mul(cv::Scalar::all(1.0) - alpha) + ink_layer.mul(alpha);
    printed.convertTo(line.image, CV_8UC3);
  }
  // Tilt, lost resolution, blur, noise, JPEG.
  const double tilt = uniform(rng, -1.5, 1.5);
  const cv::Mat rot =
      cv::getRotationMatrix2D(cv::Point2f(size.width / 2.f, size.height / 2.f), tilt, 1.0);
  cv::warpAffine(line.image, line.image, rot, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  const double shrink = uniform(rng, 0.55, 1.0);
  if (shrink < 0.95) {
    cv::Mat small;
    cv::resize(line.image, small, cv::Size(), shrink, shrink, cv::INTER_AREA);
    cv::resize(small, line.image, size, 0, 0, cv::INTER_LINEAR);
  }
  const double sigma = uniform(rng, 0, 1.3);
  if (sigma > 0.3) {
    cv::GaussianBlur(line.image, line.image, cv::Size(), sigma);
  }
  cv::Mat noise(size, CV_16SC3);
  cv::randn(noise, 0, uniform(rng, 0, 10));
  cv::Mat noisy;
  line.image.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(line.image, CV_8UC3);
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", line.image, jpeg, {cv::IMWRITE_JPEG_QUALITY, uniformInt(rng, 40, 95)});
  line.image = cv::imdecode(jpeg, cv::IMREAD_COLOR);
  // The locator's box: the text's, give or take a few pixels.
  const int jitter = std::max(1, font_px / 10);
  line.text_box = cv::Rect(ink_box.x + uniformInt(rng, -jitter, jitter),
                           ink_box.y + uniformInt(rng, -jitter, jitter),
                           ink_box.width + uniformInt(rng, -jitter, jitter),
                           ink_box.height + uniformInt(rng, -jitter, jitter)) &
                  cv::Rect(0, 0, size.width, size.height);
  return line;
}

// A glyph turned upside down or mirrored: 6 and 9 turned are each other; turned or mirrored,
// 3, 4 and 7 are no digit at all (almost every line of 16 digits has one, so a line read the
// wrong way round shows a non-digit). The others look too much like digits when turned (0, 1
// and 8 like themselves, a turned 2 like some fonts' 2, a mirrored 5 like a 2) to teach
// anything but confusion.
std::vector<std::pair<cv::Mat, int>> wrongWayRound(const cv::Mat& glyph, int digit) {
  std::vector<std::pair<cv::Mat, int>> out;
  const bool never_a_digit = digit == 3 || digit == 4 || digit == 7;
  if (!never_a_digit && digit != 6 && digit != 9) {
    return out;
  }
  cv::Mat turned;
  cv::rotate(glyph, turned, cv::ROTATE_180);
  out.emplace_back(turned, digit == 6 ? 9 : digit == 9 ? 6 : lc::kNotADigit);
  if (never_a_digit) {
    cv::Mat mirrored;
    cv::flip(glyph, mirrored, 1);
    out.emplace_back(mirrored, lc::kNotADigit);
  }
  return out;
}

// "4-4-4-4", as CardTraits::grouping spells a grouping.
std::string groupsText(const std::vector<std::size_t>& groups) {
  return fmt::format("{}", fmt::join(groups, "-"));
}

// The glyph set (--glyph-set), read by models/digits/train_cnn.py: the header
//   "lostcard-glyphs-1\n", then u32 glyph width, u32 glyph height (little-endian);
// then one record per glyph: u8 label (0..9, or lc::kNotADigit), u8 flags (kHeldBack,
// kFromRelief, kFromCardPhoto, kWrongWayRound, kFromHeight, kFromPitchCut), u32 line (glyphs of one
// cut share it), and the width x height pixels (ink bright on black, rows top down). A
// wrong-way-round glyph shares its cut's line number and is kept back with it.
enum GlyphFlag : std::uint8_t {
  kHeldBack = 1,
  kFromRelief = 2,
  kFromCardPhoto = 4,
  kWrongWayRound = 8,
  kFromHeight = 16,
  kFromPitchCut = 32,
};

// The flag that says which preparation a cut came from.
std::uint8_t prepFlag(lc::LinePrep prep) {
  return prep == lc::LinePrep::kRelief   ? kFromRelief
         : prep == lc::LinePrep::kHeight ? kFromHeight
                                         : 0;
}

class GlyphSetWriter {
 public:
  explicit GlyphSetWriter(const std::string& path) {
    if (path.empty()) {
      return;
    }
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) {
      throw std::runtime_error("cannot write " + path);
    }
    out_ << "lostcard-glyphs-1\n";
    writeU32(lc::kGlyphWidthPx);
    writeU32(lc::kGlyphHeightPx);
  }
  void add(const cv::Mat& glyph, int label, std::uint8_t flags, std::uint32_t line) {
    if (!out_.is_open()) {
      return;
    }
    CV_Assert(glyph.type() == CV_8UC1 && glyph.cols == lc::kGlyphWidthPx &&
              glyph.rows == lc::kGlyphHeightPx && glyph.isContinuous());
    const std::uint8_t head[2] = {static_cast<std::uint8_t>(label), flags};
    out_.write(reinterpret_cast<const char*>(head), 2);
    writeU32(line);
    out_.write(reinterpret_cast<const char*>(glyph.data),
               static_cast<std::streamsize>(glyph.total()));
  }
  void close() {
    if (out_.is_open()) {
      out_.close();
      if (!out_) {
        throw std::runtime_error("writing the glyph set failed");
      }
    }
  }

 private:
  void writeU32(std::uint32_t v) {
    const std::uint8_t b[4] = {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
                               static_cast<std::uint8_t>(v >> 16),
                               static_cast<std::uint8_t>(v >> 24)};
    out_.write(reinterpret_cast<const char*>(b), 4);
  }
  std::ofstream out_;
};

// The lines of one card photo the recognizer would cut, each cut that gives one glyph per digit
// of `digits`, from the faces that show the number: the printed face straightened with the
// renderer's own corners (so upright), and for embossing the other face mirrored (the relief
// seen from behind, as the recognizer mirrors it). Only the located lines that lie on the
// number's ink (CardTraits::number_box) count: a cut of the name or expiry line with as many
// glyphs would teach wrong labels. Grey and relief cuts, as the recognizer tries both; with
// `height`, also the height of embossing seen from the front (the recognizer does not read the
// height mirrored); with `pitch`, embossed lines are also cut by pitch in the printed groupings,
// kept when the cut chose the card's grouping and left no ink of the row out.
struct PreparedCut {
  lc::LineGlyphs cut;
  lc::LinePrep prep;
  bool by_pitch = false;
};
struct CutChoice {
  bool exact_groups = false;
  bool height = false;
  const std::vector<std::vector<std::size_t>>* pitch_groupings = nullptr;  // null: no pitch cuts
};

// Whether a located line lies on the number's ink: it shares at least half the ink box's
// height and half its width. Never when the card has no number box (no number drawn, or the
// number scratched out).
bool onNumber(const cv::Rect& line, const cv::Rect& number_box) {
  const cv::Rect common = line & number_box;
  return !number_box.empty() && 2 * common.height >= number_box.height &&
         2 * common.width >= number_box.width;
}

std::vector<PreparedCut> cardPhotoCuts(const lostcard::cardgen::CardPhotos& photos,
                                       const std::string& digits, const CutChoice& choice) {
  const auto& t = photos.traits;
  // The camera that sees the face the number is printed on.
  const bool number_face_in_front = t.number_on_back == t.back_up;
  const cv::Mat& number_photo = number_face_in_front ? photos.front : photos.back;
  const auto& number_corners = number_face_in_front ? photos.front_corners : photos.back_corners;
  const cv::Mat& other_photo = number_face_in_front ? photos.back : photos.front;
  const auto& other_corners = number_face_in_front ? photos.back_corners : photos.front_corners;
  const auto quad = [](const lostcard::cardgen::Corners& c) {
    lc::Quad q;
    std::copy(c.begin(), c.end(), q.begin());
    return q;
  };
  const bool embossed = t.number_style.rfind("embossed", 0) == 0;
  struct Face {
    cv::Mat image;
    std::vector<lc::LinePrep> preps;
    cv::Rect number_box;
  };
  std::vector<Face> faces = {{lc::straighten(number_photo, quad(number_corners)),
                              {lc::LinePrep::kGray, lc::LinePrep::kRelief},
                              t.number_box}};
  if (choice.height && embossed) {
    faces.front().preps.push_back(lc::LinePrep::kHeight);
  }
  if (embossed) {
    cv::Mat mirrored;
    cv::flip(lc::straighten(other_photo, quad(other_corners)), mirrored, 1);
    const cv::Rect& b = t.number_box;
    faces.push_back({mirrored,
                     {lc::LinePrep::kGray, lc::LinePrep::kRelief},
                     cv::Rect(mirrored.cols - b.br().x, b.y, b.width, b.height)});
  }
  std::vector<PreparedCut> cuts;
  for (const Face& face : faces) {
    for (const cv::Rect& line : lc::locateNumberLine(face.image)) {
      if (!onNumber(line, face.number_box)) {
        continue;
      }
      for (const lc::LinePrep prep : face.preps) {
        lc::LineGlyphs cut = lc::cutLine(face.image, line, prep);
        if (cut.glyphs.size() == digits.size() &&
            (!choice.exact_groups || groupsText(cut.groups) == t.grouping)) {
          cuts.push_back({std::move(cut), prep});
        }
        if (choice.pitch_groupings != nullptr && embossed) {
          lc::LineGlyphs by_pitch = lc::cutLine(face.image, line, prep, choice.pitch_groupings);
          if (by_pitch.complete && groupsText(by_pitch.groups) == t.grouping) {
            cuts.push_back({std::move(by_pitch), prep, true});
          }
        }
      }
    }
  }
  return cuts;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  unsigned seed = 1;
  int lines = 2400;
  int card_photos = 0;
  bool exact_groups = false;
  bool height = false;
  bool pitch = false;
  bool stroke_fonts = false;
  std::string glyph_set;
  std::string dump_dir;
  po::options_description opts("lostcard-train-digits options");
  opts.add_options()("help,h", "this help")("out", po::value(&out),
                                            "where to write the model (.yml.gz)")(
      "glyph-set", po::value(&glyph_set),
      "write every glyph learnt from and kept back, with its label, to this file (for "
      "models/digits/train_cnn.py); without --out, no model is trained")(
      "exact-groups", po::bool_switch(&exact_groups),
      "learn only from cuts whose groups are the line's printed groups (a cut with the right "
      "glyph count but one glyph split and two run together labels glyphs wrongly)")(
      "height", po::bool_switch(&height),
      "also cut embossed lines and cards with the height preparation, as the recognizer reads "
      "them last")(
      "pitch", po::bool_switch(&pitch),
      "also cut the number lines of embossed card photos by pitch in the printed groupings of "
      "the built-in card formats, as the recognizer cuts inkless embossing")(
      "stroke-fonts", po::bool_switch(&stroke_fonts),
      "also render lines and card photos in the digits drawn from strokes (the embossers' "
      "Farrington-7B-like digits, twice as often as the others, and a squared print face)")(
      "seed", po::value(&seed)->default_value(1), "random seed")(
      "lines", po::value(&lines)->default_value(2400), "lines of digits to render")(
      "card-photos", po::value(&card_photos)->default_value(0),
      "also learn from this many photos of hard-preset cards drawn by lostcard-cardgen's "
      "renderer (cards named train-NNNNN, so none is a card of a benchmark set)")(
      "dump-dir", po::value(&dump_dir),
      "also write each prepared line of the first 100 as a PNG here (to see what the network "
      "learns from)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) {
      std::cout << opts << "\n";
      return 0;
    }
    po::notify(vm);
    if (out.empty() && glyph_set.empty()) {
      throw po::error("give --out, --glyph-set or both");
    }
    lostcard::cardgen::keepFreedMemory();
  } catch (const po::error& e) {
    std::cerr << "lostcard-train-digits: " << e.what() << "\n" << opts << "\n";
    return 2;
  }
  std::vector<cv::Ptr<cv::freetype::FreeType2>> fonts;
  for (const auto& f : fontFiles()) {
    if (!std::filesystem::is_regular_file(f.path)) {
      std::cerr << "lostcard-train-digits: missing " << f.path << " (install " << f.package
                << ")\n";
      return 1;
    }
    fonts.push_back(cv::freetype::createFreeType2());
    fonts.back()->loadFontData(f.path, 0);
  }
  if (stroke_fonts) {
    using lostcard::cardgen::StrokeStyle;
    const auto ocr_b = fonts[1];  // fontFiles()'s second: OCR-B, as cardgen falls back on it
    for (const StrokeStyle style : {StrokeStyle::kEmbossing, StrokeStyle::kEmbossingFooted,
                                    StrokeStyle::kSquare, StrokeStyle::kEmbossing}) {
      fonts.push_back(lostcard::cardgen::createStrokeFont(style, ocr_b));
    }
  }
  Rng rng(seed);
  GlyphSetWriter glyph_set_out(glyph_set);
  std::vector<cv::Mat> train_glyphs;
  std::vector<int> train_digits;  // 0..9 or kNotADigit
  std::uint32_t cut_count = 0;    // numbers the cuts in the glyph set
  // One cut of a line labelled with `digits`: learnt from, or (held back) kept for validation.
  // With add_turned, each glyph's wrong-way-round versions are added too (for every other digit
  // position only, with alternate_positions); a cut held back keeps them back too (they are
  // written to the glyph set only, where they measure the "no digit" class).
  const auto learn = [&](const lc::LineGlyphs& cut, const std::string& digits, std::uint8_t flags,
                         bool held_back, bool add_turned, bool alternate_positions) {
    const std::uint32_t line_id = cut_count++;
    for (std::size_t k = 0; k < cut.glyphs.size(); ++k) {
      const int digit = digits[k] - '0';
      const std::uint8_t own_flags = held_back ? flags | kHeldBack : flags;
      glyph_set_out.add(cut.glyphs[k], digit, own_flags, line_id);
      if (!held_back) {
        train_glyphs.push_back(cut.glyphs[k]);
        train_digits.push_back(digit);
      }
      // The same glyph the wrong way round, for the not-a-digit class (or as the digit it then
      // looks like); only some, so that digits stay most of the set.
      if (add_turned && (!alternate_positions || k % 2 == 0)) {
        for (const auto& [turned, label] : wrongWayRound(cut.glyphs[k], digit)) {
          glyph_set_out.add(turned, label, own_flags | kWrongWayRound, line_id);
          if (!held_back) {
            train_glyphs.push_back(turned);
            train_digits.push_back(label);
          }
        }
      }
    }
  };
  struct HeldLine {
    std::vector<cv::Mat> glyphs;
    std::string digits;
    bool relief = false;
  };
  std::vector<HeldLine> held_lines;
  int kept = 0;         // cuts with one glyph per digit
  int relief_kept = 0;  // of which relief cuts
  for (int i = 0; i < lines; ++i) {
    // The OCR fonts (the first two), whose shapes are furthest from the rest, twice as often.
    const std::size_t pick = static_cast<std::size_t>(i) % (fonts.size() + 2);
    auto& font = *fonts[pick < fonts.size() ? pick : pick - fonts.size()];
    const RenderedLine line = renderLine(rng, font);
    // Cut as the recognizer cuts: grey levels, and (embossed lines, and some flat ones, since
    // the recognizer tries it when grey gives nothing) relief.
    std::vector<lc::LinePrep> preps = {lc::LinePrep::kGray};
    if (line.embossed || i % 4 == 0) {
      preps.push_back(lc::LinePrep::kRelief);
    }
    if (height && line.embossed) {
      preps.push_back(lc::LinePrep::kHeight);
    }
    for (const lc::LinePrep prep : preps) {
      const cv::Mat prepared = lc::prepareLine(line.image, line.text_box, prep);
      const lc::LineGlyphs cut = lc::segmentLine(prepared, prep);
      if (!dump_dir.empty() && i < 100) {
        std::filesystem::create_directories(dump_dir);
        cv::Mat shown;
        cv::cvtColor(prepared, shown, cv::COLOR_GRAY2BGR);
        for (const cv::Rect& box : cut.boxes) {
          cv::rectangle(shown, box, cv::Scalar(0, 0, 255), 1);
        }
        cv::imwrite(fmt::format("{}/{:03}-{}-{}-of-{}.png", dump_dir, i, lc::toString(prep),
                                cut.glyphs.size(), line.digits.size()),
                    shown);
      }
      if (cut.glyphs.size() != line.digits.size() || (exact_groups && cut.groups != line.groups)) {
        continue;
      }
      ++kept;
      const bool relief = prep == lc::LinePrep::kRelief;
      relief_kept += relief ? 1 : 0;
      const bool held_back = i % 10 == 9;
      if (held_back) {
        held_lines.push_back({cut.glyphs, line.digits, relief});
      }
      learn(cut, line.digits, prepFlag(prep), held_back, i % 2 == 0, false);
    }
  }
  std::cout << fmt::format("rendered {} lines; {} cuts ({} of relief) gave one glyph per digit\n",
                           lines, kept, relief_kept)
            << std::flush;
  // Photos of whole cards as the box sees them (perspective, glare, tipping, patterns behind
  // the number): the glyphs the recognizer cuts from them, labelled with the card's digits.
  // Every tenth card is kept back for validation.
  int card_cuts = 0;
  std::map<std::string, int> card_cuts_by;  // "style prep" -> cuts kept
  int held_card_lines_from = static_cast<int>(held_lines.size());
  if (card_photos > 0) {
    lostcard::cardgen::CardRenderer renderer(
        {.preset = lostcard::cardgen::Preset::kHard, .stroke_fonts = stroke_fonts});
    lostcard::cardgen::Rng numbers(seed * 7919 + 17);
    const auto groupings = lc::printedGroupings(lc::defaultCardFormats());
    const CutChoice choice{exact_groups, height, pitch ? &groupings : nullptr};
    for (int i = 1; i <= card_photos; ++i) {
      const std::string name = fmt::format("train-{:05d}", i);
      const std::string digits = lostcard::cardgen::randomHardCardNumber(numbers);
      const auto photos = renderer.render({name, digits}, lostcard::cardgen::cardSeed(seed, name));
      for (const auto& [cut, prep, by_pitch] : cardPhotoCuts(photos, digits, choice)) {
        ++card_cuts;
        ++card_cuts_by[fmt::format("{} {}{}", photos.traits.number_style, lc::toString(prep),
                                   by_pitch ? " by pitch" : "")];
        const bool held_back = i % 10 == 0;
        if (held_back) {
          held_lines.push_back({cut.glyphs, digits, false});
        }
        learn(cut, digits, kFromCardPhoto | prepFlag(prep) | (by_pitch ? kFromPitchCut : 0),
              held_back, true, true);
      }
    }
    std::cout << fmt::format(
                     "rendered {} card photos; {} of their line cuts gave one glyph per "
                     "digit\n",
                     card_photos, card_cuts)
              << std::flush;
    for (const auto& [what, count] : card_cuts_by) {
      std::cout << fmt::format("  {}: {}\n", what, count);
    }
  }
  glyph_set_out.close();
  if (out.empty()) {
    std::cout << fmt::format(
        "train-digits: glyph set {}: {} glyphs to learn from, {} lines kept "
        "back\n",
        glyph_set, train_glyphs.size(), held_lines.size());
    return 0;
  }
  std::cout << fmt::format("training on {} glyphs\n", train_glyphs.size()) << std::flush;
  const lc::DigitClassifier classifier =
      lc::DigitClassifier::train(train_glyphs, train_digits, seed);
  std::filesystem::create_directories(std::filesystem::path(out).parent_path().empty()
                                          ? "."
                                          : std::filesystem::path(out).parent_path());
  classifier.save(out);
  int glyphs_right = 0;
  int glyphs_total = 0;
  int lines_right = 0;
  int relief_lines = 0;
  int relief_lines_right = 0;
  int card_lines_right = 0;
  for (std::size_t h = 0; h < held_lines.size(); ++h) {
    const HeldLine& held = held_lines[h];
    bool all = true;
    for (std::size_t k = 0; k < held.glyphs.size(); ++k) {
      const bool right = classifier.classify(held.glyphs[k]).front().symbol == held.digits[k];
      glyphs_right += right ? 1 : 0;
      all = all && right;
      ++glyphs_total;
    }
    lines_right += all ? 1 : 0;
    card_lines_right += all && static_cast<int>(h) >= held_card_lines_from ? 1 : 0;
    relief_lines += held.relief ? 1 : 0;
    relief_lines_right += held.relief && all ? 1 : 0;
  }
  const auto share = [](int part, int whole) {
    return whole > 0 ? static_cast<double>(part) / whole : 0.0;
  };
  std::cout << fmt::format(
      "train-digits: lines={} glyphs={} validation_glyphs={} glyph_accuracy={:.4f} "
      "line_accuracy={:.4f} relief_line_accuracy={:.4f} card_photo_line_accuracy={:.4f}\n",
      kept, train_glyphs.size(), glyphs_total, share(glyphs_right, glyphs_total),
      share(lines_right, static_cast<int>(held_lines.size())),
      share(relief_lines_right, relief_lines),
      share(card_lines_right, static_cast<int>(held_lines.size()) - held_card_lines_from));
  return 0;
}
