// Digits drawn from strokes (stroke_font.hpp). Each digit is a few centre lines in a unit box
// (x to the right, y down, both 0..1), drawn with round-ended strokes of the style's weight at
// four times the size and shrunk, so that edges are anti-aliased as FreeType's are.
#include "lostcard/cardgen/stroke_font.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <vector>

namespace lostcard::cardgen {

namespace {

using Stroke = std::vector<cv::Point2d>;
using Strokes = std::vector<Stroke>;

constexpr double kPi = 3.14159265358979323846;

// Points along an ellipse's arc from angle a0 to a1 (degrees; 0 = right, 90 = down).
Stroke arc(double cx, double cy, double rx, double ry, double a0, double a1) {
  const int steps = std::max(6, static_cast<int>(std::abs(a1 - a0) / 6));
  Stroke s;
  for (int i = 0; i <= steps; ++i) {
    const double a = (a0 + (a1 - a0) * i / steps) * kPi / 180;
    s.emplace_back(cx + rx * std::cos(a), cy + ry * std::sin(a));
  }
  return s;
}

// `first` followed by `then`'s points.
Stroke join(Stroke first, const Stroke& then) {
  first.insert(first.end(), then.begin(), then.end());
  return first;
}

// Turned half a turn: 6 into 9.
Strokes turned(Strokes strokes) {
  for (auto& s : strokes) {
    for (auto& p : s) {
      p = {1 - p.x, 1 - p.y};
    }
  }
  return strokes;
}

// The embossers' digits (Farrington 7B's shapes).
Strokes embossingDigit(char d, bool footed) {
  switch (d) {
    case '0':
      return {join(join(arc(0.5, 0.2, 0.5, 0.2, 180, 360), {{1, 0.8}}),
                   join(arc(0.5, 0.8, 0.5, 0.2, 0, 180), {{0, 0.2}}))};
    case '1':
      if (footed) {
        return {{{0.2, 0.2}, {0.55, 0}, {0.55, 1}}, {{0.2, 1}, {0.9, 1}}};
      }
      return {{{0.15, 0.22}, {0.6, 0}, {0.6, 1}}};
    case '2':
      return {join(arc(0.5, 0.27, 0.5, 0.27, 180, 390), {{0, 1}, {1, 1}})};
    case '3':
      if (footed) {
        return {join(arc(0.48, 0.25, 0.44, 0.25, 200, 450), arc(0.5, 0.73, 0.5, 0.27, 270, 520))};
      }
      return {join({{0.05, 0}, {0.95, 0}}, arc(0.48, 0.69, 0.52, 0.31, 258, 505))};
    case '4':
      return {{{0.08, 0}, {0, 0.66}, {1, 0.66}}, {{0.74, 0.12}, {0.74, 1}}};
    case '5':
      return {join({{0.95, 0}, {0.06, 0}, {0.04, 0.44}}, arc(0.48, 0.69, 0.52, 0.31, 235, 510))};
    case '6':
      return {join(join(arc(0.4, 0.2, 0.4, 0.2, 270, 180), {{0, 0.72}}),
                   arc(0.5, 0.72, 0.5, 0.28, 180, 540))};
    case '7':
      return {{{0, 0}, {1, 0}, {0.7, 0.42}, {0.7, 1}}};
    case '8':
      return {arc(0.5, 0.23, 0.42, 0.23, 0, 360), arc(0.5, 0.72, 0.5, 0.28, 0, 360)};
    case '9':
      return turned(embossingDigit('6', footed));
    default:
      return {};
  }
}

// The squared print face: straight strokes, corners rounded by the strokes' round joins.
Strokes squareDigit(char d) {
  switch (d) {
    case '0':
      return {{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}};
    case '1':
      return {{{0.35, 0.14}, {0.62, 0}, {0.62, 1}}};
    case '2':
      return {{{0, 0}, {1, 0}, {1, 0.5}, {0, 0.5}, {0, 1}, {1, 1}}};
    case '3':
      return {{{0, 0}, {1, 0}, {1, 1}, {0, 1}}, {{0.15, 0.5}, {1, 0.5}}};
    case '4':
      return {{{0, 0}, {0, 0.56}, {1, 0.56}}, {{1, 0}, {1, 1}}};
    case '5':
      return {{{1, 0}, {0, 0}, {0, 0.5}, {1, 0.5}, {1, 1}, {0, 1}}};
    case '6':
      return {{{1, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 0.5}, {0, 0.5}}};
    case '7':
      return {{{0, 0}, {1, 0}, {1, 1}}};
    case '8':
      return {{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}, {{0, 0.5}, {1, 0.5}}};
    case '9':
      return turned(squareDigit('6'));
    default:
      return {};
  }
}

// Proportions of a style, as shares of the font height.
struct Metrics {
  double digit_height;  // ink height of a digit
  double width;         // ink width of a digit (a 1 is narrower)
  double weight;        // stroke width
  double advance;       // pen advance per digit
};

class StrokeFont : public cv::freetype::FreeType2 {
 public:
  StrokeFont(StrokeStyle style, cv::Ptr<cv::freetype::FreeType2> fallback)
      : style_(style), fallback_(std::move(fallback)) {
    if (!fallback_) {
      throw std::invalid_argument("createStrokeFont: no fallback font");
    }
  }

  void loadFontData(cv::String, int) override {
    throw std::logic_error("a stroke font's digits are built in; it loads no font file");
  }
  void setSplitNumber(int num) override { fallback_->setSplitNumber(num); }

