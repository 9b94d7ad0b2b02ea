#include "lostcard/cloud/recognition.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/cloud/card_number_decoder.hpp"
#include "lostcard/cloud/digit_classifier.hpp"
#include "lostcard/cloud/jpeg_probe.hpp"
#include "lostcard/cloud/recognition_stages.hpp"
#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {
namespace {

// The config that tunes Tesseract for card digits, relative to the models folder.
constexpr const char* kDigitsConfig = "tessdata/configs/lostcard-card-digits";
// The classifier's reading alone decides a frame when its decoded confidence reaches this;
// below it, its number must agree with Tesseract's.
constexpr double kMinGlyphConfidence = 0.9;
// ...and only when its number is likelier than every other number of its length that passes the
// check, all of them together (DecodedReading::checked_share): the mean score can pass 0.9 with
// two doubtful digits whose second choices together make another checked number, which a decoder
// that weighs only single repairs as rivals never sees.
constexpr double kMinCheckedShare = 0.5;
// The classifier's readings may be repaired like Tesseract's (one character, clearly likelier).
constexpr RepairPolicy kGlyphRepairs{};
// A line cut by pitch (segmentLineByPitch) always gives a grouping's count of glyphs, even from
// the line of a card photographed mirrored (seen from the back), whose digits 0, 1, 3 and 8
// still pass for digits: its readings are never repaired.
constexpr RepairPolicy kPitchCutRepairs{.max_repairs = 0};
// Readings of one line in several preparations, fused (settledByFusion), are not repaired either:
// fusing already weighs each glyph's alternatives.
constexpr RepairPolicy kFusedRepairs{.max_repairs = 0};
// The confidence of a number read only by filling the classifier's doubtful glyphs from
// Tesseract (below kMinGlyphConfidence: read, but not a sure reading).
constexpr double kFilledConfidence = 0.5;
// The confidence of a number read only by the line-by-line agreement (agreedOnLine): the least
// the deposit decision trusts.
constexpr double kAgreedConfidence = kMinTrustedConfidence;
// A group of at most this many glyphs at either end of a line may be a stray mark.
constexpr std::size_t kMaxStrayGroup = 2;
// ...and a reading without it, or from a cut that left tall ink out (digits may be missing),
// is kept below kMinGlyphConfidence, to be confirmed by Tesseract.
constexpr double kTrimmedConfidenceCap = 0.5;

// What one frame gave.
struct FrameResult {
  std::string face;                   // "front" or "back"
  std::string label;                  // "front frame 2"
  std::optional<std::string> number;  // a checked number
  double confidence = 0.0;            // 0..1, of that number's line
  bool self_conflicting = false;      // it read as different checked numbers (orientations, cuts)
  std::string note;                   // why nothing was read (no digits in it)
};

// A reader's best choice at every position ('?' where it has none).
std::string topChoices(const LineReading& reading) {
  std::string best;
  for (const auto& choices : reading.positions) {
    best.push_back(choices.empty() ? '?' : choices.front().symbol);
  }
  return best;
}

// True when the classifier's reading has `number`'s digits as its best choices at every position
// but one at most, and at that one has the number's digit among its other choices (it doubted
// there; it did not read another digit with nothing else in mind).
bool readAlikeButOneDoubt(const LineReading& glyphs, const std::string& number) {
  if (glyphs.positions.size() != number.size()) {
    return false;
  }
  int doubts = 0;
  for (std::size_t i = 0; i < number.size(); ++i) {
    const auto& choices = glyphs.positions[i];
    if (!choices.empty() && choices.front().symbol == number[i]) {
      continue;
    }
    const bool considered = std::any_of(choices.begin(), choices.end(),
                                        [&](const CharChoice& c) { return c.symbol == number[i]; });
    if (!considered || ++doubts > 1) {
      return false;
    }
  }
  return true;
}

// number -> the fewest repairs of a reading that decoded to it.
void keepFewestRepairs(const DecodedReading& decoded, std::map<std::string, int>* repairs) {
  if (decoded.number) {
    const auto it = repairs->emplace(*decoded.number, decoded.repaired).first;
    it->second = std::min(it->second, decoded.repaired);
  }
}

std::string frameLabel(const char* face, std::size_t index) {
  return fmt::format("{} frame {}", face, index + 1);
}

// The JPEG decoded, after checking its size and header against the limits; nullopt with the
// reason otherwise.
std::optional<cv::Mat> decodeWithinLimits(const std::string& jpeg, const ImageLimits& limits,
                                          std::string* why) {
  if (jpeg.size() > limits.max_jpeg_bytes) {
    *why = fmt::format("{:.1f} MiB exceeds the {:.1f} MiB limit", jpeg.size() / 1048576.0,
                       limits.max_jpeg_bytes / 1048576.0);
    return std::nullopt;
  }
  std::string probe_why;
  const auto info = probeJpeg(jpeg, &probe_why);
  if (!info) {
    *why = probe_why;
    return std::nullopt;
  }
  if (info->width_px > limits.max_width_px || info->height_px > limits.max_height_px) {
    *why = fmt::format("{}x{} px exceeds {}x{}", info->width_px, info->height_px,
                       limits.max_width_px, limits.max_height_px);
    return std::nullopt;
  }
  if (!endsWithEndOfImage(jpeg)) {
    *why = "the JPEG is cut off (no end-of-image marker)";
    return std::nullopt;
  }
  cv::Mat image;
  try {
    const cv::Mat raw(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data()));
    image = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
    image.release();
  }
  if (image.empty()) {
    *why = "the JPEG could not be decoded";
    return std::nullopt;
  }
  return image;
}

}  // namespace

bool laterLookCounts(const std::string& number, const std::set<std::string>& seen_before,
                     bool confirms_only) {
  if (confirms_only && seen_before.empty()) {
    return false;
  }
  return std::all_of(seen_before.begin(), seen_before.end(),
                     [&](const std::string& n) { return n == number; });
}

const char* toString(ReadOutcome outcome) {
  switch (outcome) {
    case ReadOutcome::kRead:
      return "read";
    case ReadOutcome::kUnreadable:
      return "unreadable";
    case ReadOutcome::kAmbiguous:
      return "ambiguous";
    case ReadOutcome::kBadImage:
      return "bad image";
  }
  return "?";
}

class Recognizer::Impl {
 public:
  explicit Impl(RecognizerOptions options)
      : options_(std::move(options)),
        reader_(LineReaderOptions{options_.tessdata_dir, configPath(options_.models_dir)}),
        formats_(loadCardFormats(options_.models_dir)),
        groupings_(printedGroupings(formats_)),
        classifier_(loadClassifier(options_.models_dir)),
        later_looks_(laterLooks(classifier_, options_.models_dir)),
        log_(wire::componentLogger("cloud.recognition")) {}

