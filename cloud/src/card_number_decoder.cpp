#include "lostcard/cloud/card_number_decoder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string_view>
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

namespace lostcard::cloud {
namespace {

constexpr double kScoreFloor = 1e-6;
// The score a fused reading gives a symbol that one frame's reader did not list at all.
constexpr double kUnlistedScore = 0.01;

struct Candidate {
  std::string text;
  double log_score = 0.0;
  double min_score = 1.0;
  int repaired = 0;
  const CardFormat* format = nullptr;
};

}  // namespace

DecodedReading decodeReading(const LineReading& line, const std::vector<CardFormat>& formats,
                             const RepairPolicy& policy) {
  DecodedReading out;
  const std::size_t n = line.positions.size();
  if (n == 0) {
    out.why = "no characters in the line";
    return out;
  }
  bool length_known = false;
  for (const auto& f : formats) {
    length_known = length_known || (n >= f.min_length && n <= f.max_length);
  }
  if (!length_known) {
    out.why = fmt::format("{} characters, no known format has that length", n);
    return out;
  }
  std::vector<std::vector<CharChoice>> positions = line.positions;
  for (auto& choices : positions) {
    if (choices.empty()) {
      out.why = "a position without any character";
      return out;
    }
    std::stable_sort(choices.begin(), choices.end(),
                     [](const CharChoice& a, const CharChoice& b) { return a.score > b.score; });
  }

  std::string best(n, '?');
  double best_log = 0.0;
  double best_min = 1.0;
  for (std::size_t i = 0; i < n; ++i) {
    best[i] = positions[i][0].symbol;
    best_log += std::log(std::max(positions[i][0].score, kScoreFloor));
    best_min = std::min(best_min, positions[i][0].score);
  }

  std::vector<Candidate> passing;
  const auto consider = [&](Candidate c) {
    if (c.min_score < policy.min_char_score) {
      return;
    }
    c.format = matchFormat(formats, c.text, line.groups);
    if (c.format == nullptr) {
      return;
    }
    for (auto& p : passing) {
      if (p.text == c.text) {
        if (c.log_score > p.log_score) {
          p = c;
        }
        return;
      }
    }
    passing.push_back(std::move(c));
  };
  consider(Candidate{best, best_log, best_min, 0, nullptr});

  // Repairs: change one (or, if allowed, two) positions to one of their alternatives.
  const auto substitute = [&](Candidate c, std::size_t i, const CharChoice& alt) {
    c.log_score += std::log(std::max(alt.score, kScoreFloor)) -
                   std::log(std::max(positions[i][0].score, kScoreFloor));
    c.text[i] = alt.symbol;
    c.min_score = std::min(c.min_score, alt.score);
    ++c.repaired;
    return c;
  };
  if (policy.max_repairs >= 1) {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t a = 1; a < positions[i].size(); ++a) {
        if (positions[i][a].score < policy.min_repair_score) {
          continue;
        }
        // best_min is recomputed: the replaced character no longer counts.
        Candidate one{best, best_log, 1.0, 0, nullptr};
        for (std::size_t k = 0; k < n; ++k) {
          if (k != i) {
            one.min_score = std::min(one.min_score, positions[k][0].score);
          }
        }
        one = substitute(one, i, positions[i][a]);
        consider(one);
        if (policy.max_repairs < 2) {
          continue;
        }
        for (std::size_t j = i + 1; j < n; ++j) {
          for (std::size_t b = 1; b < positions[j].size(); ++b) {
            if (positions[j][b].score >= policy.min_repair_score) {
              consider(substitute(one, j, positions[j][b]));
            }
          }
        }
      }
    }
  }

  if (passing.empty()) {
    out.why = matchFormat(formats, best) == nullptr && policy.max_repairs > 0
                  ? fmt::format("{} characters; no reading or single repair passes a check", n)
                  : fmt::format("{} characters; no reading passes a check", n);
    return out;
  }
  std::sort(passing.begin(), passing.end(),
            [](const Candidate& a, const Candidate& b) { return a.log_score > b.log_score; });
  const Candidate& winner = passing.front();
  double rival_ratio = 0.0;  // second's likelihood over the winner's
  if (passing.size() > 1) {
    rival_ratio = std::exp(passing[1].log_score - winner.log_score);
    if (rival_ratio * policy.min_likelihood_ratio > 1.0) {
      out.ambiguous = true;
      out.why =
          fmt::format("{} candidates pass a check and none is clearly likelier", passing.size());
      return out;
    }
  }
  const double mean_score = std::exp(winner.log_score / static_cast<double>(n));
  if (mean_score < policy.min_mean_score) {
    out.why =
        fmt::format("mean character score {:.2f} below {:.2f}", mean_score, policy.min_mean_score);
    return out;
  }
  out.number = winner.text;
  out.format = winner.format->name;
  out.checked_share = checkedShare(line, winner.text, *winner.format);
  out.repaired = winner.repaired;
  out.confidence = std::clamp(mean_score * (1.0 - rival_ratio), 0.0, 1.0);
  return out;
}

