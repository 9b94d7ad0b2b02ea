#pragma once
// Reads the number of a lost card from the box's photos of its two faces. No network, no
// database: JPEG bytes in, a checked number (or a reason why not) out.
//
//   Recognizer recognizer({.tessdata_dir = "", .models_dir = "/opt/lostcard/models"});
//   CardReading r = recognizer.read({.front_jpegs = {f1, f2}, .back_jpegs = {b1}});
//   if (r.outcome == ReadOutcome::kRead) { lookUpHolder(r.number); }   // never log r.number
//
// Safety first: a wrong number hands a stranger's card to someone, an unread card only costs a
// manual review. So a number is returned only when it fits one of the accepted formats (payment
// cards: 13-19 digits passing Luhn; more in models/card_formats.conf), was read with good
// confidence, and every frame that read a checked number read the same one.
// Each line is read first by the digit classifier (digit_classifier.hpp; its model is
// models/digits/), which decides the frame alone only when sure; then by Tesseract.
// Each frame is read upright and upside down, then mirrored (embossed digits seen from the back)
// when nothing was read yet; a frame that is only the number line (a crop) is read as one line.
// Each line is read thresholded, then (if that gives no checked number) in grey levels; a
// reading must pass every confidence gate, except that the word gate is waived when both
// readings give the same checked number. A frame still unread is weighed once more line by line
// (Recognizer::Impl::agreedOnLine): Tesseract reads the line in every preparation (relief and
// the height recovered from it too), and a number counts only when two of those readings give
// it unrepaired, or when the classifier and Tesseract decode the line to it; such a number has
// confidence 0.5, the least the deposit decision trusts (kMinTrustedConfidence).
// The stages (findCard, straighten, locateNumberLine, readLine, decode) are in
// recognition_stages.hpp, card_number_decoder.hpp and card_formats.hpp.
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace lostcard::cloud {

// Checked on every JPEG before it is decoded (bytes first, then the header's frame size).
struct ImageLimits {
  std::size_t max_jpeg_bytes = 8 * 1024 * 1024;
  int max_width_px = 6000;
  int max_height_px = 6000;
};

struct RecognizerOptions {
  // "" = Tesseract's default (Debian: /usr/share/tesseract-ocr/5/tessdata).
  std::string tessdata_dir;
  // The repo's models/ folder (Tesseract config, card_formats.conf); "" = built-in defaults.
  std::string models_dir;
  ImageLimits limits;
};

struct CardImages {
  std::vector<std::string> front_jpegs;
  std::vector<std::string> back_jpegs;
};

enum class ReadOutcome {
  kRead,        // `number` holds a checked number
  kUnreadable,  // usable images, but no number could be read with confidence
  kAmbiguous,   // frames read different checked numbers
  kBadImage,    // no frame was a usable image (not a JPEG, over the limits, undecodable)
};

const char* toString(ReadOutcome outcome);

// A reading below this confidence is not trusted to name a holder: the deposit decision's
// default (DecisionPolicy::min_confidence, decision.hpp) makes it a difficult card, and
// lostcard-ocr-bench counts it as unread.
inline constexpr double kMinTrustedConfidence = 0.5;

struct CardReading {
  ReadOutcome outcome = ReadOutcome::kUnreadable;
  std::string number;       // digits only; set only when outcome == kRead
  double confidence = 0.0;  // 0..1
  std::string detail;  // for operators and logs; NEVER contains the number or any long digit run
  // The faces ("front", "back") on which some frame read a checked number, whatever the
  // outcome: the face a kept photo must not show whole is the other one.
  std::vector<std::string> number_faces;
};

// Whether the number a look after the first read counts (Recognizer::read): only if every
// number the looks before it saw anywhere (read, doubted, fused, or Tesseract's) is that one,
// and, for a look that only confirms (the second network), only if they saw it.
bool laterLookCounts(const std::string& number, const std::set<std::string>& seen_before,
                     bool confirms_only);

// Not thread-safe (owns a Tesseract engine): one Recognizer per worker thread.
class Recognizer {
 public:
  // Throws std::runtime_error if Tesseract can't initialise (missing tessdata, bad config), or a
  // model of the models folder is missing or malformed (the digit classifier, or the second
  // network when its file is present).
  explicit Recognizer(RecognizerOptions options);
  ~Recognizer();
  Recognizer(const Recognizer&) = delete;
  Recognizer& operator=(const Recognizer&) = delete;

  CardReading read(const CardImages& images);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cloud
