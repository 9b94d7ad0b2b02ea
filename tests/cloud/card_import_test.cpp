// Bulk enrollment files read row by row (card_import.hpp): CSV and NDJSON, every rejection
// reason with its line number, pieces cut anywhere, and the constant-memory promise (the parser
// never holds more than one line, however long the body).
#include "lostcard/cloud/card_import.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lostcard/cloud/luhn.hpp"

using namespace lostcard::cloud;

namespace {

std::vector<ImportRow> parseAll(ImportFormat format, const std::string& body,
                                std::size_t piece_bytes,
                                std::optional<std::string>* fatal = nullptr) {
  CardImportParser parser(format, defaultCardFormats());
  std::vector<ImportRow> rows;
  const auto sink = [&](ImportRow&& row) { rows.push_back(std::move(row)); };
  for (std::size_t at = 0; at < body.size(); at += piece_bytes) {
    parser.feed(std::string_view(body).substr(at, piece_bytes), sink);
  }
  parser.finish(sink);
  if (fatal != nullptr) {
    *fatal = parser.fatal();
  }
  return rows;
}

// "line code last4" for each row ("ok" for accepted ones), to compare whole results at once.
std::vector<std::string> summary(const std::vector<ImportRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) {
    out.push_back(std::to_string(r.line) + " " + (r.ok() ? "ok" : r.code) + " " +
                  (r.last4.empty() ? "-" : r.last4) + (r.ok() ? " " + r.holder_id : ""));
  }
  return out;
}

// A 16-digit number that passes Luhn: "4" + 14 digits of n + the check digit.
std::string luhnNumber(std::uint64_t n) {
  std::string payload = std::to_string(n);
  payload = "4" + std::string(14 - payload.size(), '0') + payload;
  return payload + *luhnCheckDigit(payload);
}

const std::string kCsv =
    "holder_id,number\r\n"             // 1
    "ada,4000 0566 5566 5556\r\n"      // 2 ok
    "\r\n"                             // 3 blank: skipped
    "bob,\"5200-8282-8282-8210\"\r\n"  // 4 ok, quoted
    "carl,4111111111111112\r\n"        // 5 Luhn fails
    "dave,41111111\r\n"                // 6 8 digits: no payment format
    "erin,4111-abcd\r\n"               // 7 not digits
    ",4111111111111111\r\n"            // 8 no holder
    "fay,4111111111111111,extra\r\n"   // 9 three fields
    "gus,\"4111111111111111\r\n"       // 10 unclosed quote
    "h\x01,4111111111111111\r\n"       // 11 control character in the holder id
    "ida,4111111111111111";            // 12 ok, no final line break

}  // namespace

TEST_CASE("a CSV body: accepted rows, and each refused one with its line and reason") {
  const auto rows = parseAll(ImportFormat::kCsv, kCsv, 1 << 16);
  CHECK(summary(rows) == std::vector<std::string>{"2 ok 5556 ada", "4 ok 8210 bob",
                                                  "5 check_digit 1112", "6 wrong_length 1111",
                                                  "7 bad_number -", "8 missing_holder 1111",
                                                  "9 malformed_row -", "10 malformed_row -",
                                                  "11 bad_holder_id 1111", "12 ok 1111 ida"});
  CHECK(rows[0].digits == "4000056655665556");
  CHECK(rows[1].digits == "5200828282828210");
  for (const auto& row : rows) {
    INFO(row.line);
    // Never the number (nor any run of its digits longer than four) in a reason.
    CHECK(row.reason.find("4111") == std::string::npos);
    CHECK(row.reason.find("5556") == std::string::npos);
    if (!row.ok()) {
      CHECK(row.digits.empty());
      CHECK(row.holder_id.empty());
    }
  }
}

TEST_CASE("the same body cut into pieces of any size gives the same rows") {
  const auto whole = summary(parseAll(ImportFormat::kCsv, kCsv, 1 << 16));
  for (std::size_t piece : {1, 2, 3, 7, 16, 64}) {
    INFO(piece);
    CHECK(summary(parseAll(ImportFormat::kCsv, kCsv, piece)) == whole);
  }
}

TEST_CASE("a CSV header must name exactly holder_id and number") {
  std::optional<std::string> fatal;
  CHECK(
      parseAll(ImportFormat::kCsv, "number,HOLDER_ID\n4000056655665556,ada\n", 5, &fatal).size() ==
      1);
  CHECK_FALSE(fatal);
  CHECK(parseAll(ImportFormat::kCsv, "\xEF\xBB\xBFholder_id,number\nada,4000056655665556\n", 64,
                 &fatal)[0]
            .ok());
  CHECK_FALSE(fatal);

  CHECK(parseAll(ImportFormat::kCsv, "holder_id,number,pin\nada,4000056655665556,1\n", 64, &fatal)
            .empty());
  REQUIRE(fatal);
  CHECK(*fatal == "line 1: unknown column 'pin' (the columns are holder_id and number)");
  parseAll(ImportFormat::kCsv, "holder_id\nada\n", 64, &fatal);
  REQUIRE(fatal);
  CHECK(*fatal == "line 1: the header row must name the columns holder_id and number");
  parseAll(ImportFormat::kCsv, "\n\n", 64, &fatal);
  REQUIRE(fatal);
  CHECK(fatal->find("empty") != std::string::npos);
  // A card number where the header should be is refused without being echoed.
  parseAll(ImportFormat::kCsv, "4000056655665556,ada\n", 64, &fatal);
  REQUIRE(fatal);
  CHECK(*fatal == "line 1: unknown column 1 (the columns are holder_id and number)");
}

