#pragma once
// The stages of the card-number pipeline, one function each, so each can be tested, measured
// and replaced on its own (the next issue makes them robust on real photos):
//
//   frame (BGR photo) --findCard--> Quad --straighten--> card (856x540 BGR, ID-1 aspect)
//     --locateNumberLine--> candidate line boxes --LineReader::readLine--> OcrLine
//     --decodeCardNumber (card_number_decoder.hpp)--> checked number or why not
//
// Recognizer (recognition.hpp) runs them over every frame and orientation.
#include <array>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lostcard/cloud/card_number_decoder.hpp"

namespace lostcard::cloud {

// ISO/IEC 7810 ID-1: 85.60 x 53.98 mm, straightened at 10 px/mm.
inline constexpr int kCardWidthPx = 856;
inline constexpr int kCardHeightPx = 540;

// Corners of the card in the frame: top-left, top-right, bottom-right, bottom-left, with the
// long side first (top-left -> top-right is a long edge).
using Quad = std::array<cv::Point2f, 4>;

// The card's outline in a photo of it lying on the tray: of the quadrilaterals whose size and
// aspect fit a card, with no side under half the side facing it (outlines of edge contours, the
// region whose colour differs from the tray's), the one whose sides the photo's edges follow
// best, its sides then moved onto those edges. nullopt when nothing card-like is found.
std::optional<Quad> findCard(const cv::Mat& frame_bgr);

// The card cut out of the frame and warped to kCardWidthPx x kCardHeightPx.
cv::Mat straighten(const cv::Mat& frame_bgr, const Quad& corners);

// What one photo shows, ready for the line stages: the card straightened (found by its outline,
// or the whole photo resized when it has the card's aspect: a tight crop of the card), the
// number line alone (a photo much wider than tall, kept as it is), or nothing card-like.
struct FrameView {
  enum class Kind { kCard, kLineCrop, kNothing };
  Kind kind = Kind::kNothing;
  cv::Mat image;  // the straightened card (kCardWidthPx x kCardHeightPx) or the line crop
};
FrameView viewOfFrame(const cv::Mat& frame_bgr);

// Boxes (in card pixels) of wide horizontal text lines that may hold the number, most likely
// first. Works for light-on-dark and dark-on-light print. When no row lies in the band where
// embossed numbers sit (centre 280..360 px, for relief too faint to show as a text row), the
// band's most textured 56 px line is added last, so a full-size card always gets a candidate.
// When no row shows at all, rows are looked for again with the card's fine lines (a guilloche
// behind the print) flattened; the band's line then comes first.
std::vector<cv::Rect> locateNumberLine(const cv::Mat& card_bgr);

// Lines locateNumberLine does not give: the rows that only the strongest glyph outlines show
// (the outlines' grey-level gradient split by Otsu's method twice), where a busy background
// (stripes, a guilloche) joins the print and the pattern into blobs too tall for a row; and, on
// a full-size card, the emboss band's line placed by the card with its fine lines flattened, and
// by the height recovered from the band's shading.
// Rows that share most of their height with a `known` line, or with one found before, are left
// out. Last, on a full-size card, each `known` row of the emboss band is offered again across
// the band's width (these need not differ from a known row in height, only in extent):
//  - a row too low for the band's text (a part of the digits' height), as the band's line
//    centred on it, unless a line there fills 0.85 of the box around both;
//  - a row that covers only part of the band's width (faint digit groups left out of it), at its
//    own height, unless a line at that height already covers 0.8 of the band's width.
std::vector<cv::Rect> locateMoreLines(const cv::Mat& card_bgr, const std::vector<cv::Rect>& known);

// The card's colourfulness as a grey image (one channel, same size): the chroma of each pixel
// (its distance from grey in CIELAB's a*b* plane) stretched over 0..255 across the card, but
// never over a span under 20 units (a card without colour stays light), and inverted, so that
// the most colourful pixels are the darkest. Tipping foil and ink whose lightness matches the
// background's still differ from it here: gold (yellow) on white or on a grey pattern, silver
// (grey) on a coloured card.
cv::Mat chromaCard(const cv::Mat& card_bgr);

struct LineReaderOptions {
  std::string tessdata_dir;  // "" = Tesseract's default
  std::string config_path;   // a Tesseract config file; "" = built-in settings only
};

// How the line crop is prepared for a line reader. All scale the line to the readers' text
// height and turn it into dark print on a light background.
enum class LinePrep {
  kBinary,  // locally thresholded: robust to gradients behind the print, loses thin strokes
  kGray,    // grey levels kept (Tesseract's LSTM reads grey): keeps strokes on busy backgrounds
  kRelief,  // how far each pixel departs from its neighbourhood, either way: inkless embossed
            // digits, seen only by their highlights and shadows, come out as dark outlines
  kHeight,  // the relief's height recovered from its shading (integrated along the light, whose
            // direction is found per line): inkless embossed digits come out as solid print
};

// "binary", "gray", "relief", "height": the preparation's name in logs and diagnostics.
const char* toString(LinePrep prep);

// The line cut out of the card with a margin, scaled so its text is about kLineTextHeightPx
// tall, and turned into dark print on a light background whatever the card's colours (the
// input of both line readers: Tesseract's and the digit classifier's).
inline constexpr double kLineTextHeightPx = 34.0;
// The margin kept around the line box on either side: the box's height divided by this (at
// least 8 px), before scaling. It is context for the preparations' filters, which meet the
// crop's edges there.
inline constexpr int kLinePadDivisor = 3;
cv::Mat prepareLine(const cv::Mat& card_bgr, const cv::Rect& line_box, LinePrep prep);

// Tesseract set up to read one line of card digits (LSTM, single-line page mode, digit
// whitelist). Not thread-safe.
class LineReader {
 public:
  explicit LineReader(const LineReaderOptions& options);  // throws std::runtime_error
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  OcrLine readLine(const cv::Mat& card_bgr, const cv::Rect& line_box,
                   LinePrep prep = LinePrep::kBinary);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cloud
