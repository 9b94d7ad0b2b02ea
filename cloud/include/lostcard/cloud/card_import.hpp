#pragma once
// Reading a bulk enrollment file (POST /v1/issuer/enrollments) row by row, as its pieces arrive:
// pure logic, no I/O, so that every rule is tested without a server (card_import_test.cpp).
//
//   CardImportParser parser(ImportFormat::kCsv, formats);    // formats: card_formats.hpp
//   for (each piece of the body) {
//     parser.feed(piece, [&](ImportRow&& row) { row.ok() ? write(row) : reject(row); });
//     if (parser.fatal()) { 400 with *parser.fatal(); }
//   }
//   parser.finish(sink);                                       // a last line without '\n'
//
// Formats:
//   text/csv              RFC 4180 rows; the first row names the columns, exactly holder_id and
//                         number (any order, names case-insensitive); a quoted field may hold
//                         commas and "" but not a line break; CRLF or LF; a UTF-8 BOM is skipped.
//   application/x-ndjson  one JSON object {"holder_id": "...", "number": "..."} per line (the
//                         v1.EnrollmentRow message; unknown fields refused).
// Blank lines are skipped in both. Lines are numbered from 1 as in the body (a CSV's header is
// line 1), so a rejection names the line an issuer can find in its file.
//
// Each row is checked on its own: a holder id (1 to 200 printable ASCII characters), and a
// number of digits (spaces and dashes between them allowed) that one of the card formats
// accepts (length, prefix, check digit; models/card_formats.conf). A refused row says why with a
// code and a sentence, and never holds more of the number than its last four digits.
//
// Constant memory: the parser holds at most one line (kMaxLineBytes; a longer line is refused
// as a row, and skipped without being kept) besides the piece it is given.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/cloud/card_formats.hpp"

namespace lostcard::cloud {

enum class ImportFormat { kCsv, kNdjson };

// text/csv -> kCsv; application/x-ndjson (or application/jsonl) -> kNdjson; parameters such as
// "; charset=utf-8" ignored; nullopt for anything else.
std::optional<ImportFormat> importFormatFromContentType(std::string_view content_type);

struct ImportRow {
  std::uint32_t line = 0;
  std::string holder_id;
  std::string digits;  // the number's digits when the row is ok; never logged
  std::string last4;   // "" when no number could be read
  std::string code;    // "" when ok; else a rejection code (v1.EnrollmentRejection)
  std::string reason;  // why, for a person

  bool ok() const { return code.empty(); }
};

// Checks one number: its digits (in *digits) when a format accepts it, else the rejection code
// and reason (and *last4 when it has at least four digits). Returns true when accepted.
bool checkCardNumber(const std::vector<CardFormat>& formats, std::string_view number,
                     std::string* digits, std::string* last4, std::string* code,
                     std::string* reason);

class CardImportParser {
 public:
  static constexpr std::size_t kMaxLineBytes = 4096;
  using Sink = std::function<void(ImportRow&&)>;

  CardImportParser(ImportFormat format, std::vector<CardFormat> formats);

  // Parses the complete lines that `piece` ends, handing each data row to `sink`. Does nothing
  // once fatal() is set.
  void feed(std::string_view piece, const Sink& sink);
  // The end of the body: a last line without a line break. Sets fatal() for a CSV body with no
  // header row.
  void finish(const Sink& sink);

  // Set when the whole body is refused (a CSV header that does not name exactly holder_id and
  // number): no row is handed on after it.
  const std::optional<std::string>& fatal() const { return fatal_; }
  // Lines seen so far, and the most bytes of a line the parser ever held (at most
  // kMaxLineBytes: the constant-memory promise, checked by the tests).
  std::uint32_t lines() const { return line_number_; }
  std::size_t peakBufferedBytes() const { return peak_buffered_; }

 private:
  void line(std::string_view text, const Sink& sink);
  void csvHeader(std::string_view text);
  ImportRow csvRow(std::string_view text);
  ImportRow jsonRow(std::string_view text);
  void checkRow(ImportRow& row, std::string_view number) const;

  ImportFormat format_;
  std::vector<CardFormat> formats_;
  std::string partial_;  // the start of a line that a later piece ends
  bool overlong_ = false;
  std::size_t peak_buffered_ = 0;
  std::uint32_t line_number_ = 0;
  bool header_done_ = false;
  int holder_column_ = -1, number_column_ = -1;
  std::size_t columns_ = 0;
  std::optional<std::string> fatal_;
};

}  // namespace lostcard::cloud
