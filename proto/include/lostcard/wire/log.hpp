#pragma once
// One spdlog logger per component ("cloud.gateway", "kiosk.intake", ...), all writing to the
// same sink so a daemon's log reads as one stream.
//
//   auto log = lostcard::wire::componentLogger("kiosk.uplink");
//   log->info("connected to {}", endpoint);
//
// A card number never reaches a log line: log the deposit id and at most maskedNumber().
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace lostcard::wire {

std::shared_ptr<spdlog::logger> componentLogger(const std::string& component);

// Sets the level of every component logger ("trace" ... "off").
void setLogLevel(std::string_view level);

// At most the last four digits of `text`, other characters ignored: the most of a card number
// that may be shown, logged or stored.
std::string lastFourDigits(std::string_view text);

// "**** 1234" for any digit string: only the last four digits survive.
std::string maskedNumber(std::string_view number);

}  // namespace lostcard::wire
