#include "lostcard/cloud/digit_classifier.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>
#include <numeric>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/ml.hpp>
#include <opencv2/objdetect.hpp>
#include <stdexcept>
#include <string>

#include "lostcard/cloud/recognition_stages.hpp"

namespace lostcard::cloud {
namespace {

// Pieces of ink smaller than this (in the prepared line, text ~34 px tall) are specks.
constexpr int kMinPieceArea = 12;
// A glyph is at least this share of the row's text height tall (a broken digit's pieces are
// joined first; card digits are all as tall as the row, and a shorter column is part of one,
// such as the top of an embossed 4 whose lower part faded, which the classifier can take for
// another digit), and at most this share of it. A piece that tall left out is ink of the row left
// out (below): the cut says a digit may be missing (LineGlyphs::complete).
constexpr double kMinGlyphHeightShare = 0.75;
constexpr double kMaxGlyphHeightShare = 1.5;
// A glyph is at least this share of the row height wide (thinner: a rule or a pattern's line;
// a digit 1 is wider for its flag or foot), and one glyph at most this share.
constexpr double kMinGlyphWidthShare = 0.1;
constexpr double kMaxSingleGlyphWidthShare = 0.8;
// A glyph wider than this many typical glyph widths is glyphs touching each other.
constexpr double kTouchingWidthShare = 1.55;
// A piece of relief may be this many text heights wide (a group of up to 6 glyphs run together).
constexpr double kMaxReliefPieceWidthShare = 5.0;
// A cut between touching glyphs may move this share of a glyph's width from the even split, to
// the emptiest column there.
constexpr double kCutSearchShare = 0.3;
// A glyph narrower than this share of the typical width, at most kSliverGapPx from a neighbour,
// is a sliver of that neighbour if the two are at most kJoinedWidthShare of it wide together.
constexpr double kSliverWidthShare = 0.45;
constexpr int kSliverGapPx = 2;
constexpr double kJoinedWidthShare = 1.35;
// A line of touching glyphs: the glyph pitch is between these shares of the row height, the gap
// between glyphs about this share of the pitch, and the line holds a card number's digits.
constexpr double kMinPitchShare = 0.45;
constexpr double kMaxPitchShare = 1.0;
constexpr double kGlyphGapPitchShare = 0.12;
constexpr int kMinNumberLength = 13;
constexpr int kMaxNumberLength = 19;
// Two neighbours whose centres are this many glyph pitches apart sit on either side of a gap.
constexpr double kGroupGapPitchShare = 1.4;
// Softmax sharpness for the network's outputs (targets are +1 / -1), so that a clear output
// reads as a probability near 1 and two close outputs share it.
constexpr double kSoftmaxGain = 4.0;
constexpr int kTopChoices = 3;
// A line cut by pitch is widened by this many line heights on either side.
constexpr double kPitchContextHeights = 1.5;
constexpr int kClasses = kNotADigit + 1;

double median(std::vector<double> v) {
  if (v.empty()) {
    return 0.0;
  }
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) {
    return 0.0;
  }
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * (v.size() - 1) + 0.5);
  return v[i];
}

const cv::HOGDescriptor& glyphHog() {
  // 3 x 3 blocks of 2 x 2 cells of 10 x 16 px ... 9 orientations: 324 values.
  static const cv::HOGDescriptor hog(cv::Size(kGlyphWidthPx, kGlyphHeightPx), cv::Size(10, 16),
                                     cv::Size(5, 8), cv::Size(5, 8), 9);
  return hog;
}

// A line whose glyphs (nearly) all touch: the boxes are its groups, or runs of them. Under a
// monospaced pitch p a box W wide holds about (W + gap) / p glyphs, the gap between glyphs being
// about kGlyphGapPitchShare of p. The pitch is the one (within the plausible widths of a digit
// for the row's height) whose counts fit the widths best and add up to a card number's length;
// empty when none does.
std::vector<int> countsAtBestPitch(const std::vector<cv::Rect>& boxes, double row_height) {
  std::vector<int> best;
  double best_cost = std::numeric_limits<double>::max();
  for (double pitch = kMinPitchShare * row_height; pitch <= kMaxPitchShare * row_height;
       pitch += 0.25) {
    std::vector<int> counts;
    int total = 0;
    double cost = 0;
    for (const auto& b : boxes) {
      const double exact = (b.width + kGlyphGapPitchShare * pitch) / pitch;
      const int n = std::max(1, static_cast<int>(std::lround(exact)));
      counts.push_back(n);
      total += n;
      cost += (exact - n) * (exact - n);
    }
    if (total >= kMinNumberLength && total <= kMaxNumberLength && cost < best_cost) {
      best_cost = cost;
      best = counts;
    }
  }
  return best;
}

}  // namespace