double checkedShare(const LineReading& line, std::string_view number, const CardFormat& format) {
  const std::optional<CheckSum> sum = checkSumOf(format.check);
  const std::size_t n = line.positions.size();
  if (!sum || number.size() != n || n == 0) {
    return 0.0;
  }
  constexpr int kMaxValues = 11;  // the digits, and 'X' where the format allows it last
  // A symbol's value at a position: 0..9, 10 for an allowed 'X', -1 for anything else.
  const auto valueOf = [](char symbol, bool may_be_x) {
    return symbol >= '0' && symbol <= '9' ? symbol - '0' : (symbol == 'X' && may_be_x) ? 10 : -1;
  };
  std::vector<double> ways(static_cast<std::size_t>(sum->modulus), 0.0);  // residue -> weight
  ways[0] = 1.0;
  double own = 1.0;  // P(number)
  for (std::size_t i = 0; i < n; ++i) {
    const bool may_be_x = format.last_may_be_x && i + 1 == n;
    const int values = may_be_x ? kMaxValues : 10;
    // The position's score for each value, and what each value adds to the check's sum.
    std::array<double, kMaxValues> score{};
    std::array<bool, kMaxValues> listed{};
    std::array<std::size_t, kMaxValues> term{};
    double left = 1.0;
    for (const CharChoice& c : line.positions[i]) {
      const int v = valueOf(c.symbol, may_be_x);
      left -= c.score;
      if (v >= 0 && !listed[static_cast<std::size_t>(v)]) {
        listed[static_cast<std::size_t>(v)] = true;
        score[static_cast<std::size_t>(v)] = c.score;
      }
    }
    const int unlisted =
        static_cast<int>(std::count(listed.begin(), listed.begin() + values, false));
    for (int v = 0; v < values; ++v) {
      if (!listed[static_cast<std::size_t>(v)]) {
        score[static_cast<std::size_t>(v)] = std::max(left, 0.0) / unlisted;
      }
      term[static_cast<std::size_t>(v)] = static_cast<std::size_t>(sum->term(n - 1 - i, v));
    }
    const int own_value = valueOf(number[i], may_be_x);
    if (own_value < 0) {
      return 0.0;
    }
    own *= score[static_cast<std::size_t>(own_value)];
    std::vector<double> next(ways.size(), 0.0);
    for (std::size_t r = 0; r < ways.size(); ++r) {
      if (ways[r] == 0.0) {
        continue;
      }
      for (int v = 0; v < values; ++v) {
        next[(r + term[static_cast<std::size_t>(v)]) % ways.size()] +=
            ways[r] * score[static_cast<std::size_t>(v)];
      }
    }
    ways = std::move(next);
  }
  const double passing = ways[static_cast<std::size_t>(sum->target)];
  return passing > 0.0 ? std::min(1.0, own / passing) : 0.0;
}

LineReading fuseReadings(const std::vector<LineReading>& readings) {
  // The most common length wins (the first such reading on a tie).
  std::size_t length = 0;
  std::size_t votes = 0;
  for (const auto& r : readings) {
    std::size_t same = 0;
    for (const auto& o : readings) {
      same += o.positions.size() == r.positions.size() ? 1 : 0;
    }
    if (!r.positions.empty() && same > votes) {
      length = r.positions.size();
      votes = same;
    }
  }
  LineReading fused;
  if (votes == 0) {
    return fused;
  }
  std::vector<const LineReading*> used;
  for (const auto& r : readings) {
    if (r.positions.size() == length) {
      used.push_back(&r);
      if (fused.groups.size() <= 1 && r.groups.size() > 1) {
        fused.groups = r.groups;
      }
    }
  }
  fused.positions.resize(length);
  for (std::size_t i = 0; i < length; ++i) {
    std::vector<char> symbols;
    for (const auto* r : used) {
      for (const auto& c : r->positions[i]) {
        if (std::find(symbols.begin(), symbols.end(), c.symbol) == symbols.end()) {
          symbols.push_back(c.symbol);
        }
      }
    }
    // The mass of "something none of the readers listed" stays in the total, so that fusing a
    // single reading changes nothing and unlisted characters keep their share.
    double other_log = 0.0;
    for (const auto* r : used) {
      double listed = 0.0;
      for (const auto& c : r->positions[i]) {
        listed += c.score;
      }
      other_log += std::log(std::max(kUnlistedScore, 1.0 - listed));
    }
    double total = std::exp(other_log);
    for (const char s : symbols) {
      double log_score = 0.0;
      for (const auto* r : used) {
        // Unlisted: the reader's leftover mass, spread over the ten digits.
        double listed = 0.0;
        for (const auto& c : r->positions[i]) {
          listed += c.score;
        }
        double score = std::max(kUnlistedScore, 1.0 - listed) / 10.0;
        for (const auto& c : r->positions[i]) {
          if (c.symbol == s) {
            score = std::max(c.score, kScoreFloor);
          }
        }
        log_score += std::log(score);
      }
      fused.positions[i].push_back(CharChoice{s, std::exp(log_score)});
      total += std::exp(log_score);
    }
    for (auto& c : fused.positions[i]) {
      c.score /= total;
    }
    std::stable_sort(fused.positions[i].begin(), fused.positions[i].end(),
                     [](const CharChoice& a, const CharChoice& b) { return a.score > b.score; });
  }
  return fused;
}

