#include "lostcard/cloud/recognition_stages.hpp"

#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace lostcard::cloud {
namespace {

// findCard works on a copy scaled to this many pixels on the long side: plenty for an outline,
// and it keeps edge detection fast on 1280x960 (or larger) photos.
constexpr double kOutlineWorkPx = 640.0;
// A card must cover at least this share of the frame and have a long/short side ratio in this
// range (ID-1 is 1.586; perspective and rounded corners widen it).
constexpr double kMinCardAreaShare = 0.10;
constexpr double kMinCardAspect = 1.30;
constexpr double kMaxCardAspect = 1.95;
// The shorter of two opposite sides of a card outline, at least this share of the longer.
constexpr double kMinOppositeSideRatio = 0.5;
// Frames smaller than this (px, shorter side, at kOutlineWorkPx) are not searched for the region
// that differs from the tray: too few border pixels to model the tray by.
constexpr int kMinTrayFramePx = 64;

// A frame this many times wider than tall is a crop of the number line alone (a photo of the
// number, not of the card).
constexpr double kMinLineCropAspect = 3.0;
// A frame whose whole picture has the card's aspect (within this tolerance) may be a tight crop
// of the card itself, used as is when no outline is found.
constexpr double kCropAspectTolerance = 0.08;

// locateNumberLine: ignore this margin of the straightened card (its edge, the tray showing in
// the rounded corners), accept text lines this tall and at least this wide.
constexpr int kCardMarginPx = 14;
constexpr int kMinLineHeightPx = 20;
constexpr int kMaxLineHeightPx = 90;
constexpr double kMinLineWidthShare = 0.40;
constexpr std::size_t kMaxLineCandidates = 3;
// locateMoreLines: a row that shares more than this share of a known line's height (or its
// own, the less) is that line.
constexpr double kSameRowOverlap = 0.5;
// ...and a row of the emboss band narrower than this share of the band's width is also offered
// across the band's width.
constexpr double kWideRowShare = 0.8;
// ...and the band's line centred on a row of the band is not offered when a known line (or one
// already offered) fills this share of the box around both.
constexpr double kSameBoxShare = 0.85;
// A row of the band lower than this share of the band's text height holds only part of the
// digits' height.
constexpr double kLowRowShare = 0.65;
// The fine lines of a background pattern are thinner than this: closing and opening the card
// with a square this wide flattens them. Print's thinner strokes fade too, but its glyphs stay
// as blobs, which is all finding the row needs (the line is read from the card as it is).
constexpr int kHairlinePx = 5;
// A row is widened (extendAlongRow) over columns whose glyph outlines fill at least this share of
// its height, across gaps up to this many row heights (a digit group's gap is under one).
constexpr double kMinColumnInkShare = 0.15;
constexpr double kMaxRowGapHeights = 1.2;
// A row's box is cut down (tightenRow) to the rows where glyph outlines cover at least this share
// of what the best-covered row does.
constexpr double kMinBandCoverage = 0.5;

// chromaCard stretches the card's chroma (CIELAB a*b* units) over 0..255, but never a span
// narrower than this: the tipping colours and print it is for stand out by several times more.
constexpr double kMinChromaSpan = 20.0;

// The border prepareLine puts around the line (Tesseract reads text touching the edge badly).
constexpr int kOcrBorderPx = 16;

// Tesseract settings for a line of card digits when no config file is given.
constexpr std::pair<const char*, const char*> kBuiltInSettings[] = {
    {"load_system_dawg", "0"},
    {"load_freq_dawg", "0"},
    {"load_punc_dawg", "0"},
    {"load_number_dawg", "0"},
    {"load_unambig_dawg", "0"},
    {"load_bigram_dawg", "0"},
    // The space must be whitelisted too: without it the LSTM loses the group gaps and reports
    // near-zero confidence for the whole line.
    {"tessedit_char_whitelist", "0123456789 "},
    {"user_defined_dpi", "300"}};

// A colour image in grey levels; a grey one copied (the callers filter it in place).
cv::Mat grayOf(const cv::Mat& image) {
  cv::Mat gray;
  if (image.channels() == 3) {
    cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  } else {
    gray = image.clone();
  }
  return gray;
}

double distance(const cv::Point2f& a, const cv::Point2f& b) {
  return std::hypot(a.x - b.x, a.y - b.y);
}

// Orders four corners clockwise from the top-left one, then rotates the order so that the
// first edge is a long one.
Quad orderCorners(std::vector<cv::Point2f> pts) {
  cv::Point2f centre(0, 0);
  for (const auto& p : pts) {
    centre += p * 0.25f;
  }
  std::sort(pts.begin(), pts.end(), [&](const cv::Point2f& a, const cv::Point2f& b) {
    return std::atan2(a.y - centre.y, a.x - centre.x) < std::atan2(b.y - centre.y, b.x - centre.x);
  });
  // atan2 order with y down is clockwise on screen; start from the corner nearest the origin.
  std::size_t first = 0;
  for (std::size_t i = 1; i < 4; ++i) {
    if (pts[i].x + pts[i].y < pts[first].x + pts[first].y) {
      first = i;
    }
  }
  Quad q;
  for (std::size_t i = 0; i < 4; ++i) {
    q[i] = pts[(first + i) % 4];
  }
  const double top = distance(q[0], q[1]) + distance(q[2], q[3]);
  const double side = distance(q[1], q[2]) + distance(q[3], q[0]);
  if (side > top) {
    q = Quad{q[1], q[2], q[3], q[0]};
  }
  return q;
}

bool plausibleCard(const Quad& q, double frame_area) {
  const double area = std::abs(cv::contourArea(std::vector<cv::Point2f>(q.begin(), q.end())));
  if (area < kMinCardAreaShare * frame_area) {
    return false;
  }
  // Opposite sides of a card seen in perspective differ little; a quad with one side far
  // shorter than the side facing it is an outline cut off by the frame or the picture's own.
  for (int i = 0; i < 2; ++i) {
    const double a = distance(q[i], q[i + 1]);
    const double b = distance(q[i + 2], q[(i + 3) % 4]);
    if (std::min(a, b) < kMinOppositeSideRatio * std::max(a, b)) {
      return false;
    }
  }
  const double longer = (distance(q[0], q[1]) + distance(q[2], q[3])) / 2;
  const double shorter = (distance(q[1], q[2]) + distance(q[3], q[0])) / 2;
  const double aspect = longer / std::max(shorter, 1.0);
  return aspect >= kMinCardAspect && aspect <= kMaxCardAspect;
}

// The quadrilateral of a contour's convex hull, loosening the approximation until it has four
// corners (rounded card corners need some slack); nullopt if it never does.
std::optional<std::vector<cv::Point2f>> quadOf(const std::vector<cv::Point>& contour) {
  std::vector<cv::Point> hull;
  cv::convexHull(contour, hull);
  const double perimeter = cv::arcLength(hull, true);
  for (double eps = 0.01; eps <= 0.06; eps += 0.005) {
    std::vector<cv::Point> approx;
    cv::approxPolyDP(hull, approx, eps * perimeter, true);
    if (approx.size() == 4) {
      return std::vector<cv::Point2f>(approx.begin(), approx.end());
    }
    if (approx.size() < 4) {
      break;
    }
  }
  return std::nullopt;
}

// Where two fitted lines (vx, vy, x0, y0) cross; nullopt when they are nearly parallel.
std::optional<cv::Point2f> intersect(const cv::Vec4f& a, const cv::Vec4f& b) {
  const double cross = a[0] * b[1] - a[1] * b[0];
  if (std::abs(cross) < 1e-6) {
    return std::nullopt;
  }
  const double t = ((b[2] - a[2]) * b[1] - (b[3] - a[3]) * b[0]) / cross;
  return cv::Point2f(static_cast<float>(a[2] + t * a[0]), static_cast<float>(a[3] + t * a[1]));
}

// The grey-level steps of a frame, to weigh how well a quad's sides follow its edges.
class EdgeField {
 public:
  // `gray`: 8-bit (the field reads it where it is asked, a few thousand points a quad, rather
  // than filtering the whole frame).
  explicit EdgeField(cv::Mat gray) : gray_(std::move(gray)) {}

