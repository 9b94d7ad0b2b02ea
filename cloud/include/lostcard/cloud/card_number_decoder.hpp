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
#include <optional>
#include <string>

namespace lostcard::cloud {

// Tesseract's view of one text line. Confidences are 0..100 as Tesseract reports them.
struct OcrLine {
  std::string text;
  double mean_confidence = 0.0;        // mean over the line's characters
  double min_symbol_confidence = 0.0;  // the least sure character
  double min_word_confidence = 0.0;    // the least sure digit group; catches inserted digits,
                                       // which can carry high character confidences
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

// `text` with every run of more than `max_run` digits replaced by '#', for log lines and
// operator details that must never carry a card number. The default keeps sizes such as
// "50000x50000 px" readable and hides any card number (13-19 digits) or 6-digit Amex group.
std::string redactDigitRuns(const std::string& text, std::size_t max_run = 5);

}  // namespace lostcard::cloud
