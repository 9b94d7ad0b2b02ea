// segmentLineByPitch (digit_classifier.hpp): a line of monospaced digits cut by the layout of its
// glyph cells rather than by its pieces of ink.
//
// Inkless embossing is the case it is for. Its digits show only by their shading, so a threshold
// breaks a digit into a shadow and a highlight, and blurs neighbours into one piece; a cut by
// pieces (segmentLine) then rarely gives one glyph per digit. But embossed digits sit on a fixed
// pitch, in the groups the issuer prints (4-4-4-4, 4-6-5, ...), so the whole line has a handful
// of unknowns: where it starts, the pitch, the gap between groups, and which grouping. The
// layout whose glyph cells hold the line's ink best wins: the score is the correlation between
// the line's column profile of ink and the layout's cells (1 inside a cell's core, 0 in the
// narrow space between glyphs, in the gaps between groups and beyond the ends), which is high
// only when the ink fills the cells and leaves the gaps empty.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <opencv2/imgproc.hpp>

#include "lostcard/cloud/digit_classifier.hpp"
#include "lostcard/cloud/recognition_stages.hpp"

namespace lostcard::cloud {
namespace {

// The share of the pitch between two glyphs' cores: a monospaced digit fills most of its cell.
constexpr double kCellSpaceShare = 0.2;
// The pitch lies between these shares of the text band's height, and the gap between groups
// (beyond the pitch) between these shares of the pitch.
constexpr double kMinPitchShare = 0.45;
constexpr double kMaxPitchShare = 1.0;
constexpr double kMinGapShare = 0.3;
constexpr double kMaxGapShare = 2.0;
// The coarse search's steps: the pitch in px, the gap in shares of the pitch; the start moves
// by whole pixels. The best layout is then refined in finer steps around it.
constexpr double kCoarsePitchStepPx = 0.5;
constexpr double kCoarseGapStepShare = 0.2;
// The text band is between these shares of the prepared line's text height tall.
constexpr double kMinBandShare = 0.6;
constexpr double kMaxBandShare = 1.4;
// A glyph's box is its cell trimmed to the columns holding at least this share of the cell's
// most inked column.
constexpr double kTrimShare = 0.15;
// The gaps between groups hold at most this share of the ink per column of the cells' cores
// (measured on 114 lines of hard cards read right: median 0.10, 95th percentile 0.43; a run of
// 13 digits squeezed into 4-4-5: 0.57).
constexpr double kMaxGapInkShare = 0.5;
// Ink beyond the layout's ends this dense (a share of the cores') is a glyph left out, unless
// the rows off the text band are inked at least kOffBandShare as densely there.
constexpr double kLeftOutShare = 0.5;
constexpr double kOffBandShare = 0.5;
// A cell that a longer printed grouping would add at the layout's end holds a glyph left out
// when its core is inked at least this share of the layout's least inked cell's core. Measured
// on every cut by pitch that decoded, on the embossed cards of four hard sets (seeds 1, 3, 7 and
// 11): of 1090 right readings with added cells on the line, 5 reached 0.5 (at most 0.73: a logo
// or the card's edge beside a 4-4-4-4 number), while a 4-6-5 number's faint last "1", cut as
// 4-6-4 and read wrong, reached 1.16. The cut-off is kept low: a reading lost costs less.
constexpr double kExtensionShare = 0.5;
// Every cell of a layout holds a glyph: its core holds at least this share of the ink of the
// median cell's core (the least of 3029 right readings cut by pitch on six hard sets: 0.27; a
// 4-4-4-4 line whose box missed its last group, cut as 4-4-5 with its last cell in the gap and
// read wrong: 0.12, another 0.0).
constexpr double kMinCellInkShare = 0.15;
// Rows kept above and below the text band in a glyph's box.
constexpr int kBandMarginPx = 2;

// How much darker each pixel of a prepared line (dark on light) is than the lightest ground
// around it: the ink, whatever the ground's shade.
cv::Mat inkOverGround(const cv::Mat& line_gray) {
  const int k = (static_cast<int>(kLineTextHeightPx * 0.45) / 2) * 2 + 1;
  cv::Mat ground;
  cv::dilate(line_gray, ground, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(k, k)));
  cv::blur(ground, ground, cv::Size(k, k));
  cv::Mat ink;
  cv::subtract(ground, line_gray, ink, cv::noArray(), CV_32F);
  return cv::max(ink, 0.0);
}

// Running sums of a profile (one row or column of CV_64F), summed between fractional positions
// (linearly interpolated).
class Profile {
 public:
  explicit Profile(const cv::Mat& values) : sums_(values.total() + 1, 0.0) {
    CV_Assert(values.type() == CV_64FC1 && (values.rows == 1 || values.cols == 1));
    for (std::size_t i = 0; i < values.total(); ++i) {
      sums_[i + 1] = sums_[i] + values.at<double>(static_cast<int>(i));
    }
  }
  int size() const { return static_cast<int>(sums_.size()) - 1; }
  double total() const { return sums_.back(); }
  double sum(double from, double to) const { return at(to) - at(from); }