  // The quad with each side moved onto the frame's edge near it: the strongest step across the
  // side within kSnapReachPx of each point along its middle, a line fitted to those steps, and
  // neighbouring lines intersected. A side with too few clear steps, or a corner that would move
  // more than twice the reach, leaves the quad as it was.
  Quad snapped(const Quad& q) const {
    std::array<cv::Vec4f, 4> lines;
    for (int i = 0; i < 4; ++i) {
      const Side side(q[i], q[(i + 1) % 4]);
      std::vector<cv::Point2f> steps;
      std::vector<float> strengths;
      for (int k = 0; k < kSnapSamples; ++k) {
        const Step step = strongestStep(side, k, kSnapSamples, kSnapReachPx);
        steps.push_back(step.where);
        strengths.push_back(step.strength);
      }
      // Only the clear steps: at least half the side's typical one.
      std::vector<float> sorted = strengths;
      std::nth_element(sorted.begin(), sorted.begin() + kSnapSamples / 2, sorted.end());
      const float typical = sorted[kSnapSamples / 2];
      std::vector<cv::Point2f> clear;
      for (std::size_t k = 0; k < steps.size(); ++k) {
        if (strengths[k] > 0.0f && strengths[k] >= 0.5f * typical) {
          clear.push_back(steps[k]);
        }
      }
      if (clear.size() < kSnapSamples / 3) {
        return q;
      }
      cv::fitLine(clear, lines[i], cv::DIST_HUBER, 0, 0.01, 0.01);
    }
    Quad out;
    for (int i = 0; i < 4; ++i) {
      const auto corner = intersect(lines[(i + 3) % 4], lines[i]);
      if (!corner || distance(*corner, q[i]) > 2.0 * kSnapReachPx) {
        return q;
      }
      out[i] = *corner;
    }
    return out;
  }

  // The support of the quad's weakest side; a side's support is the median, over points along
  // its middle, of the strongest step across the side within kEdgeSlackPx of it. A side laid along
  // the card's edge scores high all along; a side cut through the card's picture, or through the
  // tray, scores low somewhere on most of its length.
  double support(const Quad& q) const {
    double weakest = 1e9;
    for (int i = 0; i < 4; ++i) {
      const Side side(q[i], q[(i + 1) % 4]);
      std::vector<float> steps;
      for (int k = 0; k < kEdgeSamples; ++k) {
        steps.push_back(strongestStep(side, k, kEdgeSamples, kEdgeSlackPx).strength);
      }
      std::nth_element(steps.begin(), steps.begin() + kEdgeSamples / 2, steps.end());
      weakest = std::min(weakest, static_cast<double>(steps[kEdgeSamples / 2]));
    }
    return weakest;
  }

 private:
  // A side from a to b, and its unit normal.
  struct Side {
    Side(cv::Point2f from, cv::Point2f to) : a(from), along(to - from) {
      const double length = std::max(1.0, std::hypot(double{along.x}, double{along.y}));
      normal =
          cv::Point2f(static_cast<float>(-along.y / length), static_cast<float>(along.x / length));
    }
    cv::Point2f at(float t) const { return a + along * t; }
    cv::Point2f a;
    cv::Point2f along;
    cv::Point2f normal;
  };

  struct Step {
    float strength = 0.0f;
    cv::Point2f where;
  };

  // The strongest step across the side within `reach` px of its k-th of `samples` points, spread
  // evenly over the middle 80 % of its length (the corners are rounded).
  Step strongestStep(const Side& side, int k, int samples, int reach) const {
    const cv::Point2f p = side.at(0.1f + 0.8f * static_cast<float>(k) / (samples - 1));
    Step best{0.0f, p};
    for (int d = -reach; d <= reach; ++d) {
      const cv::Point2f probe = p + side.normal * static_cast<float>(d);
      const float strength = stepAcross(probe, side.normal);
      if (strength > best.strength) {
        best = {strength, probe};
      }
    }
    return best;
  }

  // The grey-level step across `normal` at p: the 3x3 Sobel gradient projected on it (0 on and
  // outside the frame's edge).
  float stepAcross(cv::Point2f p, cv::Point2f normal) const {
    const int x = cvRound(p.x);
    const int y = cvRound(p.y);
    if (x < 1 || y < 1 || x >= gray_.cols - 1 || y >= gray_.rows - 1) {
      return 0.0f;
    }
    const uchar* above = gray_.ptr<uchar>(y - 1);
    const uchar* row = gray_.ptr<uchar>(y);
    const uchar* below = gray_.ptr<uchar>(y + 1);
    const int gx = (above[x + 1] + 2 * row[x + 1] + below[x + 1]) -
                   (above[x - 1] + 2 * row[x - 1] + below[x - 1]);
    const int gy =
        (below[x - 1] + 2 * below[x] + below[x + 1]) - (above[x - 1] + 2 * above[x] + above[x + 1]);
    return std::abs(static_cast<float>(gx) * normal.x + static_cast<float>(gy) * normal.y);
  }

