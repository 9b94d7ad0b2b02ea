#include "lostcard/fault_proxy/fault_control.hpp"

#include <charconv>

namespace lostcard::fault_proxy {
namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

bool parseInt(std::string_view text, std::int64_t& out) {
  const auto* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, out);
  return result.ec == std::errc() && result.ptr == end;
}

}  // namespace

ParsedFaultControl parseFaultControl(std::string_view text) {
  ParsedFaultControl parsed;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (const auto hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = trim(line);
    if (line.empty()) {
      continue;
    }
    const auto equals = line.find('=');
    std::int64_t value = 0;
    if (equals == std::string_view::npos || !parseInt(trim(line.substr(equals + 1)), value) ||
        value < 0) {
      parsed.problems.push_back("line " + std::to_string(line_number) +
                                ": want key = non-negative integer");
      continue;
    }
    const auto key = trim(line.substr(0, equals));
    if (key == "delay_ms") {
      parsed.control.delay_ms = value;
    } else if (key == "stall") {
      parsed.control.stall = value != 0;
    } else if (key == "refuse") {
      parsed.control.refuse = value != 0;
    } else if (key == "cut") {
      parsed.control.cut_generation = value;
    } else {
      parsed.problems.push_back("line " + std::to_string(line_number) + ": unknown key '" +
                                std::string(key) + "'");
    }
  }
  return parsed;
}

}  // namespace lostcard::fault_proxy