  // A card's frames are read cheapest first, each stage only on the frames the earlier ones left
  // unsettled:
  //   1. the digit classifier, on every frame (a few milliseconds a frame): both ways up, the
  //      grey levels of every frame before the relief of any, and the relief before the height
  //      (those two not on the side without the number, once the other side read it); the
  //      three again with the line cut by pitch (segmentLineByPitch); then each line's
  //      readings of the six fused (settledByFusion); then, on frames that gave no number at
  //      all, the six and fusion again with the lines locateMoreLines finds added, then the
  //      six and fusion on the card's colourfulness (chromaCard); then mirrored, grey levels and
  //      relief, while no frame has read a number;
  //   2. Tesseract (stages 2 and 3 of the frame), on the frames still unsettled: both ways up,
  //      then mirrored while no frame has read a number, then the classifier's doubtful glyphs
  //      filled from its readings. Not on the side without the number once the other side read
  //      it, unless the classifier saw a number there too (it could conflict): that side used
  //      to be most of the cost of a card, every line of it read both ways up, in vain;
  //   3. the line-by-line agreement (agreedOnLine, many Tesseract reads), only when no frame of
  //      either face read a number.
  // The frames of the face the number was read on are all read as far as they need: the
  // confidence counts how many of them agree.
  // A card the first look left unreadable (not ambiguous) is looked at again, every stage, with
  // other classifiers in turn (laterLooks): the same network steadied
  // (DigitClassifier::steadied), which reads more of the hardest embossing, then the second
  // network (digitSecondOpinionPath), trained on twice the glyphs, which only confirms: its number
  // counts only if a look before it saw that number too (on its own it read a benchmark card
  // wrong, seed 7's card-0013, where the looks before saw nothing). The looks before it read
  // with the first network, so two networks agree; a look that confirmed with the second
  // network's own steadied reading read card-0013 wrong again (tried: no second opinion). Each look
  // repeats the rest (decoding, finding, Tesseract), so such a card takes two to four times as
  // long; the first look's verdicts stand for every card it reads, and the median card never gets
  // another look. A later look's number counts only if every number the looks before it saw
  // anywhere (read, doubted, fused, or Tesseract's) is that one: a card whose first look saw two
  // numbers stays ambiguous, and one whose looks doubted another number stays unreadable. A reading
  // that sees one number does not undo the evidence of another. On the benchmark sets no later look
  // gave a wrong number (README.md, "Recognition figures").
  CardReading read(const CardImages& images) {
    std::set<std::string> seen;
    CardReading first = lookAt(images, classifier_ ? &*classifier_ : nullptr, &seen);
    if (first.outcome != ReadOutcome::kUnreadable) {
      return first;
    }
    for (const LaterLook& look : later_looks_) {
      std::set<std::string> seen_again;
      CardReading again = lookAt(images, &look.classifier, &seen_again);
      if (again.outcome == ReadOutcome::kRead &&
          laterLookCounts(again.number, seen, look.confirms_only)) {
        again.detail = fmt::format("looked at again, {}: {}", look.what, again.detail);
        return again;
      }
      if (again.outcome == ReadOutcome::kAmbiguous) {
        // Its frames read different numbers, not all of which reach seen_again (a frame that
        // conflicts keeps none): no look after it may count.
        break;
      }
      seen.insert(seen_again.begin(), seen_again.end());
    }
    return first;
  }