  static constexpr int kEdgeSamples = 33;
  static constexpr int kEdgeSlackPx = 2;
  static constexpr int kSnapSamples = 48;
  static constexpr int kSnapReachPx = 4;
  cv::Mat gray_;
};

// A card's corners are rounded, so the polygon's corners sit on the arcs, inside the card's
// true (virtual, sharp) corners. Fitting a line to the straight middle of each side and
// intersecting neighbouring sides puts them where the sides meet. The points come from the
// contour's convex hull, so print touching the edge (a magnetic stripe as dark as the tray)
// cannot pull a side inwards. Returns `rough` when a side has too few points to fit.
Quad refineCorners(const Quad& rough, const std::vector<cv::Point>& contour, cv::Size image) {
  std::vector<cv::Point> hull;
  cv::convexHull(contour, hull);
  cv::Mat filled = cv::Mat::zeros(image, CV_8UC1);
  cv::fillConvexPoly(filled, hull, cv::Scalar(255));
  std::vector<std::vector<cv::Point>> outline;
  cv::findContours(filled, outline, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
  if (outline.empty()) {
    return rough;
  }
  std::array<std::vector<cv::Point2f>, 4> sides;
  for (const cv::Point& p : outline.front()) {
    int best = -1;
    double best_distance = 1e9;
    double best_t = 0;
    for (int i = 0; i < 4; ++i) {
      const cv::Point2f a = rough[i];
      const cv::Point2f b = rough[(i + 1) % 4];
      const cv::Point2f ab = b - a;
      const double length2 = ab.dot(ab);
      const double t = (cv::Point2f(p) - a).dot(ab) / std::max(length2, 1e-6);
      const cv::Point2f foot = a + ab * static_cast<float>(t);
      const double d = distance(foot, cv::Point2f(p));
      if (d < best_distance) {
        best = i;
        best_distance = d;
        best_t = t;
      }
    }
    const double side_length = distance(rough[best], rough[(best + 1) % 4]);
    if (best_t > 0.15 && best_t < 0.85 && best_distance < 0.03 * side_length) {
      sides[best].emplace_back(p);
    }
  }
  std::array<cv::Vec4f, 4> lines;
  for (int i = 0; i < 4; ++i) {
    if (sides[i].size() < 5) {
      return rough;
    }
    cv::fitLine(sides[i], lines[i], cv::DIST_HUBER, 0, 0.01, 0.01);
  }
  Quad refined;
  for (int i = 0; i < 4; ++i) {
    // Corner i joins side i-1 (ending there) and side i (starting there).
    const auto corner = intersect(lines[(i + 3) % 4], lines[i]);
    if (!corner || distance(*corner, rough[i]) > 0.1 * distance(rough[0], rough[2])) {
      return rough;
    }
    refined[i] = *corner;
  }
  return refined;
}

// A text row widened over the glyph outlines (`outlines`, a 0/255 mask) that continue it at its
// height: digits that were not joined into the row (faint relief, a group crossed by a pattern,
// which made its blob too tall) are taken in as long as no gap wider than a digit group's gap
// breaks the run.
cv::Rect extendAlongRow(const cv::Mat& outlines, const cv::Rect& row) {
  const cv::Rect band =
      cv::Rect(0, row.y, outlines.cols, row.height) & cv::Rect(0, 0, outlines.cols, outlines.rows);
  cv::Mat ink_per_column;
  cv::reduce(outlines(band) / 255, ink_per_column, 0, cv::REDUCE_SUM, CV_32S);
  const int min_ink = std::max(2, static_cast<int>(kMinColumnInkShare * row.height));
  const int max_gap = static_cast<int>(kMaxRowGapHeights * row.height);
  const auto inked = [&](int x) { return ink_per_column.at<int>(0, x) >= min_ink; };
  int left = row.x;
  for (int x = row.x - 1, gap = 0; x >= 0 && gap <= max_gap; --x) {
    gap = inked(x) ? 0 : gap + 1;
    left = gap == 0 ? x : left;
  }
  int right = row.br().x;  // exclusive
  for (int x = row.br().x, gap = 0; x < outlines.cols && gap <= max_gap; ++x) {
    gap = inked(x) ? 0 : gap + 1;
    right = gap == 0 ? x + 1 : right;
  }
  return cv::Rect(left, row.y, right - left, row.height);
}

// A text row cut down to the band its glyphs share: the rows of the box in which at least
// kMinBandCoverage of the best-covered row's stretches (each as wide as the box is tall) hold
// glyph outlines. Small print under part of the line (the first group repeated under the
// number, a date) and marks crossing only part of it are left out, so that the box's height is
// the text's, which sets the scale the readers see. The row is kept whole when the band would
// be thinner than half of it and thinner than kMinLineHeightPx.
cv::Rect tightenRow(const cv::Mat& outlines, const cv::Rect& row) {
  const cv::Rect box = row & cv::Rect(0, 0, outlines.cols, outlines.rows);
  const int stretch = std::max(1, box.height);
  const int stretches = std::max(1, box.width / stretch);
  std::vector<int> coverage(static_cast<std::size_t>(box.height), 0);
  for (int y = 0; y < box.height; ++y) {
    const uchar* line = outlines.ptr<uchar>(box.y + y) + box.x;
    for (int s = 0; s < stretches; ++s) {
      const int from = s * box.width / stretches;
      const int to = (s + 1) * box.width / stretches;
      coverage[static_cast<std::size_t>(y)] +=
          std::any_of(line + from, line + to, [](uchar v) { return v != 0; }) ? 1 : 0;
    }
  }
  const auto peak = std::max_element(coverage.begin(), coverage.end());
  if (peak == coverage.end() || *peak == 0) {
    return row;
  }
  const int need = static_cast<int>(std::ceil(kMinBandCoverage * *peak));
  int top = static_cast<int>(peak - coverage.begin());
  int bottom = top;  // inclusive
  while (top > 0 && coverage[static_cast<std::size_t>(top - 1)] >= need) {
    --top;
  }
  while (bottom + 1 < box.height && coverage[static_cast<std::size_t>(bottom + 1)] >= need) {
    ++bottom;
  }
  const int height = bottom - top + 1;
  if (height < kMinLineHeightPx && 2 * height < box.height) {
    return row;
  }
  return cv::Rect(box.x, box.y + top, box.width, height);
}

// Rows of text: boxes that overlap vertically by most of their height are joined.
std::vector<cv::Rect> joinIntoRows(std::vector<cv::Rect> pieces) {
  std::sort(pieces.begin(), pieces.end(),
            [](const cv::Rect& a, const cv::Rect& b) { return a.x < b.x; });
  std::vector<cv::Rect> rows;
  for (const auto& piece : pieces) {
    bool joined = false;
    for (auto& row : rows) {
      const int overlap = std::min(row.br().y, piece.br().y) - std::max(row.y, piece.y);
      const int gap = piece.x - row.br().x;
      if (overlap > 0.6 * std::min(row.height, piece.height) &&
          std::abs(row.height - piece.height) < 0.5 * std::max(row.height, piece.height) &&
          gap < 3 * std::max(row.height, piece.height)) {
        row |= piece;
        joined = true;
        break;
      }
    }
    if (!joined) {
      rows.push_back(piece);
    }
  }
  return rows;
}

// The card as the largest region whose colour differs from the tray's (as the frame's border
// shows it), boxed by its minimum-area rectangle whose sides are then fitted to the region's
// outline. nullopt when that region is not card-like. Meant for a copy about 320 px wide (the
// smoothing is sized for it).
std::optional<Quad> cardByTrayContrast(const cv::Mat& small_bgr) {
  if (small_bgr.channels() != 3) {
    return std::nullopt;
  }
  cv::Mat lab;
  cv::cvtColor(small_bgr, lab, cv::COLOR_BGR2Lab);
  // The tray as the border band shows it: its chroma (the median of a and b) and its lightness,
  // which the box's light makes uneven (brighter under the lamp, darker in the corners), as a
  // quadratic surface over the frame fitted to the band by least squares.
  const int band = std::max(4, small_bgr.rows / 40);
  std::vector<cv::Vec6d> terms;  // 1, u, v, u^2, uv, v^2 of each border pixel taken
  std::vector<double> lightness;
  std::vector<int> chroma_a;
  std::vector<int> chroma_b;
  const auto termsAt = [&](int x, int y) {
    const double u = static_cast<double>(x) / lab.cols - 0.5;
    const double v = static_cast<double>(y) / lab.rows - 0.5;
    return cv::Vec6d(1.0, u, v, u * u, u * v, v * v);
  };
  for (int y = 0; y < lab.rows; y += 2) {
    const auto* row = lab.ptr<cv::Vec3b>(y);
    const bool whole_row = y < band || y >= lab.rows - band;
    for (int x = 0; x < lab.cols; x += 2) {
      if (!whole_row && x >= band && x < lab.cols - band) {
        continue;
      }
      terms.push_back(termsAt(x, y));
      lightness.push_back(row[x][0]);
      chroma_a.push_back(row[x][1]);
      chroma_b.push_back(row[x][2]);
    }
  }
  const auto median = [](std::vector<int> values) {
    std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
    return values[values.size() / 2];
  };
  const int tray_a = median(chroma_a);
  const int tray_b = median(chroma_b);
  const cv::Mat design(static_cast<int>(terms.size()), 6, CV_64F, terms.data());
  const cv::Mat observed(static_cast<int>(lightness.size()), 1, CV_64F, lightness.data());
  cv::Mat surface;  // 6 x 1
  if (terms.size() < 24 ||
      !cv::solve(design, observed, surface, cv::DECOMP_CHOLESKY | cv::DECOMP_NORMAL)) {
    return std::nullopt;
  }
  const cv::Mat fitted = design * surface;
  double lightness_spread = 0.0;  // what the surface leaves unexplained (mean absolute residual)
  for (int i = 0; i < fitted.rows; ++i) {
    lightness_spread += std::abs(fitted.at<double>(i) - lightness[static_cast<std::size_t>(i)]);
  }
  lightness_spread /= std::max(1, fitted.rows);
  const double threshold = std::max(18.0, 4.0 * lightness_spread);
  // Far from the tray's colour (chroma counting twice): the card.
  const auto limit = static_cast<float>(threshold * threshold);
  const cv::Vec6d c(surface.ptr<double>());
  cv::Mat mask(lab.size(), CV_8UC1);
  for (int y = 0; y < lab.rows; ++y) {
    const auto* row = lab.ptr<cv::Vec3b>(y);
    auto* out = mask.ptr<uchar>(y);
    // The surface along this row: constant + linear * u + c[3] * u^2.
    const double v = static_cast<double>(y) / lab.rows - 0.5;
    const double constant = c[0] + c[2] * v + c[5] * v * v;
    const double linear = c[1] + c[4] * v;
    for (int x = 0; x < lab.cols; ++x) {
      const double u = static_cast<double>(x) / lab.cols - 0.5;
      const double dl = row[x][0] - (constant + (linear + c[3] * u) * u);
      const int da = row[x][1] - tray_a;
      const int db = row[x][2] - tray_b;
      out[x] = static_cast<float>(dl * dl + 2 * da * da + 2 * db * db) > limit ? 255 : 0;
    }
  }
  cv::morphologyEx(mask, mask, cv::MORPH_CLOSE,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(9, 9)));
  cv::morphologyEx(mask, mask, cv::MORPH_OPEN,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3)));
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  if (contours.empty()) {
    return std::nullopt;
  }
  // A magnetic stripe as dark as the tray can cut the card in two: take every sizeable region.
  const double frame_area = static_cast<double>(small_bgr.cols) * small_bgr.rows;
  std::vector<cv::Point> points;
  double region_area = 0.0;
  for (const auto& c : contours) {
    const double area = cv::contourArea(c);
    if (area >= 0.005 * frame_area) {
      points.insert(points.end(), c.begin(), c.end());
      region_area += area;
    }
  }
  if (points.size() < 4) {
    return std::nullopt;
  }
  const cv::RotatedRect box = cv::minAreaRect(points);
  std::array<cv::Point2f, 4> pts;
  box.points(pts.data());
  const Quad q = orderCorners(std::vector<cv::Point2f>(pts.begin(), pts.end()));
  // The regions must fill most of their rectangle, or they are not one card.
  if (region_area < 0.75 * box.size.area() || !plausibleCard(q, frame_area)) {
    return std::nullopt;
  }
  // The rectangle's sides, fitted to the region's outline: perspective makes it no rectangle.
  return refineCorners(q, points, small_bgr.size());
}

