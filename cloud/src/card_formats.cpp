#include "lostcard/cloud/card_formats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace lostcard::cloud {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) {
      return parts;
    }
    start = end + 1;
  }
}

std::optional<std::size_t> parseSize(std::string_view text) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 64) {
    return std::nullopt;
  }
  return value;
}

// "4-4-4-4" -> {4, 4, 4, 4}
std::optional<std::vector<std::size_t>> parseGrouping(std::string_view text) {
  std::vector<std::size_t> sizes;
  for (const auto part : split(text, '-')) {
    const auto size = parseSize(part);
    if (!size) {
      return std::nullopt;
    }
    sizes.push_back(*size);
  }
  return sizes;
}

std::optional<std::string> parseField(CardFormat& format, std::string_view key,
                                      std::string_view value) {
  if (key == "name") {
    format.name = std::string(value);
  } else if (key == "length") {
    const auto range = split(value, '-');
    const auto lo = parseSize(range.front());
    const auto hi = parseSize(range.back());
    if (range.size() > 2 || !lo || !hi || *lo > *hi) {
      return "bad length (want N or N-M)";
    }
    format.min_length = *lo;
    format.max_length = *hi;
  } else if (key == "prefix") {
    format.prefixes.clear();
    if (value != "*") {
      for (const auto p : split(value, ',')) {
        if (p.empty() || p.find_first_not_of("0123456789") != std::string_view::npos) {
          return "bad prefix (want digits, comma-separated, or *)";
        }
        format.prefixes.emplace_back(p);
      }
    }
  } else if (key == "check") {
    if (value == "luhn") {
      format.check = CheckRule::kLuhn;
    } else if (value == "mod11-2") {
      format.check = CheckRule::kIso7064Mod11_2;
    } else {
      return fmt::format("unknown check rule '{}' (luhn | mod11-2)", value);
    }
  } else if (key == "groups") {
    format.groupings.clear();
    for (const auto g : split(value, ',')) {
      auto sizes = parseGrouping(g);
      if (!sizes) {
        return "bad groups (want e.g. 4-4-4-4,6-13)";
      }
      format.groupings.push_back(std::move(*sizes));
    }
  } else if (key == "last") {
    if (value == "digit") {
      format.last_may_be_x = false;
    } else if (value == "digit-or-x") {
      format.last_may_be_x = true;
    } else {
      return "bad last (digit | digit-or-x)";
    }
  } else {
    return fmt::format("unknown key '{}'", key);
  }
  return std::nullopt;
}

bool groupingFits(const CardFormat& format, std::size_t length,
                  const std::vector<std::size_t>& groups) {
  if (groups.size() <= 1 || format.groupings.empty()) {
    return true;
  }
  for (const auto& g : format.groupings) {
    if (g == groups && std::accumulate(g.begin(), g.end(), std::size_t{0}) == length) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<CardFormat> defaultCardFormats() {
  CardFormat payment;
  payment.name = "payment";
  payment.min_length = 13;
  payment.max_length = 19;
  payment.check = CheckRule::kLuhn;
  payment.groupings = {{4, 4, 4, 4}, {4, 4, 4, 4, 3}, {6, 13}, {4, 6, 5}, {4, 6, 4}, {4, 4, 5}};
  return {payment};
}

std::optional<std::vector<CardFormat>> parseCardFormats(std::string_view text, std::string* why) {
  std::vector<CardFormat> formats;
  std::istringstream in{std::string(text)};
  std::string line;
  int line_no = 0;
  const auto fail = [&](const std::string& reason) {
    if (why != nullptr) {
      *why = fmt::format("line {}: {}", line_no, reason);
    }
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string::npos) {
      line.erase(hash);
    }
    std::istringstream words(line);
    std::string word;
    if (!(words >> word)) {
      continue;
    }
    if (word != "format") {
      return fail(fmt::format("expected 'format', got '{}'", word));
    }
    CardFormat format;
    format.min_length = 0;
    bool has_check = false;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == word.size()) {
        return fail(fmt::format("expected key=value, got '{}'", word));
      }
      const std::string_view key = std::string_view(word).substr(0, eq);
      const std::string_view value = std::string_view(word).substr(eq + 1);
      has_check = has_check || key == "check";
      if (auto error = parseField(format, key, value)) {
        return fail(*error);
      }
    }
    if (format.name.empty()) {
      return fail("a format needs name=");
    }
    if (format.min_length == 0) {
      return fail("a format needs length=");
    }
    if (!has_check) {
      return fail("a format needs check= (a number without a check character is not trusted)");
    }
    formats.push_back(std::move(format));
  }
  if (formats.empty()) {
    line_no = 0;
    return fail("no formats");
  }
  return formats;
}