 private:
  // One look at a card: every stage of read(), the glyphs read by `glyph_reader` (none without
  // a models folder). Every number a frame read, doubted, fused or had from Tesseract goes to
  // *seen.
  CardReading lookAt(const CardImages& images, const DigitClassifier* glyph_reader,
                     std::set<std::string>* seen) {
    glyph_reader_ = glyph_reader;
    std::vector<FrameWork> work;
    std::vector<std::string> bad;
    const auto decodeFace = [&](const std::vector<std::string>& jpegs, const char* face) {
      for (std::size_t i = 0; i < jpegs.size(); ++i) {
        const std::string label = frameLabel(face, i);
        std::string why;
        auto image = decodeWithinLimits(jpegs[i], options_.limits, &why);
        if (!image) {
          bad.push_back(label + ": " + why);
          continue;
        }
        FrameWork& w = work.emplace_back();
        w.image = std::move(*image);
        w.result.face = face;
        w.result.label = label;
      }
    };
    decodeFace(images.front_jpegs, "front");
    decodeFace(images.back_jpegs, "back");

    const auto anyNumber = [&] {
      return std::any_of(work.begin(), work.end(),
                         [](const FrameWork& w) { return w.result.number.has_value(); });
    };
    // The frame's face read no number but another face did: the frame shows the side without it.
    const auto otherFaceRead = [&](const FrameWork& frame) {
      bool own = false;
      bool other = false;
      for (const FrameWork& w : work) {
        if (w.result.number) {
          (w.result.face == frame.result.face ? own : other) = true;
        }
      }
      return other && !own;
    };
    // A frame OpenCV chokes on is unreadable, not a reason to fail the whole card.
    const auto safely = [&](FrameWork& w, const auto& stage) {
      try {
        stage(w);
      } catch (const cv::Exception& e) {
        log_->warn("{}: image processing failed: {}", w.result.label, e.what());
        FrameResult failed;
        failed.face = w.result.face;
        failed.label = w.result.label;
        failed.note = "image processing failed";
        w.result = std::move(failed);
        w.settled = true;
      }
    };
    for (FrameWork& w : work) {
      safely(w, [&](FrameWork& f) { viewFrame(f); });
    }
    // The relief and its height are not read on the side without the number once the other
    // side read it. (The height, tried after the others, read 6 more cards of the hard set
    // and none wrong; when it came before the repaired readings were capped, it read one wrong.)
    // Mirrored, the height is not tried.
    // Then all three again, each line cut by the pitch of the printed groupings rather than by
    // its pieces of ink (segmentLineByPitch: embossing, whose shading breaks digits apart and runs
    // them together, rarely cuts into one piece a digit).
    for (const GlyphPass& pass : kGlyphPasses) {
      for (FrameWork& w : work) {
        if (pass.prep == LinePrep::kGray || !otherFaceRead(w)) {
          safely(w, [&](FrameWork& f) { readByGlyphs(f, {-2, -1}, pass.prep, pass.by_pitch); });
        }
      }
    }
    // Then each line's readings in the three preparations taken together: they err on
    // different digits of the same glyphs (one mistakes a shadow, another a highlight), so the
    // readings that cut the line alike are fused and decoded once more. Only a sure number that
    // no other fused number contradicts counts, and it must be any number the classifier
    // doubted.
    for (FrameWork& w : work) {
      if (!otherFaceRead(w)) {
        safely(w, [&](FrameWork& f) { readByFusion(f, {-2, -1}); });
      }
    }
    // A frame that gave no number at all, not even a doubted or a fused one (and is not the face
    // without the number once the other face read it), read again by the six passes and fusion,
    // both ways up.
    const auto withoutAnyNumber = [&](const FrameWork& w) {
      return !w.settled && !w.glyph_number && !w.fused_number && !otherFaceRead(w);
    };
    const auto readAgain = [&](FrameWork& w, Shown shown) {
      for (const GlyphPass& pass : kGlyphPasses) {
        safely(w, [&](FrameWork& f) {
          readByGlyphs(f, {-2, -1}, pass.prep, pass.by_pitch, shown);
        });
      }
      safely(w, [&](FrameWork& f) { readByFusion(f, {-2, -1}, shown); });
    };
    // Then such frames once more, with the lines locateMoreLines finds added to both ways up
    // (stripes or a guilloche behind the print hid the number's row, or drew the emboss band's
    // line off faint relief). An added line comes after the others: it never stands in for a
    // line that gave a number. The readings already made are kept (glyphsOf). The later stages
    // read the added lines too.
    for (FrameWork& w : work) {
      if (!withoutAnyNumber(w)) {
        continue;
      }
      bool more = false;
      safely(w, [&](FrameWork& f) { more = addMoreLines(f, {-2, -1}); });
      if (more) {
        readAgain(w, Shown::kAsIs);
      }
    }
    // Then the frames still without any number once more, seen by their colourfulness
    // (chromaCard) with the same lines: gold tipping on a white card behind stripes of its own
    // lightness, or silver on a coloured card, hardly shows in grey levels.
    for (FrameWork& w : work) {
      if (withoutAnyNumber(w)) {
        readAgain(w, Shown::kChroma);
      }
    }
    // Mirrored readings are a last resort (a mirrored line, seen through the wrong side, passes
    // for a number far more easily than a card read the right way): only when no frame read a
    // number, and only on frames that gave the classifier no number at all.
    for (const LinePrep prep : {LinePrep::kGray, LinePrep::kRelief}) {
      if (anyNumber()) {
        break;
      }
      for (FrameWork& w : work) {
        safely(w, [&](FrameWork& f) { readByGlyphs(f, {1, 0}, prep, false); });
      }
    }
    // Tesseract likewise: both ways up on every frame it reads before any frame mirrored.
    std::vector<FrameWork*> by_tesseract;
    for (FrameWork& w : work) {
      if (w.settled) {
        continue;
      }
      if (!w.glyph_number && otherFaceRead(w)) {
        w.result.note = "not read further: a frame of the other face read a number";
        continue;
      }
      by_tesseract.push_back(&w);
      safely(w, [&](FrameWork& f) { readByTesseract(f, {-2, -1}); });
    }
    for (FrameWork* w : by_tesseract) {
      if (!w->settled && !anyNumber()) {
        safely(*w, [&](FrameWork& f) { readByTesseract(f, {1, 0}); });
      }
    }
    for (FrameWork* w : by_tesseract) {
      if (!w->settled) {
        safely(*w, [&](FrameWork& f) { readByFilling(f); });
      }
    }
    if (!anyNumber()) {
      for (FrameWork& w : work) {
        if (!w.settled) {
          safely(w, [&](FrameWork& f) { readByAgreement(f, {-2, -1}); });
          if (!w.settled && !anyNumber()) {
            safely(w, [&](FrameWork& f) { readByAgreement(f, {1, 0}); });
          }
        }
      }
    }

    std::vector<FrameResult> frames;
    for (FrameWork& w : work) {
      if (w.result.number) {
        seen->insert(*w.result.number);
      }
      if (w.glyph_number) {
        seen->insert(*w.glyph_number);
      }
      seen->insert(w.fused_numbers.begin(), w.fused_numbers.end());
      seen->insert(w.numbers.begin(), w.numbers.end());
      frames.push_back(std::move(w.result));
    }
    CardReading reading = combine(frames, bad);
    reading.detail = redactDigitRuns(reading.detail);
    log_->debug("{} ({:.2f}): {}", toString(reading.outcome), reading.confidence, reading.detail);
    return reading;
  }

  static std::string configPath(const std::string& models_dir) {
    if (models_dir.empty()) {
      return "";
    }
    const auto path = std::filesystem::path(models_dir) / kDigitsConfig;
    if (!std::filesystem::is_regular_file(path)) {
      throw std::runtime_error("recognition config missing: " + path.string());
    }
    return path.string();
  }

  // The digit classifier (digitModelPath: the convolutional network, else the MLP).
  static std::optional<DigitClassifier> loadClassifier(const std::string& models_dir) {
    if (models_dir.empty()) {
      return std::nullopt;
    }
    return DigitClassifier::load(digitModelPath(models_dir));
  }

  // A look after the first (read()): the classifier it reads glyphs with, and what it is.
  struct LaterLook {
    DigitClassifier classifier;
    const char* what;
    // Its number counts only if a look before it saw that number too.
    bool confirms_only = false;
  };

  // The looks after the first, in order: the classifier steadied, then the second network when
  // the models folder has one. None without a classifier.
  static std::vector<LaterLook> laterLooks(const std::optional<DigitClassifier>& classifier,
                                           const std::string& models_dir) {
    std::vector<LaterLook> looks;
    if (!classifier) {
      return looks;
    }
    looks.push_back({classifier->steadied(), "the classifier steadied"});
    const std::string second = digitSecondOpinionPath(models_dir);
    if (std::filesystem::is_regular_file(second)) {
      looks.push_back({DigitClassifier::load(second), "the second network", true});
    }
    return looks;
  }

  // Tesseract's line through the confidence gates (decodeCardNumber's thresholds), then the
  // format-aware decoder.
  DecodedReading decodeLine(const OcrLine& ocr, bool relax_word_gate = false) const {
    const DecodeThresholds gates;
    DecodedReading out;
    if (ocr.reading.positions.empty()) {
      out.why = "no digits in the line";
    } else if (ocr.mean_confidence < gates.min_mean_confidence) {
      out.why = fmt::format("mean confidence {:.0f} below {:.0f}", ocr.mean_confidence,
                            gates.min_mean_confidence);
    } else if (ocr.min_symbol_confidence < gates.min_symbol_confidence) {
      out.why = fmt::format("a digit read with confidence {:.0f}, below {:.0f}",
                            ocr.min_symbol_confidence, gates.min_symbol_confidence);
    } else if (ocr.min_word_confidence < gates.min_word_confidence && !relax_word_gate) {
      out.why = fmt::format("a digit group read with confidence {:.0f}, below {:.0f}",
                            ocr.min_word_confidence, gates.min_word_confidence);
    } else {
      out = decodeReading(ocr.reading, formats_);
    }
    return out;
  }