// A grey card without the strokes thinner than print's, dark or light (the fine lines of a
// background pattern): closed and opened with a kHairlinePx square.
cv::Mat withoutHairlines(const cv::Mat& gray) {
  const cv::Mat stroke =
      cv::getStructuringElement(cv::MORPH_RECT, cv::Size(kHairlinePx, kHairlinePx));
  cv::Mat plain;
  cv::morphologyEx(gray, plain, cv::MORPH_CLOSE, stroke);
  cv::morphologyEx(plain, plain, cv::MORPH_OPEN, stroke);
  return plain;
}

// The text rows of locateNumberLine, found in one grey image. `strict`: only the strongest
// outlines count (locateMoreLines).
std::vector<cv::Rect> locateRows(const cv::Mat& gray, bool strict = false);

// The band of a straightened card where embossed numbers lie (the card generator and ISO 7811
// put the baseline about 19 mm above the bottom edge): centres of the number line fall in
// [top, bottom], and its text is about kEmbossTextPx tall.
constexpr int kEmbossBandTopPx = 280;
constexpr int kEmbossBandBottomPx = 360;
constexpr int kEmbossTextPx = 56;

// True when the line's centre falls in the emboss band.
bool inEmbossBand(const cv::Rect& line) {
  const int centre = line.y + line.height / 2;
  return centre >= kEmbossBandTopPx && centre <= kEmbossBandBottomPx;
}

// A line of a card `card_cols` wide from `top`, `height` tall, across the band's width.
cv::Rect acrossBand(int card_cols, int top, int height) {
  return cv::Rect(3 * kCardMarginPx, top, card_cols - 6 * kCardMarginPx, height);
}