  void putText(cv::InputOutputArray img, const cv::String& text, cv::Point org, int font_height,
               cv::Scalar colour, int thickness, int line_type, bool bottom_left_origin) override {
    cv::Mat canvas = img.getMat();
    if (canvas.type() != CV_8UC3) {
      throw std::invalid_argument("stroke font: draws on 8-bit colour images only, as FreeType2");
    }
    // As FreeType2 does: org is the baseline, or the top of the font's em box.
    const int baseline = bottom_left_origin ? org.y : org.y + font_height;
    double pen = org.x;
    for (const char c : text) {
      pen += drawChar(canvas, c, pen, baseline, font_height, colour, thickness, line_type);
    }
  }

  cv::Size getTextSize(const cv::String& text, int font_height, int thickness,
                       int* base_line) override {
    const Metrics m = metrics(font_height);
    double width = 0;
    int height = 0;
    for (const char c : text) {
      width += advanceOf(c, font_height, thickness);
      if (c >= '0' && c <= '9') {
        height = std::max(height, static_cast<int>(std::lround(m.digit_height)));
      } else if (c != ' ') {
        int below = 0;
        height = std::max(
            height,
            fallback_->getTextSize(std::string(1, c), font_height, thickness, &below).height);
      }
    }
    if (base_line != nullptr) {
      *base_line = 0;
    }
    return {static_cast<int>(std::lround(width)), height};
  }

 private:
  Metrics metrics(int font_height) const {
    const double h = 0.74 * font_height;
    if (style_ == StrokeStyle::kSquare) {
      return {h, 1.05 * h, 0.15 * h, 1.05 * h + 0.3 * h};
    }
    return {h, 0.58 * h, 0.13 * h, 0.58 * h + 0.24 * h};
  }

  Strokes strokesOf(char d) const {
    switch (style_) {
      case StrokeStyle::kSquare:
        return squareDigit(d);
      case StrokeStyle::kEmbossingFooted:
        return embossingDigit(d, true);
      case StrokeStyle::kEmbossing:
        break;
    }
    return embossingDigit(d, false);
  }

  double advanceOf(char c, int font_height, int thickness) const {
    if (c >= '0' && c <= '9') {
      return metrics(font_height).advance;
    }
    if (c == ' ') {
      return 0.4 * font_height;
    }
    int below = 0;
    return fallback_->getTextSize(std::string(1, c), font_height, thickness, &below).width +
           0.1 * font_height;
  }

  // Draws `c` with its pen at (pen, baseline); returns the pen's advance.
  double drawChar(cv::Mat& img, char c, double pen, int baseline, int font_height,
                  const cv::Scalar& colour, int thickness, int line_type) {
    if (c < '0' || c > '9') {
      if (c != ' ') {
        fallback_->putText(img, std::string(1, c), {static_cast<int>(std::lround(pen)), baseline},
                           font_height, colour, thickness, line_type, true);
      }
      return advanceOf(c, font_height, thickness);
    }
    const Metrics m = metrics(font_height);
    constexpr int kScale = 4;
    constexpr int kShift = 4;  // sub-pixel bits of the stroke coordinates
    const int left = static_cast<int>(std::lround(pen + 0.1 * m.digit_height));
    const int top = static_cast<int>(std::lround(baseline - m.digit_height));
    const cv::Size cell(static_cast<int>(std::ceil(m.width)) + 2,
                        static_cast<int>(std::ceil(m.digit_height)) + 2);
    cv::Mat big(cell * kScale, CV_8UC1, cv::Scalar(0));
    const double weight = m.weight * kScale;
    const double span_x = (m.width * kScale) - weight;
    const double span_y = (m.digit_height * kScale) - weight;
    for (const Stroke& s : strokesOf(c)) {
      std::vector<cv::Point> pts;
      for (const cv::Point2d& p : s) {
        constexpr double kOne = 1 << kShift;
        pts.emplace_back(
            static_cast<int>(std::lround((kScale + weight / 2 + p.x * span_x) * kOne)),
            static_cast<int>(std::lround((kScale + weight / 2 + p.y * span_y) * kOne)));
      }
      cv::polylines(big, pts, false, cv::Scalar(255), std::max(1, static_cast<int>(weight)),
                    cv::LINE_AA, kShift);
    }
    cv::Mat coverage;
    cv::resize(big, coverage, cell, 0, 0, cv::INTER_AREA);
    // The cell's top-left pixel is one pixel up and left of the ink box.
    const cv::Rect at(left - 1, top - 1, cell.width, cell.height);
    const cv::Rect clipped = at & cv::Rect(0, 0, img.cols, img.rows);
    if (clipped.area() > 0) {
      cv::Mat alpha;
      coverage(cv::Rect(clipped.tl() - at.tl(), clipped.size()))
          .convertTo(alpha, CV_32F, 1 / 255.0);
      cv::Mat roi = img(clipped);
      cv::Mat dst;
      roi.convertTo(dst, CV_32F);
      std::vector<cv::Mat> channels;
      cv::split(dst, channels);
      for (std::size_t k = 0; k < channels.size(); ++k) {
        channels[k] = channels[k].mul(1 - alpha) + alpha * colour[static_cast<int>(k)];
      }
      cv::merge(channels, dst);
      dst.convertTo(roi, roi.type());
    }
    return m.advance;
  }

  StrokeStyle style_;
  cv::Ptr<cv::freetype::FreeType2> fallback_;
};

}  // namespace

std::string strokeFontName(StrokeStyle style) {
  switch (style) {
    case StrokeStyle::kEmbossingFooted:
      return "Farrington-Footed";
    case StrokeStyle::kSquare:
      return "Square";
    case StrokeStyle::kEmbossing:
      break;
  }
  return "Farrington";
}

cv::Ptr<cv::freetype::FreeType2> createStrokeFont(StrokeStyle style,
                                                  cv::Ptr<cv::freetype::FreeType2> fallback) {
  return cv::makePtr<StrokeFont>(style, std::move(fallback));
}

}  // namespace lostcard::cardgen