 private:
  double at(double x) const {
    x = std::clamp(x, 0.0, static_cast<double>(size()));
    const auto i = static_cast<std::size_t>(x);
    if (i >= sums_.size() - 1) {
      return sums_.back();
    }
    return sums_[i] + (x - static_cast<double>(i)) * (sums_[i + 1] - sums_[i]);
  }
  std::vector<double> sums_;
};

// The correlation (up to the profile's own spread, the same for every pattern) between a
// profile of `length` positions holding `total` and a 0/1 pattern that covers `covered` of
// them and holds `inside` of the total.
double indicatorScore(double inside, double covered, double total, double length) {
  const double share = covered / length;
  if (share <= 0.0 || share >= 1.0) {
    return -std::numeric_limits<double>::infinity();
  }
  return (inside / length - total / length * share) / std::sqrt(share * (1.0 - share));
}

// The rows [top, bottom) the text runs in: the band, between kMinBandShare and kMaxBandShare
// text heights tall, that correlates best with the rows' ink.
std::pair<int, int> textBand(const cv::Mat& ink) {
  cv::Mat rows;
  cv::reduce(ink, rows, 1, cv::REDUCE_SUM, CV_64F);
  const Profile profile(rows);
  const int height = profile.size();
  std::pair<int, int> best{0, height};
  double best_score = -std::numeric_limits<double>::infinity();
  const int tallest = std::min(height, static_cast<int>(kMaxBandShare * kLineTextHeightPx));
  for (int h = static_cast<int>(kMinBandShare * kLineTextHeightPx); h <= tallest; ++h) {
    for (int top = 0; top + h <= height; ++top) {
      const double score = indicatorScore(profile.sum(top, top + h), h, profile.total(), height);
      if (score > best_score) {
        best_score = score;
        best = {top, top + h};
      }
    }
  }
  return best;
}

// Where the glyph cells of one grouping lie: the first starts at `start`, each is `pitch`
// wide, and groups are `gap` apart (beyond the pitch).
struct Layout {
  const std::vector<std::size_t>* grouping = nullptr;
  double start = 0.0;
  double pitch = 0.0;
  double gap = 0.0;
  double score = -std::numeric_limits<double>::infinity();