cv::Mat normaliseGlyph(const cv::Mat& line_gray, const cv::Rect& box) {
  cv::Mat ink;
  cv::bitwise_not(line_gray(box), ink);
  double lo = 0;
  double hi = 0;
  cv::minMaxLoc(ink, &lo, &hi);
  if (hi - lo < 1.0) {
    hi = lo + 1.0;
  }
  ink.convertTo(ink, CV_8U, 255.0 / (hi - lo), -lo * 255.0 / (hi - lo));
  const double scale = std::min(static_cast<double>(kGlyphHeightPx) / box.height,
                                static_cast<double>(kGlyphWidthPx) / box.width);
  const int w = std::clamp(static_cast<int>(std::lround(box.width * scale)), 1, kGlyphWidthPx);
  const int h = std::clamp(static_cast<int>(std::lround(box.height * scale)), 1, kGlyphHeightPx);
  cv::Mat scaled;
  cv::resize(ink, scaled, cv::Size(w, h), 0, 0, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Mat glyph(kGlyphHeightPx, kGlyphWidthPx, CV_8U, cv::Scalar(0));
  scaled.copyTo(glyph(cv::Rect((kGlyphWidthPx - w) / 2, (kGlyphHeightPx - h) / 2, w, h)));
  return glyph;
}

LineGlyphs segmentLine(const cv::Mat& line_gray, LinePrep prep) {
  LineGlyphs out;
  if (line_gray.empty() || line_gray.type() != CV_8UC1) {
    return out;
  }
  // Embossed digits (relief, or the height recovered from it): monospaced, often run into each
  // other, on plain ground.
  const bool embossed = prep == LinePrep::kRelief || prep == LinePrep::kHeight;
  cv::Mat ink;
  if (embossed) {
    cv::threshold(line_gray, ink, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  } else {
    const int block = (static_cast<int>(kLineTextHeightPx * 1.5) / 2) * 2 + 1;
    cv::adaptiveThreshold(line_gray, ink, 255, cv::ADAPTIVE_THRESH_MEAN_C, cv::THRESH_BINARY_INV,
                          block, 12);
  }
  cv::Mat labels;
  cv::Mat stats;
  cv::Mat centroids;
  const int n = cv::connectedComponentsWithStats(ink, labels, stats, centroids, 8, CV_32S);
  std::vector<cv::Rect> pieces;
  for (int i = 1; i < n; ++i) {
    if (stats.at<int>(i, cv::CC_STAT_AREA) < kMinPieceArea) {
      continue;
    }
    pieces.emplace_back(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                        stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
  }
  // Relief blurs neighbouring glyphs into one piece far more often than print does: such a
  // piece, up to a whole group wide, still marks the row and is split into glyphs below.
  const double max_piece_width_share = embossed ? kMaxReliefPieceWidthShare : 1.6;
  // The row: the median top and bottom of the pieces about as tall as text.
  std::vector<double> tops;
  std::vector<double> bottoms;
  for (const auto& p : pieces) {
    if (p.height >= 0.5 * kLineTextHeightPx && p.height <= 1.6 * kLineTextHeightPx &&
        p.width <= max_piece_width_share * kLineTextHeightPx) {
      tops.push_back(p.y);
      bottoms.push_back(p.br().y);
    }
  }
  if (tops.size() < 2) {
    return out;
  }
  const double row_top = median(tops);
  const double row_bottom = median(bottoms);
  const double row_height = row_bottom - row_top;
  if (row_height < 8) {
    return out;
  }
  // Pieces inside the row (with some slack), joined into columns where they overlap in x.
  std::vector<cv::Rect> inside;
  const double slack = 0.25 * row_height;
  for (const auto& p : pieces) {
    if (p.y >= row_top - slack && p.br().y <= row_bottom + slack &&
        p.height <= kMaxGlyphHeightShare * row_height) {
      inside.push_back(p);
    }
  }
  std::sort(inside.begin(), inside.end(),
            [](const cv::Rect& a, const cv::Rect& b) { return a.x < b.x; });
  std::vector<cv::Rect> columns;
  for (const auto& p : inside) {
    if (!columns.empty()) {
      cv::Rect& last = columns.back();
      const int overlap = std::min(last.br().x, p.br().x) - std::max(last.x, p.x);
      if (overlap > 0.5 * std::min(last.width, p.width)) {
        last |= p;
        continue;
      }
    }
    columns.push_back(p);
  }
  std::vector<cv::Rect> glyphs;
  for (const auto& c : columns) {
    if (c.height >= kMinGlyphHeightShare * row_height &&
        c.width <= std::max(3.5, max_piece_width_share) * row_height &&
        c.width >= kMinGlyphWidthShare * row_height) {
      glyphs.push_back(c);
    }
  }
  if (glyphs.size() < 2) {
    return out;
  }
  // Touching glyphs: split a box much wider than the typical glyph evenly. The typical width is
  // taken from boxes narrow enough to be one glyph, so that many touching pairs in one line
  // do not pass for the norm.
  std::vector<double> widths;
  std::vector<double> single_widths;
  for (const auto& g : glyphs) {
    widths.push_back(g.width);
    if (g.width <= kMaxSingleGlyphWidthShare * row_height) {
      single_widths.push_back(g.width);
    }
  }
  // How many glyphs each box holds.
  std::vector<int> counts;
  double typical_width = 0.0;
  // Print: most glyphs stand alone and show the width. Relief (embossed, monospaced digits
  // blurred into each other): the pitch that fits every box decides.
  if (single_widths.size() >= 3 && !embossed) {
    typical_width = quantile(single_widths, 0.75);
    for (const auto& g : glyphs) {
      counts.push_back(
          g.width > kTouchingWidthShare * typical_width
              ? std::max(2, static_cast<int>(std::lround(g.width / (typical_width * 1.08))))
              : 1);
    }
  } else {
    counts = countsAtBestPitch(glyphs, row_height);
    if (counts.empty()) {
      return out;
    }
    double glyph_total = 0;
    double width_total = 0;
    for (std::size_t i = 0; i < glyphs.size(); ++i) {
      glyph_total += counts[i];
      width_total += glyphs[i].width;
    }
    typical_width = width_total / glyph_total;
  }
  std::vector<cv::Rect> split;
  for (std::size_t b = 0; b < glyphs.size(); ++b) {
    const cv::Rect& g = glyphs[b];
    const int parts = counts[b];
    // Each cut at the emptiest column near where an even split would put it.
    std::vector<int> cuts = {g.x};
    if (parts > 1) {
      cv::Mat column_ink;
      cv::reduce(ink(g), column_ink, 0, cv::REDUCE_SUM, CV_32S);
      const int reach = static_cast<int>(kCutSearchShare * g.width / parts);
      for (int k = 1; k < parts; ++k) {
        const int even = g.width * k / parts;
        int best = even;
        for (int x = std::max(cuts.back() - g.x + 1, even - reach);
             x <= std::min(g.width - 1, even + reach); ++x) {
          if (column_ink.at<int>(0, x) < column_ink.at<int>(0, best)) {
            best = x;
          }
        }
        cuts.push_back(g.x + best);
      }
    }
    cuts.push_back(g.br().x);
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      if (cuts[k + 1] > cuts[k]) {
        split.emplace_back(cuts[k], g.y, cuts[k + 1] - cuts[k], g.height);
      }
    }
  }
  // A sliver right against a neighbour (one edge of a glyph that a shadow or a highlight cut
  // off the rest) joins it, when the two together are no wider than one glyph.
  for (std::size_t i = 0; i < split.size() && split.size() > 2;) {
    const cv::Rect g = split[i];
    std::size_t into = split.size();
    int joined_width = std::numeric_limits<int>::max();
    for (const std::size_t n : {i - 1, i + 1}) {
      if (g.width >= kSliverWidthShare * typical_width || n >= split.size()) {
        continue;
      }
      const int gap = std::max(split[n].x - g.br().x, g.x - split[n].br().x);
      const int width = (split[n] | g).width;
      if (gap <= kSliverGapPx && width <= kJoinedWidthShare * typical_width &&
          width < joined_width) {
        into = n;
        joined_width = width;
      }
    }
    if (into < split.size()) {
      split[into] |= g;
      split.erase(split.begin() + static_cast<std::ptrdiff_t>(i));
      i = 0;
      continue;
    }
    ++i;
  }
  // Groups: the pitch is the typical distance between neighbouring centres; a much longer one
  // is a gap between groups.
  std::vector<double> steps;
  for (std::size_t i = 1; i < split.size(); ++i) {
    steps.push_back((split[i].x + split[i].width / 2.0) -
                    (split[i - 1].x + split[i - 1].width / 2.0));
  }
  const double pitch = quantile(steps, 0.3);
  std::size_t group = 1;
  for (std::size_t i = 1; i < split.size(); ++i) {
    if (steps[i - 1] > kGroupGapPitchShare * pitch) {
      out.groups.push_back(group);
      group = 0;
    }
    ++group;
  }
  out.groups.push_back(group);
  // Tall ink left out next to the glyphs (a piece too tall or too wide: digits run into the
  // card's edge or a pattern) may hide digits of the number: the cut is then incomplete. A
  // piece is kept when the glyphs cover most of it together (touching glyphs cut apart share
  // one piece).
  const int reach = static_cast<int>(2 * pitch);
  const int left = split.front().x - reach;
  const int right = split.back().br().x + reach;
  for (const auto& p : pieces) {
    const int overlap_y =
        std::min(p.br().y, static_cast<int>(row_bottom)) - std::max(p.y, static_cast<int>(row_top));
    int covered = 0;
    for (const cv::Rect& g : split) {
      covered += (g & p).area();
    }
    const bool kept = covered > 0.5 * p.area();
    if (!kept && overlap_y >= 0.6 * row_height && p.br().x > left && p.x < right) {
      out.complete = false;
    }
  }
  for (const auto& box : split) {
    out.boxes.push_back(box);
    out.glyphs.push_back(normaliseGlyph(line_gray, box));
  }
  return out;
}

cv::Mat glyphFeatures(const cv::Mat& glyph) {
  std::vector<float> hog;
  glyphHog().compute(glyph, hog);
  // Plus a coarse picture of the ink (4 x 4 px cells), which HOG, being local, lacks.
  cv::Mat coarse;
  cv::resize(glyph, coarse, cv::Size(kGlyphWidthPx / 4, kGlyphHeightPx / 4), 0, 0, cv::INTER_AREA);
  cv::Mat features(1, static_cast<int>(hog.size() + coarse.total()), CV_32F);
  std::copy(hog.begin(), hog.end(), features.ptr<float>());
  float* tail = features.ptr<float>() + hog.size();
  for (int i = 0; i < static_cast<int>(coarse.total()); ++i) {
    tail[i] = coarse.data[i] / 255.0f;
  }
  return features;
}

// The network behind a DigitClassifier: either OpenCV's MLP on glyphFeatures() (its outputs
// are targets of +1 / -1, made a distribution by a sharp softmax), or a convolutional network
// read from ONNX (models/digits/train_cnn.py) that sees the glyph itself and gives temperature-
// scaled logits.
class DigitClassifier::Model {
 public:
  explicit Model(cv::Ptr<cv::ml::ANN_MLP> mlp) : mlp_(std::move(mlp)) {}
  explicit Model(cv::dnn::Net cnn) : cnn_(std::move(cnn)) {}

  bool isMlp() const { return !mlp_.empty(); }
  const cv::ml::ANN_MLP& mlp() const { return *mlp_; }

  // One row of class scores per glyph, and the gain that turns them into a softmax.
  cv::Mat scores(const std::vector<cv::Mat>& glyphs, double* gain) const {
    if (isMlp()) {
      *gain = kSoftmaxGain;
      cv::Mat features;
      for (const cv::Mat& glyph : glyphs) {
        features.push_back(glyphFeatures(glyph));
      }
      cv::Mat outputs;
      mlp_->predict(features, outputs);
      return outputs;
    }
    *gain = 1.0;
    const cv::Mat blob = cv::dnn::blobFromImages(glyphs, 1.0 / 255.0);
    // Net::forward changes the net's state: one caller at a time.
    const std::lock_guard lock(cnn_mutex_);
    cnn_.setInput(blob);
    cv::Mat out = cnn_.forward();
    return out.reshape(1, static_cast<int>(glyphs.size())).clone();
  }

 private:
  cv::Ptr<cv::ml::ANN_MLP> mlp_;
  mutable cv::dnn::Net cnn_;
  mutable std::mutex cnn_mutex_;
};

DigitClassifier::DigitClassifier(std::shared_ptr<const Model> model) : model_(std::move(model)) {}

DigitClassifier DigitClassifier::load(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error("digit model missing: " + path);
  }
  const cv::Mat blank(kGlyphHeightPx, kGlyphWidthPx, CV_8U, cv::Scalar(0));
  if (std::filesystem::path(path).extension() == ".onnx") {
    std::shared_ptr<const Model> model;
    try {
      cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
      model = std::make_shared<const Model>(std::move(net));
    } catch (const cv::Exception& e) {
      throw std::runtime_error("digit model unreadable: " + path + ": " + e.what());
    }
    // Two glyphs in, one row of kClasses scores out for each: the shape the classifier reads.
    cv::Mat out;
    try {
      double gain = 0;
      out = model->scores({blank, blank}, &gain);
    } catch (const cv::Exception& e) {
      throw std::runtime_error("digit model " + path +
                               " does not fit this recognizer's glyphs: " + e.what());
    }
    if (out.rows != 2 || out.cols != kClasses) {
      throw std::runtime_error("digit model " + path + " does not fit this recognizer's glyphs");
    }
    return DigitClassifier(model);
  }
  cv::Ptr<cv::ml::ANN_MLP> net;
  try {
    net = cv::ml::ANN_MLP::load(path);
  } catch (const cv::Exception& e) {
    throw std::runtime_error("digit model unreadable: " + path + ": " + e.what());
  }
  if (!net || !net->isTrained()) {
    throw std::runtime_error("digit model unreadable: " + path);
  }
  const cv::Mat sizes = net->getLayerSizes();
  const int inputs = glyphFeatures(blank).cols;
  if (sizes.total() < 2 || sizes.at<int>(0) != inputs ||
      sizes.at<int>(static_cast<int>(sizes.total()) - 1) != kClasses) {
    throw std::runtime_error("digit model " + path + " does not fit this recognizer's features");
  }
  return DigitClassifier(std::make_shared<const Model>(net));
}

DigitClassifier DigitClassifier::train(const std::vector<cv::Mat>& glyphs,
                                       const std::vector<int>& digits, unsigned seed) {
  if (glyphs.empty() || glyphs.size() != digits.size()) {
    throw std::invalid_argument("train: need as many digits as glyphs, and some");
  }
  cv::Mat samples;
  cv::Mat targets(static_cast<int>(glyphs.size()), kClasses, CV_32F, cv::Scalar(-1.0f));
  for (std::size_t i = 0; i < glyphs.size(); ++i) {
    samples.push_back(glyphFeatures(glyphs[i]));
    targets.at<float>(static_cast<int>(i), digits[i]) = 1.0f;
  }
  cv::theRNG().state = seed;
  auto net = cv::ml::ANN_MLP::create();
  net->setLayerSizes(std::vector<int>{samples.cols, 128, kClasses});
  net->setActivationFunction(cv::ml::ANN_MLP::SIGMOID_SYM, 1, 1);
  net->setTrainMethod(cv::ml::ANN_MLP::RPROP);
  net->setTermCriteria(
      cv::TermCriteria(cv::TermCriteria::MAX_ITER + cv::TermCriteria::EPS, 400, 1e-5));
  net->train(cv::ml::TrainData::create(samples, cv::ml::ROW_SAMPLE, targets));
  return DigitClassifier(std::make_shared<const Model>(net));
}

void DigitClassifier::save(const std::string& path) const {
  if (!model_->isMlp()) {
    throw std::logic_error("save: an ONNX model is written by models/digits/train_cnn.py");
  }
  model_->mlp().save(path);
}

std::vector<CharChoice> DigitClassifier::classify(const cv::Mat& glyph) const {
  return classifyAll({glyph}).front();
}

DigitClassifier DigitClassifier::steadied() const {
  DigitClassifier out(model_);
  out.steadied_ = true;
  return out;
}

std::vector<std::vector<CharChoice>> DigitClassifier::classifyAll(
    const std::vector<cv::Mat>& glyphs) const {
  std::vector<std::vector<CharChoice>> all;
  if (glyphs.empty()) {
    return all;
  }
  // Steadied: each glyph also shifted a pixel left, right, up and down (the space it leaves
  // black, as a glyph's margin is), all read in one pass and their distributions averaged.
  std::vector<cv::Mat> inputs = glyphs;
  if (steadied_) {
    for (const cv::Point shift :
         {cv::Point(-1, 0), cv::Point(1, 0), cv::Point(0, -1), cv::Point(0, 1)}) {
      const cv::Mat move = (cv::Mat_<double>(2, 3) << 1, 0, shift.x, 0, 1, shift.y);
      for (const cv::Mat& glyph : glyphs) {
        cv::Mat moved;
        cv::warpAffine(glyph, moved, move, glyph.size(), cv::INTER_NEAREST, cv::BORDER_CONSTANT,
                       cv::Scalar(0));
        inputs.push_back(std::move(moved));
      }
    }
  }
  double gain = 1.0;
  const cv::Mat scores = model_->scores(inputs, &gain);
  const int n = static_cast<int>(glyphs.size());
  const int views = static_cast<int>(inputs.size() / glyphs.size());
  if (scores.rows != n * views) {
    throw std::runtime_error("digit model gave " + std::to_string(scores.rows) +
                             " rows of scores for " + std::to_string(inputs.size()) + " glyphs");
  }
  for (int g = 0; g < n; ++g) {
    std::vector<double> p(kClasses, 0.0);
    for (int v = 0; v < views; ++v) {
      const float* row = scores.ptr<float>(g + v * n);
      const double peak = *std::max_element(row, row + kClasses);
      std::array<double, kClasses> e{};
      double sum = 0;
      for (int d = 0; d < kClasses; ++d) {
        e[d] = std::exp(gain * (row[d] - peak));
        sum += e[d];
      }
      for (int d = 0; d < kClasses; ++d) {
        p[d] += e[d] / sum / views;
      }
    }
    std::vector<int> order(kClasses);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + kTopChoices, order.end(),
                      [&](int a, int b) { return p[a] > p[b]; });
    std::vector<CharChoice> choices;
    for (int k = 0; k < kTopChoices; ++k) {
      const char symbol = order[k] == kNotADigit ? '?' : static_cast<char>('0' + order[k]);
      choices.push_back({symbol, p[order[k]]});
    }
    all.push_back(std::move(choices));
  }
  return all;
}