TEST_CASE("an NDJSON body: one object per line, unknown fields and non-strings refused") {
  const std::string body = R"({"holder_id": "ada", "number": "4000056655665556"})"
                           "\n"
                           R"({"holder_id": "bob", "number": 5200828282828210})"
                           "\n"
                           R"({"holder_id": "carl", "number": "4111111111111111", "pin": "1234"})"
                           "\n"
                           "not json\n"
                           "\n"
                           R"({"number": "4111111111111111"})"
                           "\n"
                           R"({"holder_id": "dave", "number": "4111111111111112"})";
  const auto rows = parseAll(ImportFormat::kNdjson, body, 10);
  CHECK(summary(rows) == std::vector<std::string>{"1 ok 5556 ada", "2 malformed_row -",
                                                  "3 malformed_row -", "4 malformed_row -",
                                                  "6 missing_holder 1111", "7 check_digit 1112"});
  for (const auto& row : rows) {
    CHECK(row.reason.find("5200") == std::string::npos);
  }
}

TEST_CASE("a line longer than the limit is one refused row, and is not kept") {
  const std::string long_line(CardImportParser::kMaxLineBytes + 10, 'a');
  const std::string body = "holder_id,number\n" + long_line + "\nada,4000056655665556\n";
  CardImportParser parser(ImportFormat::kCsv, defaultCardFormats());
  std::vector<ImportRow> rows;
  const auto sink = [&](ImportRow&& row) { rows.push_back(std::move(row)); };
  for (std::size_t at = 0; at < body.size(); at += 100) {
    parser.feed(std::string_view(body).substr(at, 100), sink);
  }
  parser.finish(sink);
  CHECK(summary(rows) == std::vector<std::string>{"2 line_too_long -", "3 ok 5556 ada"});
  CHECK(parser.peakBufferedBytes() <= CardImportParser::kMaxLineBytes);
}

TEST_CASE("the parser's memory does not grow with the body: at most one line is held") {
  // 200,000 rows (about 4.6 MB) in 64 KiB pieces, the server's piece size: rows are handed on as
  // they complete, and the parser keeps only the start of the line a piece cuts.
  const std::size_t kRows = 200'000;
  std::string piece_source;
  CardImportParser parser(ImportFormat::kCsv, defaultCardFormats());
  std::size_t accepted = 0;
  std::size_t longest_line = 0;
  const auto sink = [&](ImportRow&& row) { accepted += row.ok() ? 1 : 0; };
  std::string pending = "holder_id,number\n";
  for (std::size_t i = 0; i < kRows; ++i) {
    const std::string line = "holder-" + std::to_string(i % 97) + "," + luhnNumber(i) + "\n";
    longest_line = std::max(longest_line, line.size() - 1);
    pending += line;
    if (pending.size() >= 64 * 1024) {
      parser.feed(std::string_view(pending).substr(0, 64 * 1024), sink);
      pending.erase(0, 64 * 1024);
    }
  }
  parser.feed(pending, sink);
  parser.finish(sink);
  CHECK(accepted == kRows);
  CHECK(parser.lines() == kRows + 1);
  // What it held at most: a part of one line, whatever the number of rows.
  CHECK(parser.peakBufferedBytes() > 0);
  CHECK(parser.peakBufferedBytes() <= longest_line);
}

TEST_CASE("numbers are checked against the configured card formats") {
  std::string why;
  const auto formats = parseCardFormats(
      "format name=payment length=13-19 prefix=* check=luhn groups=4-4-4-4\n"
      "format name=campus length=10 prefix=77 check=luhn groups=10\n",
      &why);
  REQUIRE(formats);
  const std::string campus = std::string("770000001") + *luhnCheckDigit("770000001");
  const std::string other_prefix = std::string("780000001") + *luhnCheckDigit("780000001");
  std::string wrong_check = campus;
  wrong_check.back() = static_cast<char>('0' + (wrong_check.back() - '0' + 1) % 10);
  std::string digits, last4, code, reason;
  CHECK(checkCardNumber(*formats, campus, &digits, &last4, &code, &reason));
  CHECK(digits == campus);
  CHECK_FALSE(checkCardNumber(*formats, other_prefix, &digits, &last4, &code, &reason));
  CHECK(code == "unknown_prefix");
  CHECK(last4 == other_prefix.substr(6));
  CHECK_FALSE(checkCardNumber(*formats, wrong_check, &digits, &last4, &code, &reason));
  CHECK(code == "check_digit");
  CHECK(reason == "the check digit is wrong (Luhn)");
  CHECK_FALSE(checkCardNumber(*formats, "12345678901", &digits, &last4, &code, &reason));
  CHECK(code == "wrong_length");
  CHECK(reason == "11 digits: no card format has that length");
  CHECK(digits.empty());
}

TEST_CASE("content types name the format") {
  CHECK(importFormatFromContentType("text/csv") == ImportFormat::kCsv);
  CHECK(importFormatFromContentType("Text/CSV; charset=utf-8") == ImportFormat::kCsv);
  CHECK(importFormatFromContentType("application/x-ndjson") == ImportFormat::kNdjson);
  CHECK_FALSE(importFormatFromContentType("application/json"));
  CHECK_FALSE(importFormatFromContentType(""));
}
