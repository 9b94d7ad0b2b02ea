#pragma once
// Where the recognizer lost a card it did not read (lostcard-ocr-bench --why): the stages are
// run again on the card's photos, this time knowing the true number, and every reader (Tesseract
// on the binary, grey and relief line; the digit classifier on the grey, relief and height line,
// cut by pieces and by pitch) is asked about every candidate line of every orientation. How close
// the best of those readings came to the truth tells the stage that failed:
//
//   no-card   no frame gave a card (no outline, and the frame is not card- or line-shaped)
//   no-line   no candidate line of any orientation read as anything close to the number (more
//             than kCloseEdits edits away): the line was not located, or is illegible as
//             prepared
//   misread   the best reading is 1..kCloseEdits edits away: located, but digits misread
//   rejected  some reading was exactly the number, yet the pipeline refused it (confidence
//             gates, grouping, a stray glyph, or the other readers did not confirm it)
//   disagree  the recognizer answered "ambiguous" (frames or orientations read different
//             numbers)
//
// The diagnosis is for development only; it prints no digits (distances and stage names only).
#include <string>
#include <vector>

#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/cloud/card_number_decoder.hpp"
#include "lostcard/cloud/digit_classifier.hpp"
#include "lostcard/cloud/recognition.hpp"
#include "lostcard/cloud/recognition_stages.hpp"

namespace lostcard::bench {

// Readings at most this many edits (insertions, deletions, substitutions) from the truth count as
// "close": the line was found and most of its digits read.
inline constexpr int kCloseEdits = 3;

struct StageVerdict {
  std::string stage;    // no-card, no-line, misread, rejected, disagree
  int best_edits = -1;  // the closest reading's edit distance to the truth (-1: no reading)
  std::string best_by;  // which reader, preparation and orientation gave it
};

class StageDiagnosis {
 public:
  // Readers set up as the recognizer's: the models folder's Tesseract config and digit model.
  StageDiagnosis(const std::string& tessdata_dir, const std::string& models_dir);

  StageVerdict diagnose(const cloud::CardImages& images, const cloud::CardReading& reading,
                        const std::string& truth);

 private:
  cloud::LineReader reader_;
  cloud::DigitClassifier classifier_;
  std::vector<std::vector<std::size_t>> groupings_;  // the formats' printed groupings
};

}  // namespace lostcard::bench