std::string digitModelPath(const std::string& models_dir) {
  const std::filesystem::path dir(models_dir);
  const std::filesystem::path cnn = dir / "digits/digit_cnn.onnx";
  return (std::filesystem::is_regular_file(cnn) ? cnn : dir / "digits/digit_mlp.yml.gz").string();
}

std::string digitSecondOpinionPath(const std::string& models_dir) {
  return (std::filesystem::path(models_dir) / "digits/digit_cnn_second.onnx").string();
}

LineGlyphs cutLine(const cv::Mat& card_bgr, const cv::Rect& line_box, LinePrep prep,
                   const std::vector<std::vector<std::size_t>>* pitch_groupings) {
  if (pitch_groupings == nullptr) {
    return segmentLine(prepareLine(card_bgr, line_box, prep), prep);
  }
  const int reach = static_cast<int>(std::lround(kPitchContextHeights * line_box.height));
  const cv::Rect wide =
      cv::Rect(line_box.x - reach, line_box.y, line_box.width + 2 * reach, line_box.height) &
      cv::Rect(0, 0, card_bgr.cols, card_bgr.rows);
  return segmentLineByPitch(prepareLine(card_bgr, wide, prep), *pitch_groupings);
}

LineReading readLineGlyphs(const DigitClassifier& classifier, const cv::Mat& card_bgr,
                           const cv::Rect& line_box, bool* complete, LinePrep prep,
                           const std::vector<std::vector<std::size_t>>* pitch_groupings) {
  const LineGlyphs cut = cutLine(card_bgr, line_box, prep, pitch_groupings);
  LineReading reading;
  reading.positions = classifier.classifyAll(cut.glyphs);
  reading.groups = cut.groups;
  if (complete != nullptr) {
    *complete = cut.complete;
  }
  return reading;
}

}  // namespace lostcard::cloud
