#include "lostcard/cloud/card_import.hpp"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::cloud {

namespace {

constexpr std::size_t kMaxHolderIdBytes = 200;
// What Store::enrollCard accepts, whatever the formats say.
constexpr std::size_t kMinDigits = 8;
constexpr std::size_t kMaxDigits = 19;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// The fields of one RFC 4180 line (without its line break); nullopt when a quote is not closed
// or text follows a closing quote.
std::optional<std::vector<std::string>> splitCsv(std::string_view line) {
  std::vector<std::string> fields;
  std::size_t i = 0;
  while (true) {
    std::string field;
    // Spaces before an opening quote are tolerated (and dropped).
    std::size_t j = i;
    while (j < line.size() && line[j] == ' ') {
      ++j;
    }
    if (j < line.size() && line[j] == '"') {
      i = j + 1;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (!closed) {
        return std::nullopt;
      }
      while (i < line.size() && line[i] == ' ') {
        ++i;
      }
      if (i < line.size() && line[i] != ',') {
        return std::nullopt;
      }
    } else {
      const auto comma = line.find(',', i);
      const auto end = comma == std::string_view::npos ? line.size() : comma;
      field = std::string(trim(line.substr(i, end - i)));
      if (field.find('"') != std::string::npos) {
        return std::nullopt;
      }
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) {
      return fields;
    }
    ++i;  // the comma
  }
}

bool printableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

const char* checkName(CheckRule rule) {
  switch (rule) {
    case CheckRule::kLuhn:
      return "Luhn";
    case CheckRule::kIso7064Mod11_2:
      return "ISO 7064 MOD 11-2";
    default:
      return "check";
  }
}

}  // namespace

std::optional<ImportFormat> importFormatFromContentType(std::string_view content_type) {
  const auto type = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (type == "text/csv") {
    return ImportFormat::kCsv;
  }
  if (type == "application/x-ndjson" || type == "application/jsonl") {
    return ImportFormat::kNdjson;
  }
  return std::nullopt;
}

bool checkCardNumber(const std::vector<CardFormat>& formats, std::string_view number,
                     std::string* digits, std::string* last4, std::string* code,
                     std::string* reason) {
  *digits = cardDigits(number);
  if (digits->empty()) {
    *code = "bad_number";
    *reason = number.empty() ? "no card number"
                             : "the number is not digits (spaces or dashes between them allowed)";
    return false;
  }
  if (digits->size() >= 4) {
    *last4 = digits->substr(digits->size() - 4);
  }
  const auto length = digits->size();
  const bool length_known = length >= kMinDigits && length <= kMaxDigits &&
                            std::any_of(formats.begin(), formats.end(), [&](const CardFormat& f) {
                              return length >= f.min_length && length <= f.max_length;
                            });
  if (!length_known) {
    *code = "wrong_length";
    *reason = std::to_string(length) + " digits: no card format has that length";
    digits->clear();
    return false;
  }
  if (matchFormat(formats, *digits) != nullptr) {
    return true;
  }
  // Which rule failed: the check digit of a format of this length, or (the check passing) its
  // prefix.
  const CardFormat* same_length = nullptr;
  for (const auto& f : formats) {
    if (length >= f.min_length && length <= f.max_length) {
      if (passesCheck(f.check, *digits)) {
        *code = "unknown_prefix";
        *reason = "no card format of " + std::to_string(length) + " digits has this prefix";
        digits->clear();
        return false;
      }
      same_length = same_length != nullptr ? same_length : &f;
    }
  }
  *code = "check_digit";
  *reason = std::string("the check digit is wrong (") + checkName(same_length->check) + ")";
  digits->clear();
  return false;
}

CardImportParser::CardImportParser(ImportFormat format, std::vector<CardFormat> formats)
    : format_(format), formats_(std::move(formats)) {
  partial_.reserve(kMaxLineBytes);
}

void CardImportParser::feed(std::string_view piece, const Sink& sink) {
  while (!piece.empty() && !fatal_) {
    const auto newline = piece.find('\n');
    const auto chunk = piece.substr(0, newline);
    if (newline == std::string_view::npos) {
      // The line goes on in the next piece: keep its start, up to the limit.
      if (!overlong_ && partial_.size() + chunk.size() <= kMaxLineBytes) {
        partial_.append(chunk);
        peak_buffered_ = std::max(peak_buffered_, partial_.size());
      } else {
        overlong_ = true;
        partial_.clear();
      }
      return;
    }
    if (partial_.empty() && !overlong_) {
      line(chunk, sink);  // the whole line is in this piece: no copy
    } else if (!overlong_ && partial_.size() + chunk.size() <= kMaxLineBytes) {
      partial_.append(chunk);
      peak_buffered_ = std::max(peak_buffered_, partial_.size());
      line(partial_, sink);
    } else {
      overlong_ = true;
      line({}, sink);
    }
    partial_.clear();
    overlong_ = false;
    piece.remove_prefix(newline + 1);
  }
}