  std::size_t glyphs() const {
    std::size_t n = 0;
    for (const std::size_t size : *grouping) {
      n += size;
    }
    return n;
  }
  double span() const {
    return static_cast<double>(glyphs()) * pitch + static_cast<double>(grouping->size() - 1) * gap;
  }
  // Calls f(left, right) for each cell, left to right.
  template <typename F>
  void forEachCell(F&& f) const {
    double x = start;
    for (const std::size_t size : *grouping) {
      for (std::size_t i = 0; i < size; ++i) {
        f(x + static_cast<double>(i) * pitch, x + static_cast<double>(i + 1) * pitch);
      }
      x += static_cast<double>(size) * pitch + gap;
    }
  }
};

// The width of one cell's core: the cell less the space kept between glyphs.
double coreWidth(double pitch) { return (1.0 - kCellSpaceShare) * pitch; }

// The ink inside the cores of the layout's cells.
double coreInk(const Layout& layout, const Profile& profile) {
  const double margin = kCellSpaceShare * layout.pitch / 2;
  double inside = 0.0;
  layout.forEachCell(
      [&](double left, double right) { inside += profile.sum(left + margin, right - margin); });
  return inside;
}

// The ink inside each of the layout's cells' cores, left to right.
std::vector<double> cellCoreInk(const Layout& layout, const Profile& profile) {
  const double margin = kCellSpaceShare * layout.pitch / 2;
  std::vector<double> cores;
  layout.forEachCell([&](double left, double right) {
    cores.push_back(profile.sum(left + margin, right - margin));
  });
  return cores;
}

// The layout's score (indicatorScore of its cores).
double scoreOf(const Layout& layout, const Profile& profile) {
  const double covered = static_cast<double>(layout.glyphs()) * coreWidth(layout.pitch);
  return indicatorScore(coreInk(layout, profile), covered, profile.total(), profile.size());
}

// The best layout on whole-pixel starts, for each pitch (kCoarsePitchStepPx apart) and gap: the
// ink of a group of n cells starting at each pixel is summed once per pitch, so that a layout's
// ink is one look-up per group. Every grouping has two groups or more.
Layout coarseLayout(const Profile& profile, const std::vector<std::vector<std::size_t>>& groupings,
                    double band_height) {
  const int width = profile.size();
  std::size_t largest = 0;
  for (const auto& grouping : groupings) {
    for (const std::size_t size : grouping) {
      largest = std::max(largest, size);
    }
  }
  Layout best;
  std::vector<double> cell(static_cast<std::size_t>(width));
  std::vector<std::vector<double>> group_ink(largest + 1);
  std::vector<double> inside;  // per start, the ink in the layout's cells
  for (double pitch = kMinPitchShare * band_height; pitch <= kMaxPitchShare * band_height;
       pitch += kCoarsePitchStepPx) {
    const double margin = kCellSpaceShare * pitch / 2;
    for (int x = 0; x < width; ++x) {
      cell[static_cast<std::size_t>(x)] = profile.sum(x + margin, x + pitch - margin);
    }
    // group_ink[n][x]: the ink of n cells from x on (cells past the line's end count none:
    // layouts reaching there are not tried).
    group_ink[0].assign(static_cast<std::size_t>(width), 0.0);
    for (std::size_t n = 1; n <= largest; ++n) {
      group_ink[n].assign(static_cast<std::size_t>(width), 0.0);
      const int offset = static_cast<int>(std::lround(static_cast<double>(n - 1) * pitch));
      for (int x = 0; x + offset < width; ++x) {
        group_ink[n][static_cast<std::size_t>(x)] = group_ink[n - 1][static_cast<std::size_t>(x)] +
                                                    cell[static_cast<std::size_t>(x + offset)];
      }
    }
    for (const auto& grouping : groupings) {
      Layout layout{&grouping, 0.0, pitch, 0.0};
      // The layouts of one grouping and pitch cover the same share of the line: the one holding
      // the most ink scores best.
      const double covered = static_cast<double>(layout.glyphs()) * coreWidth(pitch);
      for (double gap = kMinGapShare * pitch; gap <= kMaxGapShare * pitch;
           gap += std::max(1.0, kCoarseGapStepShare * pitch)) {
        layout.gap = gap;
        const int starts = width - static_cast<int>(std::ceil(layout.span())) + 1;
        if (starts <= 0) {
          break;
        }
        // The groups' ink summed per start, the last group's pass keeping the most.
        inside.assign(group_ink[grouping.front()].begin(),
                      group_ink[grouping.front()].begin() + starts);
        double offset = 0.0;
        double most = -1.0;
        int most_at = 0;
        for (std::size_t g = 1; g < grouping.size(); ++g) {
          offset += static_cast<double>(grouping[g - 1]) * pitch + gap;
          const double* ink = group_ink[grouping[g]].data() + std::lround(offset);
          if (g + 1 < grouping.size()) {
            for (int x = 0; x < starts; ++x) {
              inside[static_cast<std::size_t>(x)] += ink[x];
            }
            continue;
          }
          for (int x = 0; x < starts; ++x) {
            const double sum = inside[static_cast<std::size_t>(x)] + ink[x];
            if (sum > most) {
              most = sum;
              most_at = x;
            }
          }
        }
        const double score = indicatorScore(most, covered, profile.total(), width);
        if (score > best.score) {
          best = layout;
          best.start = most_at;
          best.score = score;
        }
      }
    }
  }
  return best;
}

// The best layout within `reach` of `around` (the pitch, gap and start each moved by up to
// their reach, in `steps` steps each side).
Layout bestNear(const Layout& around, const Profile& profile, const Layout& reach, int steps) {
  Layout best = around;
  for (int p = -steps; p <= steps; ++p) {
    for (int g = -steps; g <= steps; ++g) {
      for (int s = -steps; s <= steps; ++s) {
        Layout layout = around;
        layout.pitch += reach.pitch * p / steps;
        layout.gap += reach.gap * g / steps;
        layout.start += reach.start * s / steps;
        if (layout.start < 0 || layout.start + layout.span() > profile.size()) {
          continue;
        }
        layout.score = scoreOf(layout, profile);
        if (layout.score > best.score) {
          best = layout;
        }
      }
    }
  }
  return best;
}

// The layout refined around `rough` (found on whole pixels and coarse steps): within one coarse
// step, then within one of those finer steps.
Layout refinedLayout(Layout rough, const Profile& profile) {
  rough.score = scoreOf(rough, profile);
  constexpr int kSteps = 3;
  Layout reach = rough;
  reach.pitch = kCoarsePitchStepPx;
  reach.gap = std::max(1.0, kCoarseGapStepShare * rough.pitch);
  reach.start = 1.5;
  const Layout near = bestNear(rough, profile, reach, kSteps);
  reach.pitch /= kSteps;
  reach.gap /= kSteps;
  reach.start /= kSteps;
  return bestNear(near, profile, reach, kSteps);
}

// The ink per column of the layout's cells' cores.
double coreDensity(const Layout& layout, const Profile& profile) {
  return coreInk(layout, profile) /
         (static_cast<double>(layout.glyphs()) * coreWidth(layout.pitch));
}

// The ink per column in the gaps between the layout's groups, as a share of that in its cells'
// cores; 0 for a single group.
double gapInkShare(const Layout& layout, const Profile& profile) {
  const double gap_width = static_cast<double>(layout.grouping->size() - 1) * layout.gap;
  const double core_density = coreDensity(layout, profile);
  if (gap_width <= 0.0 || core_density <= 0.0) {
    return 0.0;
  }
  double gaps = 0.0;
  double x = layout.start;
  for (std::size_t g = 0; g + 1 < layout.grouping->size(); ++g) {
    x += static_cast<double>((*layout.grouping)[g]) * layout.pitch;
    gaps += profile.sum(x, x + layout.gap);
    x += layout.gap;
  }
  return gaps / gap_width / core_density;
}

// A line's ink per column, in its text band and in the rows above and below it.
struct LineInk {
  const Profile& band;
  int band_rows;
  Profile off_band;
  int off_rows;

