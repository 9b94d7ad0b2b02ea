#pragma once
// Reads a line of card digits glyph by glyph: the line is cut into glyphs (segmentLine), and each
// normalised glyph is classified by a small neural network trained on digits rendered in the
// fonts cards are printed with and on glyphs cut from generated card photos (models/digits/):
// a convolutional network read from ONNX (trained by models/digits/train_cnn.py), or an MLP on
// the glyph's gradient histogram (glyphFeatures; trained by tools/train_digits). Each position
// gets its top choices with probabilities, which is what the check-digit decoder
// (card_number_decoder.hpp) needs to repair a doubtful digit.
//
//   DigitClassifier classifier = DigitClassifier::load(digitModelPath("models"));
//   LineReading reading = readLineGlyphs(classifier, card_bgr, line_box);
//   DecodedReading d = decodeReading(reading, formats);
//
// It is much cheaper than a Tesseract line read (a line's glyphs go through the network in one
// pass) and knows the fixed-pitch digit shapes (OCR-A, OCR-B, embosser fonts) Tesseract's
// general model misreads. classify() and classifyAll() are const and safe to call concurrently
// (the ONNX network is run by one caller at a time).
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "lostcard/cloud/card_number_decoder.hpp"
#include "lostcard/cloud/recognition_stages.hpp"

namespace lostcard::cloud {

// Glyphs are normalised to this box (aspect kept, centred) before their features are taken.
inline constexpr int kGlyphWidthPx = 20;
inline constexpr int kGlyphHeightPx = 32;

// One line cut into glyphs, left to right: each glyph's box in the prepared line image and its
// normalised picture (kGlyphWidthPx x kGlyphHeightPx, CV_8U, ink bright on black); and the
// sizes of the groups the gaps between glyphs split the line into.
struct LineGlyphs {
  std::vector<cv::Rect> boxes;
  std::vector<cv::Mat> glyphs;
  std::vector<std::size_t> groups;
  // False when tall ink next to the glyphs was left out (too tall or wide to be a glyph: digits
  // running into the card's edge or a pattern), so digits of the line may be missing.
  bool complete = true;
};

// Cuts a prepared line (prepareLine(): CV_8U grey, dark print on a light background, text about
// kLineTextHeightPx tall) into glyphs. Pieces too small or off the text row are left out; a
// piece as wide as two or more glyphs is split at the line's glyph pitch. `prep` says how the
// line was prepared: grey print is thresholded locally, relief (already ink against nothing)
// by one threshold for the whole line.
LineGlyphs segmentLine(const cv::Mat& line_gray, LinePrep prep = LinePrep::kGray);

// Cuts a prepared line of monospaced digits printed in one of `groupings` (the formats' printed
// groupings, e.g. {4, 4, 4, 4}) by the layout of its glyph cells: the start, pitch, gap between
// groups and grouping whose cells hold the line's column profile of ink best (pitch_cut.cpp).
// For embossing above all, whose shading breaks digits apart and runs neighbours together so
// that its pieces of ink say little. Every cell becomes a glyph, trimmed to its ink; `groups` is
// the chosen grouping (so it is no evidence of the layout, unlike segmentLine's). Groupings of a
// single run are not tried (they have no gaps to check the layout by). Empty when no grouping
// fits in the line, or when the best layout's gaps hold ink (a run of digits squeezed into a
// grouping); `complete` is false when glyph-like ink lies beyond the layout's ends.
LineGlyphs segmentLineByPitch(const cv::Mat& line_gray,
                              const std::vector<std::vector<std::size_t>>& groupings);

// The glyph in `box` of a prepared line: inverted (ink bright), contrast stretched, scaled to
// kGlyphHeightPx (narrower when it is wide, aspect kept) and centred in the glyph box.
cv::Mat normaliseGlyph(const cv::Mat& line_gray, const cv::Rect& box);

// The feature vector of one normalised glyph (1 x N, CV_32F).
cv::Mat glyphFeatures(const cv::Mat& glyph);

// The classifier's eleventh class: a glyph that is no digit as it stands, such as a digit seen
// upside down or mirrored (so a line read the wrong way round does not pass for a number).
// classify() reports it as the symbol '?'.
inline constexpr int kNotADigit = 10;

class DigitClassifier {
 public:
  // Reads a model: an MLP written by save() (.yml.gz), or a convolutional network written by
  // models/digits/train_cnn.py (.onnx). Throws std::runtime_error if it is missing or malformed.
  static DigitClassifier load(const std::string& path);
  // Trains a network on glyphs (normalised, as segmentLine gives them) and their labels (0..9,
  // or kNotADigit). The same samples and seed give the same model.
  static DigitClassifier train(const std::vector<cv::Mat>& glyphs, const std::vector<int>& digits,
                               unsigned seed);

  // Writes a trained MLP (not an ONNX model: those are written by train_cnn.py).
  void save(const std::string& path) const;

  // The glyph's likely symbols ('0'..'9', '?' for no digit), best first, with probabilities
  // (the top three of a distribution summing to 1).
  std::vector<CharChoice> classify(const cv::Mat& glyph) const;
  // classify() for each glyph, in one pass of the network.
  std::vector<std::vector<CharChoice>> classifyAll(const std::vector<cv::Mat>& glyphs) const;

  // The same network, steadied: it reads each glyph as it stands and shifted a pixel left,
  // right, up and down, and averages the five distributions, so that a cut a pixel off or a
  // pattern's line across a stroke sways it less. Five times the cost of a reading. (save()
  // writes the model alone: steadiness is how it is read, not part of it.)
  DigitClassifier steadied() const;

 private:
  class Model;
  explicit DigitClassifier(std::shared_ptr<const Model> model);
  std::shared_ptr<const Model> model_;
  bool steadied_ = false;
};

// The first classifier's model in a models folder, as the recognizer and the bench's diagnosis
// load it: digits/digit_cnn.onnx when the folder has it, else digits/digit_mlp.yml.gz.
std::string digitModelPath(const std::string& models_dir);

// The second network of a models folder, digits/digit_cnn_second.onnx: the same architecture
// trained on twice the glyphs (the first network's glyph sets and two more; models/README.md),
// which the recognizer looks again with at a card neither the first network nor its steadied
// reading could read, and which only confirms a number a look before saw. It may be absent.
std::string digitSecondOpinionPath(const std::string& models_dir);

// One line of a straightened card cut into glyphs as the classifier reads it: prepareLine as
// `prep` says, then segmentLine. With `pitch_groupings`, the line box is widened along its row
// (a group the box missed then shows as ink left out, or is cut with the rest) and cut by
// segmentLineByPitch in those groupings instead.
LineGlyphs cutLine(const cv::Mat& card_bgr, const cv::Rect& line_box, LinePrep prep,
                   const std::vector<std::vector<std::size_t>>* pitch_groupings = nullptr);

// One line of a straightened card read with the classifier: cutLine, then classify. The groups
// are the ones the cut saw (cut by pitch: the chosen grouping); *complete (when given) says
// whether the cut was (cut by pitch: whether ink of the row was left out).
LineReading readLineGlyphs(const DigitClassifier& classifier, const cv::Mat& card_bgr,
                           const cv::Rect& line_box, bool* complete = nullptr,
                           LinePrep prep = LinePrep::kGray,
                           const std::vector<std::vector<std::size_t>>* pitch_groupings = nullptr);

}  // namespace lostcard::cloud