  // Tesseract's readings of one line, by preparation (each line is read at most once each way),
  // and of a whole frame: by orientation (the flip codes of orientation()), then line.
  using LineReads = std::map<LinePrep, OcrLine>;
  using TesseractReads = std::map<int, std::vector<LineReads>>;

  const OcrLine& readOnce(const cv::Mat& card, const cv::Rect& line, LinePrep prep,
                          LineReads* reads) {
    auto it = reads->find(prep);
    if (it == reads->end()) {
      it = reads->emplace(prep, reader_.readLine(card, line, prep)).first;
    }
    return it->second;
  }

  // One line read and decoded: first thresholded (the original path), then, when that gives no
  // checked number, from its grey levels, which keep thin strokes on busy backgrounds. Each
  // reading must pass all the gates on its own; or else both must give the same checked number
  // with every gate passed but the word one (the LSTM's word confidences run low on good card
  // lines; the gate is there to catch an inserted digit, which two different preparations of
  // the line rarely insert alike). The first reading's reason is kept for the operator.
  // The readings go to *reads, for the later stages (filledFromTesseract, agreedOnLine).
  DecodedReading readAndDecode(const cv::Mat& card, const cv::Rect& line, LineReads* reads) {
    const OcrLine& binary = readOnce(card, line, LinePrep::kBinary, reads);
    DecodedReading first = decodeLine(binary);
    if (first.number) {
      return first;
    }
    const OcrLine& gray = readOnce(card, line, LinePrep::kGray, reads);
    DecodedReading second = decodeLine(gray);
    if (second.number) {
      return second;
    }
    DecodedReading relaxed_binary = decodeLine(binary, true);
    const DecodedReading relaxed_gray = decodeLine(gray, true);
    if (relaxed_binary.number && relaxed_gray.number &&
        *relaxed_binary.number == *relaxed_gray.number) {
      relaxed_binary.confidence = std::min(relaxed_binary.confidence, relaxed_gray.confidence);
      return relaxed_binary;
    }
    return first;
  }

  // The classifier's reading of a line decoded; when it fits no format, decoded again without a
  // group of one or two glyphs at either end (a mark beside the number: a logo's edge, a
  // hologram, the date's first digit), which the groups check would otherwise refuse.
  DecodedReading decodeGlyphs(const LineReading& reading) const {
    DecodedReading decoded = decodeReading(reading, formats_, kGlyphRepairs);
    const auto& g = reading.groups;
    if (decoded.number || g.size() < 3) {
      return decoded;
    }
    const std::size_t head = g.front() <= kMaxStrayGroup ? g.front() : 0;
    const std::size_t tail = g.back() <= kMaxStrayGroup ? g.back() : 0;
    for (const auto& [drop_head, drop_tail] :
         {std::pair{head, std::size_t{0}}, std::pair{std::size_t{0}, tail},
          std::pair{head, tail}}) {
      if (drop_head == 0 && drop_tail == 0) {
        continue;
      }
      LineReading trimmed;
      trimmed.positions.assign(reading.positions.begin() + static_cast<std::ptrdiff_t>(drop_head),
                               reading.positions.end() - static_cast<std::ptrdiff_t>(drop_tail));
      trimmed.groups.assign(g.begin() + (drop_head > 0 ? 1 : 0), g.end() - (drop_tail > 0 ? 1 : 0));
      DecodedReading again = decodeReading(trimmed, formats_, kGlyphRepairs);
      if (again.number) {
        // The dropped glyphs may have been the number's own (a 19-digit number whose last
        // group was half lost can leave 16 digits that pass the check): such a reading never
        // decides alone, Tesseract must read the same number.
        again.confidence = std::min(again.confidence, kTrimmedConfidenceCap);
        return again;
      }
    }
    return decoded;
  }

  // The classifier's reading of a line in one preparation and cut, and whether the cut left no
  // ink of the line out (readLineGlyphs).
  struct GlyphRead {
    LineReading reading;
    bool complete = true;
  };
  // An orientation's glyph readings by line (its index), preparation and cut (true: by pitch).
  // The classifier's stages, fusion and the last resorts read the same lines again.
  using GlyphReads = std::map<std::tuple<std::size_t, LinePrep, bool>, GlyphRead>;

  // A card (or line crop) as one orientation shows it, with the lines that may hold the number,
  // and the orientation's glyph readings.
  struct View {
    const cv::Mat* image;
    std::vector<cv::Rect> lines;
    GlyphReads* glyphs;
  };

  // The classifier's reading of line l of a view in one preparation, cut by its pieces of ink or
  // by the pitch of the printed groupings; read once per orientation.
  const GlyphRead& glyphsOf(const View& view, std::size_t l, LinePrep prep, bool by_pitch) const {
    const auto key = std::make_tuple(l, prep, by_pitch);
    auto it = view.glyphs->find(key);
    if (it == view.glyphs->end()) {
      GlyphRead g;
      g.reading = readLineGlyphs(*glyph_reader_, *view.image, view.lines[l], &g.complete, prep,
                                 by_pitch ? &groupings_ : nullptr);
      it = view.glyphs->emplace(key, std::move(g)).first;
    }
    return it->second;
  }

  // The digit classifier over every view (each view's first line that decodes counts). True
  // when that settles the frame: one number read with high confidence (set in *frame), or
  // different numbers in different views (*frame marked self-conflicting). Otherwise a number
  // read with lower confidence goes to *unsure, for Tesseract's reading to confirm.
  bool settledByGlyphs(const std::vector<View>& views, LinePrep prep, bool by_pitch,
                       FrameResult* frame, std::optional<std::string>* unsure) const {
    std::set<std::string> numbers;
    double confidence = 0.0;
    for (const View& view : views) {
      for (std::size_t l = 0; l < view.lines.size(); ++l) {
        const auto& [reading, complete] = glyphsOf(view, l, prep, by_pitch);
        DecodedReading decoded =
            by_pitch ? decodeReading(reading, formats_, kPitchCutRepairs) : decodeGlyphs(reading);
        if (by_pitch && !complete) {
          // Glyphs cut by pitch with ink of the row left out: digits may be missing, and part
          // of a number can pass the check as a shorter one. Such a line that decodes is the
          // view's number line cut short: the view gives no number (a lower line may not
          // stand in for it).
          if (decoded.number) {
            break;
          }
          continue;
        }
        if (!complete || decoded.repaired > 0 || decoded.checked_share < kMinCheckedShare) {
          // Digits may be missing and the rest still pass the check, or a glyph read wrong was
          // repaired into another wrong digit that happens to pass it (seen on a hard set with
          // another seed: 3 read as 5, a second digit repaired), or another checked number is
          // as likely: Tesseract must agree.
          decoded.confidence = std::min(decoded.confidence, kTrimmedConfidenceCap);
        }
        if (decoded.number) {
          numbers.insert(*decoded.number);
          confidence = std::max(confidence, decoded.confidence);
          break;
        }
      }
    }
    if (numbers.size() > 1) {
      frame->self_conflicting = true;
      frame->note = "the card read as different numbers in different orientations";
      return true;
    }
    if (numbers.size() == 1) {
      if (confidence >= kMinGlyphConfidence) {
        frame->number = *numbers.begin();
        frame->confidence = confidence;
        return true;
      }
      *unsure = *numbers.begin();
    }
    return false;
  }