std::optional<char> mod11_2CheckChar(std::string_view payload) {
  return checkCharacter(CheckRule::kIso7064Mod11_2, payload);
}

std::vector<std::vector<std::size_t>> printedGroupings(const std::vector<CardFormat>& formats) {
  std::vector<std::vector<std::size_t>> all;
  for (const CardFormat& format : formats) {
    for (const auto& grouping : format.groupings) {
      if (std::find(all.begin(), all.end(), grouping) == all.end()) {
        all.push_back(grouping);
      }
    }
  }
  return all;
}

std::optional<CheckSum> checkSumOf(CheckRule rule) {
  switch (rule) {
    case CheckRule::kLuhn:
      // Every second digit from the right doubled, its digits summed.
      return CheckSum{10, 0, [](std::size_t i, int v) {
                        return i % 2 == 1 ? (2 * v > 9 ? 2 * v - 9 : 2 * v) : v;
                      }};
    case CheckRule::kIso7064Mod11_2:
      // Each character weighed by 2^i modulo 11; the whole sums to 1.
      return CheckSum{11, 1, [](std::size_t i, int v) {
                        int weight = 1;
                        for (std::size_t k = 0; k < i; ++k) {
                          weight = weight * 2 % 11;
                        }
                        return weight * v % 11;
                      }};
    case CheckRule::kNone:
      break;
  }
  return std::nullopt;
}

namespace {

// The terms of `sum` over `text`, whose last character stands `shift` places from the right of
// the whole number, modulo the sum's modulus; nullopt on a character that is not a digit (or a
// last 'X' where `last_may_be_x`).
std::optional<int> partialCheckSum(const CheckSum& sum, std::string_view text, std::size_t shift,
                                   bool last_may_be_x) {
  int total = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool x = c == 'X' && last_may_be_x && i + 1 == text.size();
    if (!isDigit(c) && !x) {
      return std::nullopt;
    }
    total = (total + sum.term(text.size() - 1 - i + shift, x ? 10 : c - '0')) % sum.modulus;
  }
  return total;
}

}  // namespace

bool passesCheck(CheckRule rule, std::string_view number) {
  const std::optional<CheckSum> sum = checkSumOf(rule);
  // ISO 7064 protects a payload of at least one digit; Luhn accepts a lone 0.
  const std::size_t least = rule == CheckRule::kIso7064Mod11_2 ? 2 : 1;
  if (!sum || number.size() < least) {
    return false;
  }
  const std::optional<int> total =
      partialCheckSum(*sum, number, 0, rule == CheckRule::kIso7064Mod11_2);
  return total && *total == sum->target;
}

std::optional<char> checkCharacter(CheckRule rule, std::string_view payload) {
  const std::optional<CheckSum> sum = checkSumOf(rule);
  if (!sum || payload.empty()) {
    return std::nullopt;
  }
  const std::optional<int> total = partialCheckSum(*sum, payload, 1, false);
  if (!total) {
    return std::nullopt;
  }
  const int values = rule == CheckRule::kIso7064Mod11_2 ? 11 : 10;
  for (int v = 0; v < values; ++v) {
    if ((*total + sum->term(0, v)) % sum->modulus == sum->target) {
      return v == 10 ? 'X' : static_cast<char>('0' + v);
    }
  }
  return std::nullopt;
}

const CardFormat* matchFormat(const std::vector<CardFormat>& formats, std::string_view number,
                              const std::vector<std::size_t>& groups) {
  for (const auto& format : formats) {
    if (number.size() < format.min_length || number.size() > format.max_length) {
      continue;
    }
    bool chars_ok = true;
    for (std::size_t i = 0; i < number.size(); ++i) {
      const bool last_x = i + 1 == number.size() && format.last_may_be_x && number[i] == 'X';
      chars_ok = chars_ok && (isDigit(number[i]) || last_x);
    }
    if (!chars_ok) {
      continue;
    }
    bool prefix_ok = format.prefixes.empty();
    for (const auto& prefix : format.prefixes) {
      prefix_ok = prefix_ok || number.substr(0, prefix.size()) == prefix;
    }
    if (!prefix_ok || !groupingFits(format, number.size(), groups) ||
        !passesCheck(format.check, number)) {
      continue;
    }
    return &format;
  }
  return nullptr;
}

std::vector<CardFormat> loadCardFormats(const std::string& models_dir) {
  if (models_dir.empty()) {
    return defaultCardFormats();
  }
  const auto path = std::filesystem::path(models_dir) / "card_formats.conf";
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read " + path.string());
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string why;
  auto formats = parseCardFormats(text.str(), &why);
  if (!formats) {
    throw std::runtime_error(path.string() + ": " + why);
  }
  return std::move(*formats);
}

}  // namespace lostcard::cloud