// The line of the emboss band with the most vertical-stroke energy (digit edges), for cards
// whose relief shows too faintly to be found as a text row.
cv::Rect embossBandLine(const cv::Mat& gray) {
  cv::Mat dx;
  cv::Sobel(gray, dx, CV_32F, 1, 0, 3);
  dx = cv::abs(dx);
  cv::Mat row_energy;
  cv::reduce(dx.colRange(kCardMarginPx, gray.cols - kCardMarginPx), row_energy, 1, cv::REDUCE_SUM,
             CV_32F);
  int best_top = kEmbossBandTopPx - kEmbossTextPx / 2;
  double best = -1.0;
  for (int top = kEmbossBandTopPx - kEmbossTextPx / 2;
       top <= kEmbossBandBottomPx - kEmbossTextPx / 2; top += 2) {
    const double energy = cv::sum(row_energy.rowRange(top, top + kEmbossTextPx))[0];
    if (energy > best) {
      best = energy;
      best_top = top;
    }
  }
  return acrossBand(gray.cols, best_top, kEmbossTextPx);
}

}  // namespace

const char* toString(LinePrep prep) {
  switch (prep) {
    case LinePrep::kBinary:
      return "binary";
    case LinePrep::kGray:
      return "gray";
    case LinePrep::kRelief:
      return "relief";
    case LinePrep::kHeight:
      return "height";
  }
  return "?";
}