  // The readings of one line in different preparations that cut it into the same groups
  // (complete: by pieces of ink, or by pitch with nothing left out), fused position by position
  // (fuseReadings) and decoded unrepaired. One reading per preparation and grouping, the cut by
  // pieces first: the two cuts of one preparation are nearly one reading, and fusing assumes
  // independent ones. A cut by pitch that leaves ink out joins them too when another
  // preparation's cut by pitch, which looked beyond the same line's ends and left nothing out,
  // chose the same grouping: what one preparation took for a digit beyond the ends, the other
  // saw as none (shading or a pattern), and cut alike their cells hold the same digits (the
  // fused number must still pass the check unrepaired). A cut by pieces cannot vouch so: it
  // looks no further than the line's box (on a row holding a number's last 13 digits of 16,
  // every cut by pitch left ink out, the relief cut by pieces chose their 4-4-5, and fused they
  // passed the check as a 13-digit number). Each view's first line that gives a
  // number counts, and, as in settledByGlyphs, a cut by pitch that leaves ink out and still
  // decodes, none vouching for it, ends the view (vouched for, it ends the view when the fusion
  // gives no number: a lower line may not stand in for it). True when that settles the frame:
  // every fused number the same, at least once read surely (kMinGlyphConfidence,
  // kMinCheckedShare). Two different fused numbers, sure or not, settle nothing: the later stages
  // read the frame. *any_number: whether any fused number came out; each goes to *seen too.
  bool settledByFusion(const std::vector<View>& views, FrameResult* frame, bool* any_number,
                       std::set<std::string>* seen) const {
    std::set<std::string> numbers;
    double sure_confidence = 0.0;  // 0: no fused number was sure
    for (const View& view : views) {
      for (std::size_t l = 0; l < view.lines.size(); ++l) {
        std::map<std::vector<std::size_t>, std::map<LinePrep, LineReading>> by_groups;
        std::vector<std::pair<LinePrep, const LineReading*>> left_out;  // by pitch, ink left out
        std::set<std::vector<std::size_t>> whole_by_pitch;  // groups of pitch cuts leaving none out
        for (const GlyphPass& pass : kGlyphPasses) {
          const auto& [reading, complete] = glyphsOf(view, l, pass.prep, pass.by_pitch);
          if (!complete) {
            if (pass.by_pitch) {
              left_out.emplace_back(pass.prep, &reading);
            }
          } else if (reading.groups.size() > 1) {
            by_groups[reading.groups].emplace(pass.prep, reading);
            if (pass.by_pitch) {
              whole_by_pitch.insert(reading.groups);
            }
          }
        }
        bool cut_short = false;       // a cut left ink out and decodes, none vouching for it
        bool vouched_number = false;  // a vouched-for one decodes alone
        for (const auto& [prep, reading] : left_out) {
          const bool decodes =
              decodeReading(*reading, formats_, kPitchCutRepairs).number.has_value();
          if (whole_by_pitch.count(reading->groups) != 0) {
            by_groups[reading->groups].emplace(prep, *reading);
            vouched_number = vouched_number || decodes;
          } else {
            cut_short = cut_short || decodes;
          }
        }
        if (cut_short) {
          break;
        }
        std::optional<std::string> number;
        for (const auto& [groups, by_prep] : by_groups) {
          if (by_prep.size() < 2) {
            continue;
          }
          std::vector<LineReading> readings;
          for (const auto& [prep, reading] : by_prep) {
            readings.push_back(reading);
          }
          const DecodedReading decoded =
              decodeReading(fuseReadings(readings), formats_, kFusedRepairs);
          if (!decoded.number) {
            continue;
          }
          numbers.insert(*decoded.number);
          number = decoded.number;
          if (decoded.confidence >= kMinGlyphConfidence &&
              decoded.checked_share >= kMinCheckedShare) {
            sure_confidence = std::max(sure_confidence, decoded.confidence);
          }
        }
        if (number || vouched_number) {
          break;
        }
      }
    }
    *any_number = !numbers.empty();
    seen->insert(numbers.begin(), numbers.end());
    if (numbers.size() != 1 || sure_confidence == 0.0) {
      return false;
    }
    frame->number = *numbers.begin();
    frame->confidence = sure_confidence;
    return true;
  }

  // A frame neither reader read with confidence, one reader's doubt settled by the other: the
  // classifier's reading of a line (grey, then relief) whose only flaws are one or two glyphs
  // it took for no digit, filled from Tesseract's digits of the same line (fillErasures,
  // card_number_decoder.hpp: both must read every other digit alike), then checked as a number.
  // The two readers see the line differently (a general LSTM over the whole line, a glyph
  // classifier over cut glyphs), so agreeing on a dozen digits and more, and the check digit
  // passing, is strong evidence. Every line of `view` is tried; two different numbers give none.
  std::optional<std::string> filledFromTesseract(
      const View& view, const std::vector<LineReads>& tesseract_by_line) const {
    if (!classifier_) {
      return std::nullopt;
    }
    std::set<std::string> numbers;
    for (std::size_t l = 0; l < view.lines.size() && l < tesseract_by_line.size(); ++l) {
      for (const LinePrep prep : {LinePrep::kGray, LinePrep::kRelief}) {
        const LineReading& glyphs = glyphsOf(view, l, prep, false).reading;
        const std::string best = topChoices(glyphs);
        for (const auto& [prep_read, ocr] : tesseract_by_line[l]) {
          const auto filled = fillErasures(best, topChoices(ocr.reading));
          if (filled && matchFormat(formats_, *filled, glyphs.groups) != nullptr) {
            numbers.insert(*filled);
          }
        }
      }
    }
    if (numbers.size() != 1) {
      return std::nullopt;
    }
    return *numbers.begin();
  }

