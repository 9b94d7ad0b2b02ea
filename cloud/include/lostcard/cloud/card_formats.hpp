#pragma once
// The number formats the recognizer accepts: how many characters, which prefixes, which check
// rule and how the issuer prints the groups. Payment cards (Luhn) are built in; issuers with
// other numbers (transit, campus, national ID cards) are added in models/card_formats.conf.
//
//   std::string why;
//   auto formats = parseCardFormats(fileText, &why);        // nullopt + why on a bad line
//   if (const CardFormat* f = matchFormat(*formats, "4111111111111111", {4, 4, 4, 4})) { ... }
//   passesCheck(CheckRule::kIso7064Mod11_2, "11010519491231002X");   // true
//
// Config file: one format per line, '#' starts a comment, fields are key=value:
//
//   format name=payment length=13-19 prefix=* check=luhn groups=4-4-4-4,6-13,4-6-5
//   format name=id-18 length=18 prefix=1,2,3,4,5,6,8 check=mod11-2 groups=18,6-8-4 last=digit-or-x
//
// `groups` lists the printed groupings; a grouping is used only when its sizes add up to the
// number's length. One unbroken run always fits (a reader does not always see the gaps). `prefix=*`
// means any. `last=digit-or-x` lets the check character be 'X' (ISO 7064 MOD 11-2 writes the value
// 10 as X).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lostcard::cloud {

enum class CheckRule {
  kNone,            // no check character: never accepted without one (see matchFormat)
  kLuhn,            // ISO/IEC 7812 payment cards
  kIso7064Mod11_2,  // ISO 7064 MOD 11-2, e.g. 18-character national ID numbers
};

struct CardFormat {
  std::string name;
  std::size_t min_length = 0;
  std::size_t max_length = 0;
  std::vector<std::string> prefixes;  // empty = any
  CheckRule check = CheckRule::kLuhn;
  std::vector<std::vector<std::size_t>> groupings;  // printed groupings; empty = any
  bool last_may_be_x = false;
};

// The payment-card format (13-19 digits, Luhn, the usual groupings); what the recognizer uses
// when no models folder is given. Mirrors models/card_formats.conf.
std::vector<CardFormat> defaultCardFormats();

// Parses the config text described above. nullopt (with the line number and reason in *why)
// on any malformed line, unknown key, unknown check rule, or a format without a check rule:
// a number without a check character cannot be trusted, so the file may not declare one.
std::optional<std::vector<CardFormat>> parseCardFormats(std::string_view text,
                                                        std::string* why = nullptr);

// The formats in `models_dir`/card_formats.conf, or defaultCardFormats() when `models_dir` is
// empty. Throws std::runtime_error when the file cannot be read or parsed.
std::vector<CardFormat> loadCardFormats(const std::string& models_dir);

// Every printed grouping of `formats`, each once, in the order first met.
std::vector<std::vector<std::size_t>> printedGroupings(const std::vector<CardFormat>& formats);

// A check rule as a weighted sum, the one definition of each rule (passesCheck, checkCharacter,
// luhn.hpp and the decoder's checkedShare all read it): a number passes when the sum of
// term(i, value) over its characters (i counted from the right, 0 = the check character; 'X' has
// the value 10) is `target` modulo `modulus`.
struct CheckSum {
  int modulus = 0;
  int target = 0;
  int (*term)(std::size_t from_right, int value) = nullptr;
};

// The weighted sum of `rule`; nullopt for CheckRule::kNone.
std::optional<CheckSum> checkSumOf(CheckRule rule);

// True when `number` (digits, and a final 'X' where the rule allows it) passes `rule`.
bool passesCheck(CheckRule rule, std::string_view number);

// The check character ('0'-'9', or 'X' for ISO 7064 MOD 11-2's value 10) that makes `payload`
// followed by it pass `rule`; nullopt when `payload` is empty or holds a non-digit, or for
// CheckRule::kNone.
std::optional<char> checkCharacter(CheckRule rule, std::string_view payload);

// The first format that `number` fits (length, prefix, characters, check rule), also fitting
// the printed `groups` when more than one group was seen; nullptr when none does.
const CardFormat* matchFormat(const std::vector<CardFormat>& formats, std::string_view number,
                              const std::vector<std::size_t>& groups = {});

// The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for a payload of digits; nullopt when
// `payload` is empty or holds a non-digit. checkCharacter(CheckRule::kIso7064Mod11_2, payload).
std::optional<char> mod11_2CheckChar(std::string_view payload);

}  // namespace lostcard::cloud