  // Whether the ink of columns [left, right) keeps to the text band: the rows off it are inked
  // less than kOffBandShare as densely as the band's. A glyph's ink keeps to the band; the
  // card's edge or a pattern runs through every row.
  bool keepsToBand(double left, double right) const {
    return off_rows == 0 ||
           off_band.sum(left, right) / off_rows < kOffBandShare * band.sum(left, right) / band_rows;
  }
};

// Whether ink like a glyph's lies beyond the layout's ends: a pitch-wide stretch, from half a
// pitch off the first or last cell to the line's margin (prepareLine's context beyond the box,
// where the relief and height filters meet the crop's edges and show ink that is not there),
// inked in the text band like kLeftOutShare of the cores, and keeping to the band.
bool leavesInkOut(const Layout& layout, const LineInk& line) {
  const Profile& band = line.band;
  const double margin = kLineTextHeightPx / kLinePadDivisor;
  const double threshold = kLeftOutShare * coreDensity(layout, band) * layout.pitch;
  const auto glyphLike = [&](double x) {
    return band.sum(x, x + layout.pitch) > threshold && line.keepsToBand(x, x + layout.pitch);
  };
  const double left_end = layout.start - layout.pitch / 2;
  const double right_end = layout.start + layout.span() + layout.pitch / 2;
  for (double x = margin; x + layout.pitch <= left_end; x += 1.0) {
    if (glyphLike(x)) {
      return true;
    }
  }
  for (double x = right_end; x + layout.pitch <= band.size() - margin; x += 1.0) {
    if (glyphLike(x)) {
      return true;
    }
  }
  return false;
}

// Whether the layout may be a longer printed grouping cut short at its end (4-6-4 of a 4-6-5
// number, 4-4-4-4 of a 4-4-4-4-3 one), the glyphs it left out too faint for leavesInkOut, which
// looks only from half a pitch off the ends. For each of `groupings` that continues the layout's
// (the same groups, the last one as long or longer, maybe more groups after), the cells it adds
// at the layout's pitch and gap, as far as the line reaches: any of them whose core holds
// kExtensionShare of the ink of the layout's least inked core (`cores`: cellCoreInk), keeping to
// the band, is a glyph left out.
bool mayBeCutShort(const Layout& layout, const std::vector<double>& cores,
                   const std::vector<std::vector<std::size_t>>& groupings, const LineInk& line) {
  const double margin = kCellSpaceShare * layout.pitch / 2;
  const double least = *std::min_element(cores.begin(), cores.end());
  const auto heldGlyph = [&](double left) {
    const double core_left = left + margin;
    const double core_right = left + layout.pitch - margin;
    return line.band.sum(core_left, core_right) >= kExtensionShare * least &&
           line.keepsToBand(core_left, core_right);
  };
  const std::vector<std::size_t>& chosen = *layout.grouping;
  const std::size_t last = chosen.size() - 1;
  for (const auto& longer : groupings) {
    if (longer.size() < chosen.size() || longer == chosen || longer[last] < chosen[last] ||
        !std::equal(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(last),
                    longer.begin())) {
      continue;
    }
    // The added cells, left to right: the rest of the last group, then the further groups.
    double x = layout.start + layout.span();
    std::size_t cells = longer[last] - chosen[last];
    for (std::size_t group = last; group < longer.size(); ++group) {
      if (group > last) {
        x += layout.gap;
        cells = longer[group];
      }
      for (std::size_t i = 0; i < cells; ++i, x += layout.pitch) {
        if (x + layout.pitch > line.band.size()) {
          break;
        }
        if (heldGlyph(x)) {
          return true;
        }
      }
    }
  }
  return false;
}

// Whether a cell of a layout holds no glyph (kMinCellInkShare; `cores`: cellCoreInk): the layout
// is then not the line's, such as a grouping stretched over a gap to a group the line box missed.
bool hasEmptyCell(std::vector<double> cores) {
  const auto median = cores.begin() + static_cast<std::ptrdiff_t>(cores.size() / 2);
  std::nth_element(cores.begin(), median, cores.end());
  return *std::min_element(cores.begin(), cores.end()) < kMinCellInkShare * *median;
}

}  // namespace