  // A line no reader read with confidence, read by Tesseract in every preparation (the height
  // and relief of inkless embossing too) and weighed again. Its number is the one that
  //   - two of them read alike, unrepaired, every gate passed but the word one;
  //   - or the classifier's reading (grey, relief or height) and one of Tesseract's decode to,
  //     without the gates, one of the two unrepaired. Two readers that see the line differently
  //     (cut glyphs against the whole line) and fail differently rarely decode to the same
  //     checked number unless it is the printed one; the gates, which each reader alone needs,
  //     would throw away inkless embossing, whose readings are never confident. A line the
  //     classifier reads as two numbers gives it no say;
  //   - or one of Tesseract's reads unrepaired, every gate passed but the word one, that one of
  //     the classifier's readings matches in every digit but one it doubted, and that no
  //     reading of the classifier decodes to another number.
  // When the classifier's readings decode the line to different numbers, it has no say.
  // The agreement must not lean on repairs on both sides: a glyph that looks like another digit
  // fools both readers alike, and the same repair could then make the same wrong number pass
  // the check. A single reading is not enough, however confident: on the hard set a relief
  // reading passed every gate with two digits wrong, and the check digit by chance.
  // When these give different numbers, the line gives none.
  std::optional<std::string> agreedOnLine(const View& view, std::size_t l, LineReads* reads) {
    const cv::Mat& card = *view.image;
    const cv::Rect& line = view.lines[l];
    constexpr LinePrep kPreps[] = {LinePrep::kBinary, LinePrep::kGray, LinePrep::kRelief,
                                   LinePrep::kHeight};
    std::set<std::string> numbers;
    std::map<std::string, int> relaxed;  // number -> preparations reading it unrepaired
    std::map<std::string, int> ungated;  // number -> fewest repairs of a reading giving it
    for (const LinePrep prep : kPreps) {
      const OcrLine& ocr = readOnce(card, line, prep, reads);
      if (const auto loose = decodeLine(ocr, true); loose.number && loose.repaired == 0) {
        ++relaxed[*loose.number];
      }
      keepFewestRepairs(decodeReading(ocr.reading, formats_), &ungated);
    }
    for (const auto& [number, preps] : relaxed) {
      if (preps >= 2) {
        numbers.insert(number);
      }
    }
    if (classifier_) {
      std::map<std::string, int> by_glyphs;  // number -> fewest repairs
      std::vector<LineReading> glyph_readings;
      for (const LinePrep prep : {LinePrep::kGray, LinePrep::kRelief, LinePrep::kHeight}) {
        glyph_readings.push_back(glyphsOf(view, l, prep, false).reading);
        keepFewestRepairs(decodeGlyphs(glyph_readings.back()), &by_glyphs);
      }
      // A Tesseract reading that passes the check unrepaired, and the gates but the word one,
      // that one of the classifier's readings (grey, relief, height) has digit for digit but one,
      // where it doubted (readAlikeButOneDoubt). A wrong reading passes the check only with two
      // digits wrong or more: the classifier would have had to make one of those very mistakes and
      // have the other wrong digit in mind too. No reading of the classifier may decode the line to
      // another number.
      for (const auto& [number, preps] : relaxed) {
        const bool contradicted =
            std::any_of(by_glyphs.begin(), by_glyphs.end(),
                        [&](const auto& decoded) { return decoded.first != number; });
        if (!contradicted &&
            std::any_of(glyph_readings.begin(), glyph_readings.end(),
                        [&](const LineReading& g) { return readAlikeButOneDoubt(g, number); })) {
          numbers.insert(number);
        }
      }
      if (by_glyphs.size() == 1) {
        const auto& [number, glyph_repairs] = *by_glyphs.begin();
        const auto tesseract = ungated.find(number);
        if (tesseract != ungated.end() && std::min(glyph_repairs, tesseract->second) == 0) {
          numbers.insert(number);
        }
      }
    }
    if (numbers.size() != 1) {
      return std::nullopt;
    }
    return *numbers.begin();
  }

  // One of the classifier's passes over a frame: a preparation, the line cut by its pieces of
  // ink or by pitch.
  struct GlyphPass {
    LinePrep prep;
    bool by_pitch;
  };
  // The passes in their order: grey, relief, height, cut by pieces, then the three by pitch.
  static constexpr std::array<GlyphPass, 6> kGlyphPasses = {{{LinePrep::kGray, false},
                                                             {LinePrep::kRelief, false},
                                                             {LinePrep::kHeight, false},
                                                             {LinePrep::kGray, true},
                                                             {LinePrep::kRelief, true},
                                                             {LinePrep::kHeight, true}}};

  // The card as one orientation shows it, with the lines that may hold the number.
  struct Orientation {
    cv::Mat card;
    std::vector<cv::Rect> lines;
    GlyphReads glyphs;  // made as the stages read them
    // The card by its colourfulness (chromaCard), read on the same lines; made on first use.
    cv::Mat chroma_card;
    GlyphReads chroma_glyphs;
  };

  // How the classifier's stages see a frame's card: as photographed (grey levels, relief and
  // height all come from its lightness), or by its colourfulness (chromaCard).
  enum class Shown { kAsIs, kChroma };

  // One photo's reading, kept from one stage of read() to the next.
  struct FrameWork {
    cv::Mat image;                            // as decoded, until viewFrame
    FrameView view;                           // set by viewFrame
    std::map<int, Orientation> oriented;      // by flip code (orientation()), made on first use
    std::optional<std::string> glyph_number;  // a checked number the classifier was unsure of
    bool fused_number = false;                // fusion gave a number, sure or not
    std::set<std::string> fused_numbers;      // every number fusion gave, in any of its runs
    TesseractReads tesseract;                 // Tesseract's reads of its lines
    std::set<std::string> numbers;            // read by Tesseract's stages (several: a conflict)
    double confidence = 0.0;                  // of those numbers
    std::vector<std::string> why_not;         // per orientation Tesseract read, its best reason
    FrameResult result;
    bool settled = false;  // a number, a conflict, or nothing more to try: no later stage
  };

  // The card of a frame as it lies and turned: -2 as is, -1 rotated 180 degrees, 1 mirrored
  // left-right, 0 mirrored top-bottom (embossed digits seen from the back of the card show
  // reversed). Each orientation's line candidates are found once and shared by all stages
  // (addMoreLines may append more, after the others).
  static Orientation& orientation(FrameWork& w, int flip) {
    auto it = w.oriented.find(flip);
    if (it == w.oriented.end()) {
      // A fresh Mat each time: rotating into a header that shares the card would turn it.
      Orientation o;
      if (flip == -2) {
        o.card = w.view.image;
      } else if (flip == -1) {
        cv::rotate(w.view.image, o.card, cv::ROTATE_180);
      } else {
        cv::flip(w.view.image, o.card, flip);
      }
      o.lines = locateNumberLine(o.card);
      it = w.oriented.emplace(flip, std::move(o)).first;
    }
    return it->second;
  }

