#include "lostcard/cloud/card_number_decoder.hpp"

#include <fmt/format.h>

#include <array>
#include <vector>

#include "lostcard/cloud/luhn.hpp"

namespace lostcard::cloud {
namespace {

constexpr std::size_t kMinDigits = 13;
constexpr std::size_t kMaxDigits = 19;

// Digit groupings printed on payment cards: 16-digit (Visa, Mastercard, Discover, JCB),
// 19-digit, 15-digit American Express, 14-digit Diners, 13-digit legacy Visa.
const std::vector<std::vector<std::size_t>>& knownGroupings() {
  static const std::vector<std::vector<std::size_t>> kGroupings = {
      {4, 4, 4, 4}, {4, 4, 4, 4, 3}, {4, 6, 5}, {4, 6, 4}, {4, 4, 5}};
  return kGroupings;
}

DecodedLine reject(std::string why) { return DecodedLine{std::nullopt, std::move(why)}; }

}  // namespace

DecodedLine decodeCardNumber(const OcrLine& line, const DecodeThresholds& thresholds) {
  std::vector<std::string> groups;
  std::string current;
  for (const char c : line.text) {
    if (c >= '0' && c <= '9') {
      current.push_back(c);
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!current.empty()) {
        groups.push_back(std::move(current));
        current.clear();
      }
    } else {
      return reject("line holds characters other than digits");
    }
  }
  if (!current.empty()) {
    groups.push_back(std::move(current));
  }
  if (groups.empty()) {
    return reject("no digits in the line");
  }

  std::string digits;
  std::vector<std::size_t> sizes;
  for (const auto& g : groups) {
    digits += g;
    sizes.push_back(g.size());
  }
  if (digits.size() < kMinDigits || digits.size() > kMaxDigits) {
    return reject(
        fmt::format("{} digits, a card number has {}-{}", digits.size(), kMinDigits, kMaxDigits));
  }
  bool grouping_known = sizes.size() == 1;
  for (const auto& g : knownGroupings()) {
    grouping_known = grouping_known || g == sizes;
  }
  if (!grouping_known) {
    return reject(fmt::format("digits in {} groups of an unknown layout", sizes.size()));
  }
  if (!luhnValid(digits)) {
    return reject("fails the Luhn check");
  }
  if (line.mean_confidence < thresholds.min_mean_confidence) {
    return reject(fmt::format("mean confidence {:.0f} below {:.0f}", line.mean_confidence,
                              thresholds.min_mean_confidence));
  }
  if (line.min_symbol_confidence < thresholds.min_symbol_confidence) {
    return reject(fmt::format("a digit read with confidence {:.0f}, below {:.0f}",
                              line.min_symbol_confidence, thresholds.min_symbol_confidence));
  }
  if (line.min_word_confidence < thresholds.min_word_confidence) {
    return reject(fmt::format("a digit group read with confidence {:.0f}, below {:.0f}",
                              line.min_word_confidence, thresholds.min_word_confidence));
  }
  return DecodedLine{std::move(digits), ""};
}

std::string redactDigitRuns(const std::string& text, std::size_t max_run) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') {
      ++j;
    }
    if (j == i) {
      out.push_back(text[i++]);
      continue;
    }
    const std::size_t run = j - i;
    out.append(run > max_run ? std::string(run, '#') : text.substr(i, run));
    i = j;
  }
  return out;
}

}  // namespace lostcard::cloud