void CardImportParser::finish(const Sink& sink) {
  if (!fatal_ && (!partial_.empty() || overlong_)) {
    line(overlong_ ? std::string_view() : std::string_view(partial_), sink);
    partial_.clear();
    overlong_ = false;
  }
  if (!fatal_ && format_ == ImportFormat::kCsv && !header_done_) {
    fatal_ = "the body is empty: a CSV body starts with the header row holder_id,number";
  }
}

void CardImportParser::line(std::string_view text, const Sink& sink) {
  ++line_number_;
  if (overlong_) {
    if (format_ == ImportFormat::kCsv && !header_done_) {
      fatal_ = "line 1: the header row is longer than " + std::to_string(kMaxLineBytes) + " bytes";
      return;
    }
    ImportRow row;
    row.line = line_number_;
    row.code = "line_too_long";
    row.reason = "the line is longer than " + std::to_string(kMaxLineBytes) + " bytes";
    sink(std::move(row));
    return;
  }
  if (!text.empty() && text.back() == '\r') {
    text.remove_suffix(1);
  }
  if (line_number_ == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") {
    text.remove_prefix(3);  // a UTF-8 byte order mark, as spreadsheets write
  }
  if (trim(text).empty()) {
    return;
  }
  if (format_ == ImportFormat::kCsv) {
    if (!header_done_) {
      csvHeader(text);
      return;
    }
    sink(csvRow(text));
  } else {
    sink(jsonRow(text));
  }
}

void CardImportParser::csvHeader(std::string_view text) {
  header_done_ = true;
  const auto fields = splitCsv(text);
  const std::string at = "line " + std::to_string(line_number_) + ": ";
  if (!fields) {
    fatal_ = at + "the header row is not valid CSV";
    return;
  }
  for (std::size_t i = 0; i < fields->size(); ++i) {
    const auto name = lower((*fields)[i]);
    int* column = name == "holder_id" ? &holder_column_
                  : name == "number"  ? &number_column_
                                      : nullptr;
    if (column == nullptr) {
      // The name is quoted only when it holds no digit: a data row sent without its header
      // would otherwise echo a card number.
      const auto& field = (*fields)[i];
      const bool has_digit =
          std::any_of(field.begin(), field.end(), [](unsigned char c) { return std::isdigit(c); });
      fatal_ = at + "unknown column " +
               (has_digit ? std::to_string(i + 1) : "'" + field.substr(0, 40) + "'") +
               " (the columns are holder_id and number)";
      return;
    }
    if (*column >= 0) {
      fatal_ = at + "column '" + name + "' appears twice";
      return;
    }
    *column = static_cast<int>(i);
  }
  if (holder_column_ < 0 || number_column_ < 0) {
    fatal_ = at + "the header row must name the columns holder_id and number";
    return;
  }
  columns_ = fields->size();
}

ImportRow CardImportParser::csvRow(std::string_view text) {
  ImportRow row;
  row.line = line_number_;
  const auto fields = splitCsv(text);
  if (!fields || fields->size() != columns_) {
    row.code = "malformed_row";
    row.reason = !fields ? "not a valid CSV row (a quote is not closed)"
                         : "expected " + std::to_string(columns_) + " fields, found " +
                               std::to_string(fields->size());
    return row;
  }
  row.holder_id = (*fields)[holder_column_];
  checkRow(row, (*fields)[number_column_]);
  return row;
}

ImportRow CardImportParser::jsonRow(std::string_view text) {
  ImportRow row;
  row.line = line_number_;
  v1::EnrollmentRow message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  // protobuf's error text may quote the input (the number): only a fixed sentence is kept.
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(text.data(), text.size()), &message, options)
           .ok()) {
    row.code = "malformed_row";
    row.reason =
        R"(not a JSON object {"holder_id": "...", "number": "..."} with string values and no other field)";
    return row;
  }
  row.holder_id = message.holder_id();
  checkRow(row, message.number());
  return row;
}

void CardImportParser::checkRow(ImportRow& row, std::string_view number) const {
  std::string digits, last4, code, reason;
  const bool number_ok = checkCardNumber(formats_, number, &digits, &last4, &code, &reason);
  row.last4 = last4;
  if (row.holder_id.empty()) {
    row.code = "missing_holder";
    row.reason = "no holder id";
  } else if (row.holder_id.size() > kMaxHolderIdBytes || !printableAscii(row.holder_id)) {
    row.code = "bad_holder_id";
    row.reason = "a holder id is 1 to 200 printable ASCII characters";
  } else if (!number_ok) {
    row.code = code;
    row.reason = reason;
  } else {
    row.digits = std::move(digits);
  }
  if (!row.ok()) {
    row.holder_id.clear();
  }
}

}  // namespace lostcard::cloud