  // Tesseract's reads of the lines of one orientation of a frame, one slot per line.
  static std::vector<LineReads>& tesseractReads(FrameWork& w, int flip) {
    std::vector<LineReads>& reads = w.tesseract[flip];
    reads.resize(std::max(reads.size(), orientation(w, flip).lines.size()));
    return reads;
  }

  // Before any reader: find and straighten the card. A line crop is read whole here, and a
  // frame without a card is settled.
  void viewFrame(FrameWork& w) {
    w.view = viewOfFrame(w.image);
    w.image.release();  // the stages read the view (a line crop's view shares the pixels)
    if (w.view.kind == FrameView::Kind::kLineCrop) {
      FrameResult crop = readLineCrop(w.view.image, &w.glyph_number, &w.numbers);
      crop.face = w.result.face;
      crop.label = w.result.label;
      w.result = std::move(crop);
      w.settled = true;
    } else if (w.view.kind == FrameView::Kind::kNothing) {
      w.result.note = "no card found";
      w.settled = true;
    }
  }

  // Stage 1 of a frame: the digit classifier, in two orientations read together (both ways up,
  // or both mirrorings), which is what shows a line that passes for a number the wrong way
  // round, in one preparation: the line's grey levels, its relief (inkless embossing) as
  // outlines, or the height recovered from the relief's shading (inkless embossing as solid
  // print); the line cut by its pieces of ink or by pitch. A number read with low confidence is
  // kept in w.glyph_number for Tesseract to confirm. The cut by pitch still reads a frame that
  // the cut by pieces left such a number: reading the same number surely settles it, any other
  // number makes the frame self-conflicting. `shown`: the card as photographed, or its
  // colourfulness.
  void readByGlyphs(FrameWork& w, std::array<int, 2> flips, LinePrep prep, bool by_pitch,
                    Shown shown = Shown::kAsIs) {
    if (!classifier_ || w.settled || (w.glyph_number && !by_pitch)) {
      return;
    }
    FrameResult result = w.result;
    std::optional<std::string> unsure;
    const bool settled =
        settledByGlyphs(viewsOf(w, flips, shown), prep, by_pitch, &result, &unsure);
    applyGlyphVerdict(w, settled, std::move(result), unsure);
  }

  // Stage 1, last: the classifier's readings of each line fused (settledByFusion), on a frame
  // the classifier left unsettled. A number it doubted must be the fused one. `shown` as in
  // readByGlyphs.
  void readByFusion(FrameWork& w, std::array<int, 2> flips, Shown shown = Shown::kAsIs) {
    if (!classifier_ || w.settled) {
      return;
    }
    FrameResult result = w.result;
    const bool settled =
        settledByFusion(viewsOf(w, flips, shown), &result, &w.fused_number, &w.fused_numbers);
    applyGlyphVerdict(w, settled, std::move(result), std::nullopt);
  }

  // The lines locateMoreLines finds added to the frame's orientations; true when any was.
  static bool addMoreLines(FrameWork& w, std::array<int, 2> flips) {
    bool added = false;
    for (const int flip : flips) {
      Orientation& o = orientation(w, flip);
      const std::vector<cv::Rect> more = locateMoreLines(o.card, o.lines);
      o.lines.insert(o.lines.end(), more.begin(), more.end());
      added = added || !more.empty();
    }
    return added;
  }

  // The frame in two orientations, with their lines, for the classifier's stages.
  static std::vector<View> viewsOf(FrameWork& w, std::array<int, 2> flips, Shown shown) {
    std::vector<View> views;
    for (const int flip : flips) {
      Orientation& o = orientation(w, flip);
      if (shown == Shown::kAsIs) {
        views.push_back({&o.card, o.lines, &o.glyphs});
        continue;
      }
      if (o.chroma_card.empty()) {
        o.chroma_card = chromaCard(o.card);
      }
      views.push_back({&o.chroma_card, o.lines, &o.chroma_glyphs});
    }
    return views;
  }

  // A classifier stage's verdict on a frame (`settled` with `result`, or a number it doubted):
  // a number other than the one an earlier stage doubted makes the frame self-conflicting;
  // else a settled result is the frame's, and a doubted number is kept for Tesseract.
  static void applyGlyphVerdict(FrameWork& w, bool settled, FrameResult result,
                                const std::optional<std::string>& unsure) {
    const std::optional<std::string>& read = settled ? result.number : unsure;
    if (w.glyph_number && read && *read != *w.glyph_number) {
      w.result.self_conflicting = true;
      w.result.note = "the card read as different numbers in different cuts or preparations";
      w.settled = true;
      return;
    }
    if (settled) {
      w.result = std::move(result);
      w.settled = true;
    } else if (unsure) {
      w.glyph_number = unsure;
    }
  }

  // Stage 2 of a frame the classifier did not settle: Tesseract in two orientations (both ways
  // up, or mirrored: then the second only when the first read nothing), each orientation's
  // first line that decodes counting. A number the classifier was unsure of must be the one
  // Tesseract read, if it read one (settle).
  void readByTesseract(FrameWork& w, std::array<int, 2> flips) {
    for (const int flip : flips) {
      if (flip >= 0 && !w.numbers.empty()) {
        break;
      }
      const Orientation& o = orientation(w, flip);
      if (o.lines.empty()) {
        w.why_not.push_back("no number line");
        continue;
      }
      std::string first_why;
      std::vector<LineReads>& reads = tesseractReads(w, flip);
      for (std::size_t l = 0; l < o.lines.size(); ++l) {
        const DecodedReading decoded = readAndDecode(o.card, o.lines[l], &reads[l]);
        if (decoded.number) {
          w.numbers.insert(*decoded.number);
          w.confidence = std::max(w.confidence, decoded.confidence);
          first_why.clear();
          break;
        }
        if (first_why.empty()) {
          first_why = decoded.why;
        }
      }
      if (!first_why.empty()) {
        w.why_not.push_back(first_why);
      }
    }
    settle(w);
  }

  // Stage 3 of a frame neither reader was sure of on its own: the classifier's doubtful glyphs
  // filled from Tesseract's reading, in every orientation Tesseract read (two orientations
  // giving numbers conflict).
  void readByFilling(FrameWork& w) {
    if (!w.numbers.empty() || w.glyph_number || !classifier_) {
      return;
    }
    for (const auto& [flip, by_line] : w.tesseract) {
      Orientation& o = orientation(w, flip);
      if (const auto number = filledFromTesseract(View{&o.card, o.lines, &o.glyphs}, by_line)) {
        w.numbers.insert(*number);
      }
    }
    w.confidence = kFilledConfidence;
    settle(w);
  }

