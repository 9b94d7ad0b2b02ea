#pragma once
// The decision at the end of recognition: does one OCR'd line hold a card number we trust?
// Pure logic (no images, no OCR engine), so it carries most of the tests.
//
//   OcrLine line{.text = "4111 1111 1111 1111", .mean_confidence = 91,
//                .min_symbol_confidence = 80, .min_word_confidence = 88};
//   DecodedLine d = decodeCardNumber(line);
//   if (d.number) { ... }   else { log(d.why); }   // d.why never holds the digits
//
// Accepted: only digits and spaces, grouped as printed on payment cards (4-4-4-4, 4-4-4-4-3,
// 4-6-5, 4-6-4, 4-4-5, or one unbroken run), 13-19 digits in all, passing Luhn, read with
// confidence at least the thresholds. Everything else is rejected: a wrong number is worse than
// none.
//
// decodeReading() is the decoder with per-character alternatives: each position of the line
// carries its likely characters with scores (a digit classifier's top-k, or an OCR engine's
// choices), and the check rules of the configured formats (card_formats.hpp) pick the number.
// A misread is repaired only when exactly one single-character change passes a check and it is
// clearly likelier than any other candidate; two near-equal candidates make the line ambiguous.
//
//   LineReading line = classifier.read(crop);             // positions with top-k choices
//   DecodedReading d = decodeReading(line, formats);
//   if (d.number) { ... } else if (d.ambiguous) { ... } else { log(d.why); }
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/cloud/card_formats.hpp"

namespace lostcard::cloud {

// One likely character at one position of a line, with a score in (0, 1] (a probability-like
// value: the choices of a position should sum to at most about 1).
struct CharChoice {
  char symbol = '?';
  double score = 0.0;
};

// What a reader saw in one line: per position, its choices best first; and the sizes of the
// printed groups when the reader saw the gaps (empty or one group = gaps unknown).
struct LineReading {
  std::vector<std::vector<CharChoice>> positions;
  std::vector<std::size_t> groups;
};

// Tesseract's view of one text line. Confidences are 0..100 as Tesseract reports them.
struct OcrLine {
  std::string text;
  double mean_confidence = 0.0;        // mean over the line's characters
  double min_symbol_confidence = 0.0;  // the least sure character
  double min_word_confidence = 0.0;    // the least sure digit group; catches inserted digits,
                                       // which can carry high character confidences
  LineReading reading;                 // the same line per character (score = confidence/100)
};

struct DecodeThresholds {
  double min_mean_confidence = 75.0;
  double min_symbol_confidence = 40.0;
  double min_word_confidence = 70.0;
};

struct DecodedLine {
  std::optional<std::string> number;  // digits only, when accepted
  std::string why;                    // why not, when rejected (no digits in it)
};

DecodedLine decodeCardNumber(const OcrLine& line, const DecodeThresholds& thresholds = {});

struct RepairPolicy {
  // A candidate must be this many times likelier than the next one (score product ratio).
  double min_likelihood_ratio = 20.0;
  // Every chosen character must have at least this score, and a character put in by a repair
  // at least min_repair_score (the reader must have found it plausible on its own)...
  double min_char_score = 0.05;
  double min_repair_score = 0.15;
  // ...and the line's characters a geometric-mean score of at least this.
  double min_mean_score = 0.6;
  // At most this many positions may differ from the best choices (0 = no repair).
  int max_repairs = 1;
};

struct DecodedReading {
  std::optional<std::string> number;  // set when one candidate passed clearly
  std::string format;                 // the name of the format it fits
  double confidence = 0.0;            // 0..1: mean character score, lowered by a close rival
  int repaired = 0;                   // positions changed from the best choices
  bool ambiguous = false;             // two or more candidates passed and none clearly won
  std::string why;                    // why not, when no number (never holds the digits)
  // The number's share of every number of its length that passes its format's check, each
  // weighed by the reading's scores (checkedShare): how likely the number is the one printed,
  // given that the line holds such a number. Set with the number.
  double checked_share = 0.0;
};

DecodedReading decodeReading(const LineReading& line, const std::vector<CardFormat>& formats,
                             const RepairPolicy& policy = {});

// P(`number`) over the sum of P(Y) for every Y of its length that passes `format`'s check
// rule, where P multiplies the positions' scores as if independent (a symbol a position does not
// list gets an even part of what its listed choices leave of 1). The mean score says how sure
// the reader was of each character; this says how sure the whole number is against every other
// number the check would let through, two or more changes away included. 0 when `number` does
// not fit the reading or the format has no check rule. Prefixes are not counted (numbers of any
// prefix pass), so it errs low.
double checkedShare(const LineReading& line, std::string_view number, const CardFormat& format);

// Combines readings of the same line from several frames: readings with the same number of
// positions are multiplied position by position (scores renormalised), as if one reader had
// seen all of them. Readings of another length are left out; the returned reading has the
// groups of the first reading used. Empty input gives an empty reading.
LineReading fuseReadings(const std::vector<LineReading>& readings);

// A reading with a single choice per position: the characters of `text` (spaces mark group
// gaps), each with `score`. For tests and for readers without alternatives.
LineReading readingOfText(const std::string& text, double score);

// How far fillErasures trusts the other reader.
struct FillPolicy {
  int max_fills = 2;     // at most this many '?' glyphs to fill
  int max_gaps = 4;      // glyphs the other reader missed (at the ends) or added, in all
  int min_matches = 11;  // digits both readers read alike, at least
};

// One reader's line (`glyphs`: digits, and '?' for glyphs it took for no digit) with each '?'
// filled by the digit another reader read at that place (`other`: its digits of the same line).
// The two are aligned glyph by glyph with the fewest gaps: the other reader may have added a few
// glyphs anywhere and missed some at either end, but wherever both read a digit they must read
// the same one. nullopt when they do not align within the policy, or when there is nothing to
// fill. The result is not checked: the caller checks it as a number (matchFormat), which is what
// makes it evidence.
//
//   fillErasures("42?8355435010392", "42083554350103") == "4208355435010392"
std::optional<std::string> fillErasures(const std::string& glyphs, const std::string& other,
                                        const FillPolicy& policy = {});

// `text` with every run of more than `max_run` digits replaced by '#', for log lines and
// operator details that must never carry a card number. The default keeps sizes such as
// "50000x50000 px" readable and hides any card number (13-19 digits) or 6-digit Amex group.
std::string redactDigitRuns(const std::string& text, std::size_t max_run = 5);

}  // namespace lostcard::cloud