LineGlyphs segmentLineByPitch(const cv::Mat& line_gray,
                              const std::vector<std::vector<std::size_t>>& groupings) {
  LineGlyphs out;
  if (line_gray.empty() || line_gray.type() != CV_8UC1 ||
      line_gray.rows < kMinBandShare * kLineTextHeightPx) {
    return out;
  }
  const cv::Mat ink = inkOverGround(line_gray);
  const auto [top, bottom] = textBand(ink);
  cv::Mat columns;
  cv::reduce(ink.rowRange(top, bottom), columns, 0, cv::REDUCE_SUM, CV_64F);
  const Profile profile(columns);
  if (profile.total() <= 0.0) {
    return out;
  }
  std::vector<std::vector<std::size_t>> grouped;
  std::copy_if(groupings.begin(), groupings.end(), std::back_inserter(grouped),
               [](const auto& grouping) { return grouping.size() > 1; });
  const Layout rough = coarseLayout(profile, grouped, bottom - top);
  if (rough.grouping == nullptr) {
    return out;
  }
  const Layout layout = refinedLayout(rough, profile);
  // The gaps must be seen (a run of digits without gaps fits a grouping too, its gaps squeezed
  // between glyphs), and nothing like a glyph left out (a line box that missed a group).
  if (gapInkShare(layout, profile) > kMaxGapInkShare) {
    return out;
  }
  // The rows off the band: every row's ink less the band's.
  cv::Mat all_rows;
  cv::reduce(ink, all_rows, 0, cv::REDUCE_SUM, CV_64F);
  const LineInk line{profile, bottom - top, Profile(all_rows - columns), ink.rows - (bottom - top)};
  const std::vector<double> cores = cellCoreInk(layout, profile);
  out.complete = !leavesInkOut(layout, line) && !mayBeCutShort(layout, cores, grouped, line) &&
                 !hasEmptyCell(cores);
  const int box_top = std::max(0, top - kBandMarginPx);
  const int box_bottom = std::min(line_gray.rows, bottom + kBandMarginPx);
  layout.forEachCell([&](double left, double right) {
    const int l = std::clamp(static_cast<int>(std::floor(left)), 0, line_gray.cols - 1);
    const int r = std::clamp(static_cast<int>(std::ceil(right)), l + 1, line_gray.cols);
    cv::Rect box(l, box_top, r - l, box_bottom - box_top);
    cv::Mat inked;
    cv::reduce(ink(box), inked, 0, cv::REDUCE_SUM, CV_64F);
    double most = 0.0;
    cv::minMaxLoc(inked, nullptr, &most);
    int first = 0;
    int last = inked.cols - 1;
    while (first < last && inked.at<double>(first) < kTrimShare * most) {
      ++first;
    }
    while (last > first && inked.at<double>(last) < kTrimShare * most) {
      --last;
    }
    box = cv::Rect(box.x + first, box.y, last - first + 1, box.height);
    out.boxes.push_back(box);
    out.glyphs.push_back(normaliseGlyph(line_gray, box));
  });
  out.groups = *layout.grouping;
  return out;
}

}  // namespace lostcard::cloud