LineReading readingOfText(const std::string& text, double score) {
  LineReading reading;
  std::size_t group = 0;
  for (const char c : text) {
    if (c == ' ') {
      if (group > 0) {
        reading.groups.push_back(group);
      }
      group = 0;
      continue;
    }
    reading.positions.push_back({CharChoice{c, score}});
    ++group;
  }
  if (group > 0) {
    reading.groups.push_back(group);
  }
  return reading;
}

std::optional<std::string> fillErasures(const std::string& glyphs, const std::string& other,
                                        const FillPolicy& policy) {
  const std::size_t n = glyphs.size();
  const std::size_t m = other.size();
  const auto fills = static_cast<std::size_t>(std::count(glyphs.begin(), glyphs.end(), '?'));
  if (fills == 0 || fills > static_cast<std::size_t>(policy.max_fills) || m == 0) {
    return std::nullopt;
  }
  // cost[i][j]: the fewest gaps aligning glyphs[0, i) with other[0, j), or kNever.
  constexpr int kNever = 1 << 20;
  std::vector<std::vector<int>> cost(n + 1, std::vector<int>(m + 1, kNever));
  cost[0][0] = 0;
  for (std::size_t i = 0; i <= n; ++i) {
    for (std::size_t j = 0; j <= m; ++j) {
      if (cost[i][j] >= kNever) {
        continue;
      }
      if (i < n && j < m && (glyphs[i] == '?' || glyphs[i] == other[j])) {
        cost[i + 1][j + 1] = std::min(cost[i + 1][j + 1], cost[i][j]);
      }
      // A glyph the other reader missed, before it began or after it ended (a '?' must be
      // filled; a glyph missed in the middle, next to one added, would be a digit read
      // differently).
      if (i < n && glyphs[i] != '?' && (j == 0 || j == m)) {
        cost[i + 1][j] = std::min(cost[i + 1][j], cost[i][j] + 1);
      }
      if (j < m) {  // a digit Tesseract added
        cost[i][j + 1] = std::min(cost[i][j + 1], cost[i][j] + 1);
      }
    }
  }
  if (cost[n][m] > policy.max_gaps) {
    return std::nullopt;
  }
  // Back from the end along one of the shortest alignments. A missed glyph next to an added one
  // is a digit the two read differently: no fill then.
  std::string filled = glyphs;
  std::size_t i = n;
  std::size_t j = m;
  std::size_t matches = 0;
  char previous = ' ';  // the step taken before (in the walk back): 'm'atch, 'g'ap, 'a'dded
  while (i > 0 || j > 0) {
    char step = 'a';
    if (i > 0 && j > 0 && (glyphs[i - 1] == '?' || glyphs[i - 1] == other[j - 1]) &&
        cost[i - 1][j - 1] == cost[i][j]) {
      step = 'm';
      if (glyphs[i - 1] == '?') {
        filled[i - 1] = other[j - 1];
      } else {
        ++matches;
      }
      --i;
      --j;
    } else if (i > 0 && glyphs[i - 1] != '?' && (j == 0 || j == m) &&
               cost[i - 1][j] + 1 == cost[i][j]) {
      step = 'g';
      --i;
    } else {
      --j;
    }
    if ((step == 'g' && previous == 'a') || (step == 'a' && previous == 'g')) {
      return std::nullopt;
    }
    previous = step;
  }
  if (matches < static_cast<std::size_t>(policy.min_matches) ||
      filled.find('?') != std::string::npos) {
    return std::nullopt;
  }
  return filled;
}

}  // namespace lostcard::cloud