  // Stage 4, the last resort of a frame: both readers agreeing on a line, in any preparation
  // (agreedOnLine), in two orientations as readByTesseract; two orientations giving numbers
  // conflict, and so does a number that differs from the one the classifier was unsure of.
  // Tesseract's reads of stage 2 are reused.
  void readByAgreement(FrameWork& w, std::array<int, 2> flips) {
    for (const int flip : flips) {
      if (flip >= 0 && !w.numbers.empty()) {
        break;
      }
      Orientation& o = orientation(w, flip);
      std::vector<LineReads>& reads = tesseractReads(w, flip);
      const View view{&o.card, o.lines, &o.glyphs};
      for (std::size_t l = 0; l < o.lines.size(); ++l) {
        if (const auto number = agreedOnLine(view, l, &reads[l])) {
          w.numbers.insert(*number);
          break;
        }
      }
    }
    w.confidence = kAgreedConfidence;
    settle(w);
  }

  // The frame's result from the numbers its Tesseract stages read; settled unless it read none.
  static void settle(FrameWork& w) {
    if (w.glyph_number && !w.numbers.empty()) {
      w.numbers.insert(*w.glyph_number);
    }
    FrameResult& frame = w.result;
    if (w.numbers.size() > 1) {
      frame.self_conflicting = true;
      frame.note = "the card read as different numbers in different orientations or readers";
    } else if (w.numbers.size() == 1) {
      frame.number = *w.numbers.begin();
      frame.confidence = w.confidence;
    } else {
      frame.note = fmt::format("{}", fmt::join(w.why_not, " / "));
    }
    w.settled = !w.numbers.empty();
  }

  // A photo of the number line alone, read both ways up. The number the classifier doubted goes
  // to *doubted and every number read to *read_numbers (what the look saw: read()).
  FrameResult readLineCrop(const cv::Mat& image, std::optional<std::string>* doubted,
                           std::set<std::string>* read_numbers) {
    FrameResult frame;
    std::set<std::string> numbers;
    std::vector<std::string> why_not;
    cv::Mat turned;
    cv::rotate(image, turned, cv::ROTATE_180);
    const cv::Rect whole(0, 0, image.cols, image.rows);
    std::optional<std::string> glyph_number;
    GlyphReads as_is;
    GlyphReads upside_down;
    if (classifier_ &&
        settledByGlyphs({{&image, {whole}, &as_is}, {&turned, {whole}, &upside_down}},
                        LinePrep::kGray, false, &frame, &glyph_number)) {
      return frame;
    }
    for (const bool upside_down : {false, true}) {
      const cv::Mat& oriented = upside_down ? turned : image;
      LineReads reads;
      const DecodedReading decoded = readAndDecode(oriented, whole, &reads);
      if (decoded.number) {
        numbers.insert(*decoded.number);
        frame.confidence = std::max(frame.confidence, decoded.confidence);
        break;
      }
      why_not.push_back(decoded.why);
    }
    if (glyph_number && !numbers.empty()) {
      numbers.insert(*glyph_number);
    }
    *doubted = glyph_number;
    read_numbers->insert(numbers.begin(), numbers.end());
    if (numbers.size() > 1) {
      frame.self_conflicting = true;
      frame.note = "line crop: the classifier and Tesseract read different numbers";
    } else if (numbers.size() == 1) {
      frame.number = *numbers.begin();
    } else {
      frame.note = fmt::format("line crop: {}", fmt::join(why_not, " / "));
    }
    return frame;
  }

  static CardReading combine(const std::vector<FrameResult>& frames,
                             const std::vector<std::string>& bad) {
    CardReading reading;
    const std::string bad_note = fmt::format("{}", fmt::join(bad, "; "));
    if (frames.empty()) {
      reading.outcome = ReadOutcome::kBadImage;
      reading.detail = bad.empty() ? "no images" : bad_note;
      return reading;
    }
    std::set<std::string> numbers;
    bool conflict = false;
    for (const auto& f : frames) {
      conflict = conflict || f.self_conflicting;
      if (f.number) {
        numbers.insert(*f.number);
      }
    }
    const auto withBad = [&](std::string text) {
      return bad.empty() ? text : text + "; unusable: " + bad_note;
    };
    for (const auto& f : frames) {
      if (f.number && std::find(reading.number_faces.begin(), reading.number_faces.end(), f.face) ==
                          reading.number_faces.end()) {
        reading.number_faces.push_back(f.face);
      }
    }
    if (conflict || numbers.size() > 1) {
      reading.outcome = ReadOutcome::kAmbiguous;
      std::vector<std::string> parts;
      for (const auto& f : frames) {
        if (f.self_conflicting || f.number) {
          parts.push_back(f.number ? f.label + " read a number ending " +
                                         f.number->substr(f.number->size() - 4)
                                   : f.label + ": " + f.note);
        }
      }
      reading.detail = withBad("frames disagree: " + fmt::format("{}", fmt::join(parts, "; ")));
      return reading;
    }
    if (numbers.empty()) {
      reading.outcome = ReadOutcome::kUnreadable;
      std::vector<std::string> parts;
      for (const auto& f : frames) {
        parts.push_back(f.label + ": " + f.note);
      }
      reading.detail = withBad(fmt::format("{}", fmt::join(parts, "; ")));
      return reading;
    }
    // Confidence: the OCR confidence of the agreeing frames, scaled by the share of frames of
    // the same face(s) that agree (a number seen in one of three front frames is weaker).
    std::set<std::string> faces;
    double sum = 0.0;
    int agreeing = 0;
    for (const auto& f : frames) {
      if (f.number) {
        faces.insert(f.face);
        sum += f.confidence;
        ++agreeing;
      }
    }
    int candidates = 0;
    for (const auto& f : frames) {
      candidates += faces.count(f.face) > 0 ? 1 : 0;
    }
    const double mean_ocr_confidence = sum / agreeing;
    const double agreement = static_cast<double>(agreeing) / candidates;
    reading.outcome = ReadOutcome::kRead;
    reading.number = *numbers.begin();
    reading.confidence = mean_ocr_confidence * agreement;
    reading.detail = withBad(
        fmt::format("read in {} of {} {} frames", agreeing, candidates, fmt::join(faces, "+")));
    return reading;
  }

  RecognizerOptions options_;
  LineReader reader_;
  std::vector<CardFormat> formats_;
  std::vector<std::vector<std::size_t>> groupings_;  // every format's printed groupings
  std::optional<DigitClassifier> classifier_;        // none without a models folder
  std::vector<LaterLook> later_looks_;               // laterLooks()
  // The classifier the current look at a card reads glyphs with (lookAt()).
  const DigitClassifier* glyph_reader_ = nullptr;
  std::shared_ptr<spdlog::logger> log_;
};

Recognizer::Recognizer(RecognizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Recognizer::~Recognizer() = default;

CardReading Recognizer::read(const CardImages& images) { return impl_->read(images); }

}  // namespace lostcard::cloud