std::optional<Quad> findCard(const cv::Mat& frame_bgr) {
  if (frame_bgr.empty()) {
    return std::nullopt;
  }
  const double scale = std::min(1.0, kOutlineWorkPx / std::max(frame_bgr.cols, frame_bgr.rows));
  cv::Mat small;
  cv::resize(frame_bgr, small, cv::Size(), scale, scale, cv::INTER_AREA);
  cv::Mat gray;
  if (small.channels() == 3) {
    cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
  } else {
    gray = small;
  }
  cv::GaussianBlur(gray, gray, cv::Size(5, 5), 0);
  cv::Mat edges;
  cv::Canny(gray, edges, 20, 60);
  cv::dilate(edges, edges, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3)));

  // Candidates: the outlines of the largest edge contours, and the region that differs from the
  // tray (a dark stripe or glare along an edge can break the outline, and a picture's own edges
  // can join it); the one whose sides the frame's edges follow best wins.
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(edges, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
  std::sort(contours.begin(), contours.end(),
            [](const auto& a, const auto& b) { return cv::contourArea(a) > cv::contourArea(b); });
  const double frame_area = static_cast<double>(small.cols) * small.rows;
  std::vector<Quad> candidates;
  for (std::size_t i = 0; i < std::min<std::size_t>(contours.size(), 5); ++i) {
    auto pts = quadOf(contours[i]);
    if (!pts) {
      continue;
    }
    const Quad q = orderCorners(*pts);
    if (plausibleCard(q, frame_area)) {
      candidates.push_back(refineCorners(q, contours[i], small.size()));
    }
  }
  // The region is found at half the size (the snapping below places its sides precisely).
  if (std::min(small.cols, small.rows) >= kMinTrayFramePx) {
    cv::Mat half;
    cv::resize(small, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
    if (auto q = cardByTrayContrast(half)) {
      for (auto& p : *q) {
        p = p * 2.0f + cv::Point2f(0.5f, 0.5f);  // half's pixel centres in small's pixels
      }
      candidates.push_back(*q);
    }
  }
  if (candidates.empty()) {
    return std::nullopt;
  }
  const EdgeField field(gray);
  Quad best = candidates.front();
  double best_support = -1.0;
  for (const Quad& q : candidates) {
    const double support = field.support(q);
    if (support > best_support) {
      best_support = support;
      best = q;
    }
  }
  best = field.snapped(best);
  for (auto& p : best) {
    p *= static_cast<float>(1.0 / scale);
  }
  return best;
}

cv::Mat straighten(const cv::Mat& frame_bgr, const Quad& corners) {
  const std::array<cv::Point2f, 4> target = {cv::Point2f(0, 0), cv::Point2f(kCardWidthPx - 1, 0),
                                             cv::Point2f(kCardWidthPx - 1, kCardHeightPx - 1),
                                             cv::Point2f(0, kCardHeightPx - 1)};
  const cv::Mat transform = cv::getPerspectiveTransform(corners.data(), target.data());
  cv::Mat card;
  cv::warpPerspective(frame_bgr, card, transform, cv::Size(kCardWidthPx, kCardHeightPx),
                      cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return card;
}

FrameView viewOfFrame(const cv::Mat& frame_bgr) {
  FrameView view;
  if (frame_bgr.empty()) {
    return view;
  }
  const double aspect = static_cast<double>(frame_bgr.cols) / frame_bgr.rows;
  if (aspect >= kMinLineCropAspect) {
    view.kind = FrameView::Kind::kLineCrop;
    view.image = frame_bgr;
    return view;
  }
  if (const auto corners = findCard(frame_bgr)) {
    view.kind = FrameView::Kind::kCard;
    view.image = straighten(frame_bgr, *corners);
    return view;
  }
  const double card_aspect = static_cast<double>(kCardWidthPx) / kCardHeightPx;
  if (std::abs(aspect / card_aspect - 1.0) <= kCropAspectTolerance) {
    view.kind = FrameView::Kind::kCard;
    cv::resize(frame_bgr, view.image, cv::Size(kCardWidthPx, kCardHeightPx), 0, 0, cv::INTER_AREA);
  }
  return view;
}

std::vector<cv::Rect> locateNumberLine(const cv::Mat& card_bgr) {
  const cv::Mat gray = grayOf(card_bgr);
  std::vector<cv::Rect> rows = locateRows(gray);
  if (rows.empty()) {
    // Embossed digits without ink show only as faint shading: stretch the local contrast.
    cv::Mat enhanced;
    cv::createCLAHE(4.0, cv::Size(8, 8))->apply(gray, enhanced);
    rows = locateRows(enhanced);
  }
  // Rows found only once the card's fine lines are flattened are less sure than the emboss band.
  bool rows_less_sure = false;
  if (rows.empty()) {
    // A pattern of fine lines behind the print (guilloche) joins the digits and the lines into
    // one blob too tall for a row.
    rows = locateRows(withoutHairlines(gray));
    rows_less_sure = !rows.empty();
  }
  // Embossed numbers sit in a fixed band of the card (ISO/IEC 7811-1); when no text row was
  // found there, the band itself is the last candidate, and the first before rows found only with
  // the fine lines flattened (measured: put after them, it lost 7 cards of 2820 hard cards,
  // as many as the rows gained).
  const bool band_covered = std::any_of(rows.begin(), rows.end(), inEmbossBand);
  if ((!band_covered || rows_less_sure) && gray.rows == kCardHeightPx &&
      gray.cols == kCardWidthPx) {
    rows.insert(rows_less_sure ? rows.begin() : rows.end(), embossBandLine(gray));
  }
  return rows;
}

namespace {

// The height recovered from inkless embossing's shading (prepareLine's kHeight), below.
cv::Mat heightLine(const cv::Mat& gray);

// A grey card whose emboss band (with a line's height of margin each side) shows the height
// recovered from its shading, at the scale the height is made for: raised digits as dark solid
// shapes, and little of the flat print behind them (stripes, a guilloche), whose edges have no
// shading of their own.
cv::Mat withBandAsHeight(const cv::Mat& gray) {
  const cv::Rect band(kCardMarginPx, kEmbossBandTopPx - kEmbossTextPx,
                      gray.cols - 2 * kCardMarginPx,
                      kEmbossBandBottomPx - kEmbossBandTopPx + 2 * kEmbossTextPx);
  const double scale = kLineTextHeightPx / kEmbossTextPx;
  cv::Mat small;
  cv::resize(gray(band), small, cv::Size(), scale, scale, cv::INTER_AREA);
  const cv::Mat h = heightLine(small)(cv::Rect(kOcrBorderPx, kOcrBorderPx, small.cols, small.rows));
  cv::Mat back;
  cv::resize(h, back, band.size(), 0, 0, cv::INTER_LINEAR);
  cv::Mat out = gray.clone();
  back.copyTo(out(band));
  return out;
}
}  // namespace

std::vector<cv::Rect> locateMoreLines(const cv::Mat& card_bgr, const std::vector<cv::Rect>& known) {
  const cv::Mat gray = grayOf(card_bgr);
  std::vector<cv::Rect> candidates = locateRows(gray, true);
  const bool full_size = gray.rows == kCardHeightPx && gray.cols == kCardWidthPx;
  if (full_size) {
    // The band's line placed by the card without its fine lines, and by the band's height:
    // stripes, dots or a guilloche pull embossBandLine's strongest vertical strokes off faint
    // relief.
    candidates.push_back(embossBandLine(withoutHairlines(gray)));
    candidates.push_back(embossBandLine(withBandAsHeight(gray)));
  }
  std::vector<cv::Rect> more;
  const auto sameRow = [](const cv::Rect& k, const cv::Rect& row) {
    const int overlap = std::min(k.br().y, row.br().y) - std::max(k.y, row.y);
    return overlap > kSameRowOverlap * std::min(k.height, row.height);
  };
  for (const cv::Rect& row : candidates) {
    const auto seenIn = [&](const std::vector<cv::Rect>& lines) {
      return std::any_of(lines.begin(), lines.end(),
                         [&](const cv::Rect& k) { return sameRow(k, row); });
    };
    if (!seenIn(known) && !seenIn(more)) {
      more.push_back(row);
    }
  }
  if (!full_size) {
    return more;
  }
  // Each text row of the emboss band offered once more, across the band's width:
  //  - a row too low for the band's text, as the band's line centred on it: it holds only a part
  //    of the digits' height (where their shading is strongest), too little to cut them into
  //    glyphs. (Not every row: a row the pattern behind made too tall puts its centre off the
  //    digits, and a line there cut one card's digits into a wrong number that passed every
  //    gate.) Not at the row's own height either, which would cut the digits the same way;
  //  - a row of the text's height that covers only part of the band's width, at its own height:
  //    where the light falls off across the card, the far digit groups' shading is too faint to
  //    join the row (extendAlongRow follows outlines, and there are too few).
  for (const cv::Rect& row : known) {
    if (!inEmbossBand(row)) {
      continue;
    }
    if (row.height < kLowRowShare * kEmbossTextPx) {
      const cv::Rect centred =
          acrossBand(gray.cols, row.y + row.height / 2 - kEmbossTextPx / 2, kEmbossTextPx);
      const auto sameBox = [&](const cv::Rect& k) {
        return (k & centred).area() >= kSameBoxShare * (k | centred).area();
      };
      if (std::none_of(known.begin(), known.end(), sameBox) &&
          std::none_of(more.begin(), more.end(), sameBox)) {
        more.push_back(centred);
      }
      continue;
    }
    const cv::Rect widened = acrossBand(gray.cols, row.y, row.height);
    const auto covers = [&](const cv::Rect& k) {
      return sameRow(k, widened) && k.width >= kWideRowShare * widened.width;
    };
    if (std::none_of(known.begin(), known.end(), covers) &&
        std::none_of(more.begin(), more.end(), covers)) {
      more.push_back(widened);
    }
  }
  return more;
}

cv::Mat chromaCard(const cv::Mat& card_bgr) {
  cv::Mat lab;
  cv::cvtColor(card_bgr, lab, cv::COLOR_BGR2Lab);
  cv::Mat channels[3];
  cv::split(lab, channels);
  cv::Mat a;
  cv::Mat b;
  channels[1].convertTo(a, CV_32F, 1.0, -128.0);  // 8-bit Lab keeps a* and b* offset by 128
  channels[2].convertTo(b, CV_32F, 1.0, -128.0);
  cv::Mat chroma;
  cv::magnitude(a, b, chroma);
  // Stretched as cv::normalize's NORM_MINMAX does, but never over less than kMinChromaSpan: a
  // card without colour stays light rather than showing its JPEG's colour noise as print.
  double lowest = 0.0;
  double highest = 0.0;
  cv::minMaxLoc(chroma, &lowest, &highest);
  const double scale = 255.0 * (1.0 / std::max(highest - lowest, kMinChromaSpan));
  cv::Mat out;
  chroma.convertTo(out, CV_8U, scale, -lowest * scale);
  return 255 - out;
}

namespace {

std::vector<cv::Rect> locateRows(const cv::Mat& gray, bool strict) {
  // The morphological gradient lights up glyph outlines whatever the print's polarity, and
  // stays dark over the card's smooth background.
  cv::Mat gradient;
  cv::morphologyEx(gray, gradient, cv::MORPH_GRADIENT,
                   cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(3, 3)));
  cv::Mat mask;
  const double otsu = cv::threshold(gradient, mask, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  if (strict) {
    // Otsu's split again, among the outlines: print's edges against a pattern's weaker ones.
    std::vector<uchar> outline_levels;
    for (int y = 0; y < gradient.rows; ++y) {
      const uchar* g = gradient.ptr<uchar>(y);
      std::copy_if(g, g + gradient.cols, std::back_inserter(outline_levels),
                   [&](uchar v) { return v > otsu; });
    }
    if (outline_levels.empty()) {
      return {};
    }
    const cv::Mat levels(1, static_cast<int>(outline_levels.size()), CV_8U, outline_levels.data());
    cv::Mat split;
    const double strong = cv::threshold(levels, split, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
    cv::threshold(gradient, mask, strong, 255, cv::THRESH_BINARY);
  }
  const cv::Rect inner(kCardMarginPx, kCardMarginPx, mask.cols - 2 * kCardMarginPx,
                       mask.rows - 2 * kCardMarginPx);
  cv::Mat cleaned = cv::Mat::zeros(mask.size(), mask.type());
  mask(inner).copyTo(cleaned(inner));
  const cv::Mat outlines = cleaned.clone();
  // Fill the glyph outlines and join the glyphs of a digit group into one blob (but not lines
  // above or below each other), then drop what is thinner than print: hairlines, noise.
  cv::morphologyEx(cleaned, cleaned, cv::MORPH_CLOSE,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(21, 11)));
  cv::morphologyEx(cleaned, cleaned, cv::MORPH_OPEN,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(9, 9)));

  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(cleaned, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  std::vector<cv::Rect> pieces;
  for (const auto& c : contours) {
    const cv::Rect box = cv::boundingRect(c);
    if (box.height >= kMinLineHeightPx && box.height <= kMaxLineHeightPx) {
      pieces.push_back(box);
    }
  }
  std::vector<cv::Rect> rows;
  for (const auto& joined : joinIntoRows(std::move(pieces))) {
    const cv::Rect row = extendAlongRow(outlines, tightenRow(outlines, joined));
    if (row.width >= kMinLineWidthShare * gray.cols && row.width >= 6 * row.height) {
      rows.push_back(row);
    }
  }
  // The number is the widest line on the card face in every common layout.
  std::sort(rows.begin(), rows.end(),
            [](const cv::Rect& a, const cv::Rect& b) { return a.width > b.width; });
  if (rows.size() > kMaxLineCandidates) {
    rows.resize(kMaxLineCandidates);
  }
  return rows;
}

}  // namespace

namespace {

// Inkless embossing shows only where the light catches the relief: a bright edge on one side of
// each stroke, a dark one on the other, at any angle. Whichever way a pixel departs from its
// neighbourhood (the median of a window a few strokes wide, which thin strokes do not move and
// which leaves no halo around them as a blur would), the departure is ink; the two edges then
// read as the outline of the digit. The scale is set by the line's strongest relief (a high
// quantile, so that a speck of glare does not decide it).
cv::Mat reliefLine(const cv::Mat& gray) {
  constexpr double kEdgeSigma = 1.0;
  constexpr double kStrongQuantile = 0.995;
  constexpr int kNeighbourhoodPx = 15;
  cv::Mat around8;
  cv::medianBlur(gray, around8, kNeighbourhoodPx);
  cv::Mat level;
  gray.convertTo(level, CV_32F);
  cv::Mat around;
  around8.convertTo(around, CV_32F);
  cv::Mat departure = cv::abs(level - around);
  cv::GaussianBlur(departure, departure, cv::Size(), kEdgeSigma);
  std::vector<float> values(departure.begin<float>(), departure.end<float>());
  const auto at =
      values.begin() + static_cast<std::ptrdiff_t>(kStrongQuantile * (values.size() - 1));
  std::nth_element(values.begin(), at, values.end());
  const double strong = std::max(4.0, static_cast<double>(*at));
  cv::Mat out;
  departure.convertTo(out, CV_8U, -255.0 / strong, 255.0);  // saturates: strong relief is black
  cv::copyMakeBorder(out, out, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx,
                     cv::BORDER_REPLICATE);
  return out;
}

// Inkless embossing lit from one side: the brightness departs from the plastic's by the slope of
// the relief along the light (lit where the relief rises towards the light, shaded where it
// falls). Summing that departure along the light's direction gives the height back: the digits
// come out as solid raised shapes, like print, which the readers know far better than outlines.
// The sum leaks (kLeakPx) so that noise and stray edges do not run on across the line. The light's
// direction is not known: it is the one whose heights look most like raised shapes on flat
// ground, i.e. whose distribution is most skewed towards high values (the digits cover a
// minority of the line); summing the other way round gives the same heights negated.
cv::Mat integrateAlong(const cv::Mat& slope, double angle) {
  constexpr double kLeakPx = 10.0;
  const double cx = std::cos(angle);
  const double cy = std::sin(angle);
  // The walk goes from row to row of `m` (the line's rows for a mostly vertical direction, its
  // columns, transposed into rows, for a mostly horizontal one); each step moves `dv` across.
  const bool along_rows = std::abs(cx) < std::abs(cy);
  const cv::Mat m = along_rows ? slope : cv::Mat(slope.t());
  const double main = along_rows ? cy : cx;
  const double dv = (along_rows ? cx : cy) / std::abs(main);  // |dv| <= 1
  const float keep = static_cast<float>(std::exp(-std::hypot(1.0, dv) / kLeakPx));
  const auto run = [&](int du, double step_v) {
    cv::Mat acc(m.size(), CV_32F);
    const int first = du > 0 ? 0 : m.rows - 1;
    m.row(first).copyTo(acc.row(first));
    // The previous sample of (u, v) is (u - du, v - step_v), interpolated across.
    const int whole = static_cast<int>(std::floor(-step_v));
    const float frac = static_cast<float>(-step_v - whole);
    const int last = m.cols - 1;
    for (int i = 1; i < m.rows; ++i) {
      const int u = first + du * i;
      const float* prev = acc.ptr<float>(u - du);
      const float* in = m.ptr<float>(u);
      float* out = acc.ptr<float>(u);
      for (int v = 0; v <= last; ++v) {
        const float before = prev[std::clamp(v + whole, 0, last)] * (1 - frac) +
                             prev[std::clamp(v + whole + 1, 0, last)] * frac;
        out[v] = keep * before + in[v];
      }
    }
    return acc;
  };
  const int du = main > 0 ? 1 : -1;
  const cv::Mat height = (run(du, dv) - run(-du, -dv)) * 0.5;
  return along_rows ? height : cv::Mat(height.t());
}

double skewness(const cv::Mat& values) {
  cv::Scalar mean;
  cv::Scalar deviation;
  cv::meanStdDev(values, mean, deviation);
  if (deviation[0] <= 0) {
    return 0.0;
  }
  double sum = 0;
  for (auto it = values.begin<float>(); it != values.end<float>(); ++it) {
    const double z = (*it - mean[0]) / deviation[0];
    sum += z * z * z;
  }
  return sum / static_cast<double>(values.total());
}

cv::Mat heightLine(const cv::Mat& gray) {
  constexpr int kNeighbourhoodPx = 15;  // as reliefLine: steps of the background do not move it
  constexpr int kDirections = 12;       // over half a turn; the other half is the sign
  constexpr double kPlainQuantile = 0.5;
  constexpr double kHighQuantile = 0.995;
  cv::Mat around8;
  cv::medianBlur(gray, around8, kNeighbourhoodPx);
  cv::Mat level;
  gray.convertTo(level, CV_32F);
  cv::Mat around;
  around8.convertTo(around, CV_32F);
  const cv::Mat slope = level - around;
  cv::Mat best;
  double best_skew = 0;
  for (int k = 0; k < kDirections; ++k) {
    cv::Mat height = integrateAlong(slope, M_PI * k / kDirections);
    const double skew = skewness(height);
    if (best.empty() || std::abs(skew) > std::abs(best_skew)) {
      best = skew < 0 ? cv::Mat(-height) : height;
      best_skew = skew;
    }
  }
  // Flat ground (the median) white, the highest relief black.
  std::vector<float> values(best.begin<float>(), best.end<float>());
  const auto at = [&](double q) {
    auto it = values.begin() + static_cast<std::ptrdiff_t>(q * (values.size() - 1));
    std::nth_element(values.begin(), it, values.end());
    return static_cast<double>(*it);
  };
  const double plain = at(kPlainQuantile);
  const double high = std::max(plain + 1.0, at(kHighQuantile));
  cv::Mat out;
  best.convertTo(out, CV_8U, -255.0 / (high - plain), 255.0 + 255.0 * plain / (high - plain));
  cv::copyMakeBorder(out, out, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx,
                     cv::BORDER_REPLICATE);
  return out;
}

}  // namespace

cv::Mat prepareLine(const cv::Mat& card_bgr, const cv::Rect& line_box, LinePrep prep) {
  const int pad_x = std::max(8, line_box.height / kLinePadDivisor);
  const int pad_y = std::max(6, line_box.height / 4);
  cv::Rect crop(line_box.x - pad_x, line_box.y - pad_y, line_box.width + 2 * pad_x,
                line_box.height + 2 * pad_y);
  crop &= cv::Rect(0, 0, card_bgr.cols, card_bgr.rows);
  cv::Mat gray = grayOf(card_bgr(crop));
  const double scale = std::clamp(kLineTextHeightPx / line_box.height, 0.5, 3.0);
  cv::resize(gray, gray, cv::Size(), scale, scale, scale < 1.0 ? cv::INTER_AREA : cv::INTER_CUBIC);

  if (prep == LinePrep::kRelief) {
    return reliefLine(gray);
  }
  if (prep == LinePrep::kHeight) {
    return heightLine(gray);
  }
  // Polarity: the crop's top and bottom margins are background; if they sit on the dark side
  // of the Otsu split the print is light, so invert it.
  cv::Mat otsu;
  const double split = cv::threshold(gray, otsu, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  const int band = std::max(2, static_cast<int>(pad_y * scale / 2));
  const double border_mean = (cv::mean(gray.rowRange(0, band))[0] +
                              cv::mean(gray.rowRange(gray.rows - band, gray.rows))[0]) /
                             2;
  if (border_mean < split) {
    cv::bitwise_not(gray, gray);
  }
  if (prep == LinePrep::kGray) {
    // The grey line as is, framed by its own edge pixels so the frame adds no stroke.
    cv::copyMakeBorder(gray, gray, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx,
                       cv::BORDER_REPLICATE);
    return gray;
  }
  // A local threshold copes with the gradients printed behind the number.
  cv::Mat binary;
  const int block = (static_cast<int>(kLineTextHeightPx * 1.5) / 2) * 2 + 1;
  cv::adaptiveThreshold(gray, binary, 255, cv::ADAPTIVE_THRESH_MEAN_C, cv::THRESH_BINARY, block,
                        12);
  cv::copyMakeBorder(binary, binary, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx, kOcrBorderPx,
                     cv::BORDER_CONSTANT, cv::Scalar(255));
  return binary;
}

class LineReader::Impl {
 public:
  explicit Impl(const LineReaderOptions& options) {
    // Without a config file the built-in settings below apply (they mirror
    // models/tessdata/configs/lostcard-card-digits); with one, the file decides. Settings that
    // Tesseract reads only at Init (the dictionaries) must be given here, not by SetVariable.
    std::vector<std::string> names = {"debug_file"};
    std::vector<std::string> values = {"/dev/null"};
    std::vector<char*> config_files;
    std::string config = options.config_path;
    if (config.empty()) {
      for (const auto& [name, value] : kBuiltInSettings) {
        names.emplace_back(name);
        values.emplace_back(value);
      }
    } else {
      config_files.push_back(config.data());
    }
    const char* datapath = options.tessdata_dir.empty() ? nullptr : options.tessdata_dir.c_str();
    const int rc = api_.Init(datapath, "eng", tesseract::OEM_LSTM_ONLY,
                             config_files.empty() ? nullptr : config_files.data(),
                             static_cast<int>(config_files.size()), &names, &values, false);
    if (rc != 0) {
      throw std::runtime_error("Tesseract could not initialise (tessdata '" + options.tessdata_dir +
                               "', config '" + options.config_path + "')");
    }
    // One line of text per image: a structural choice of this reader, not a tuning knob.
    api_.SetPageSegMode(tesseract::PSM_SINGLE_LINE);
  }

  ~Impl() { api_.End(); }

  OcrLine readLine(const cv::Mat& card_bgr, const cv::Rect& line_box, LinePrep prep) {
    const cv::Mat binary = prepareLine(card_bgr, line_box, prep);
    api_.SetImage(binary.data, binary.cols, binary.rows, 1, static_cast<int>(binary.step));
    OcrLine line;
    if (api_.Recognize(nullptr) != 0) {
      return line;
    }
    std::unique_ptr<tesseract::ResultIterator> it(api_.GetIterator());
    if (!it) {
      return line;
    }
    // Rebuild the text from words so group boundaries are single spaces.
    if (it->Empty(tesseract::RIL_WORD)) {
      api_.Clear();
      return line;
    }
    double min_word_conf = 100.0;
    do {
      std::unique_ptr<char[]> word(it->GetUTF8Text(tesseract::RIL_WORD));
      if (word) {
        if (!line.text.empty()) {
          line.text += ' ';
        }
        line.text += word.get();
        line.reading.groups.push_back(std::string_view(word.get()).size());
        min_word_conf = std::min<double>(min_word_conf, it->Confidence(tesseract::RIL_WORD));
      }
    } while (it->Next(tesseract::RIL_WORD));
    line.min_word_confidence = line.text.empty() ? 0.0 : min_word_conf;
    it.reset(api_.GetIterator());
    double sum = 0;
    int symbols = 0;
    double min_conf = 100.0;
    if (!it->Empty(tesseract::RIL_SYMBOL)) {
      do {
        const double conf = it->Confidence(tesseract::RIL_SYMBOL);
        std::unique_ptr<char[]> symbol(it->GetUTF8Text(tesseract::RIL_SYMBOL));
        if (symbol && symbol[0] != '\0') {
          line.reading.positions.push_back(
              {CharChoice{symbol[0], std::clamp(conf / 100.0, 0.0, 1.0)}});
        }
        sum += conf;
        ++symbols;
        min_conf = std::min(min_conf, conf);
      } while (it->Next(tesseract::RIL_SYMBOL));
    }
    if (symbols > 0) {
      line.mean_confidence = sum / symbols;
      line.min_symbol_confidence = min_conf;
    }
    api_.Clear();
    return line;
  }

  tesseract::TessBaseAPI api_;
};

LineReader::LineReader(const LineReaderOptions& options) : impl_(std::make_unique<Impl>(options)) {}
LineReader::~LineReader() = default;

OcrLine LineReader::readLine(const cv::Mat& card_bgr, const cv::Rect& line_box, LinePrep prep) {
  return impl_->readLine(card_bgr, line_box, prep);
}

}  // namespace lostcard::cloud
