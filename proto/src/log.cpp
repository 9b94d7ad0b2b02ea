#include "lostcard/wire/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <mutex>

namespace lostcard::wire {

namespace {
std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> componentLogger(const std::string& component) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(component)) {
    return existing;
  }
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(component, sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  logger->set_level(g_level);
  spdlog::register_logger(logger);
  return logger;
}

void setLogLevel(std::string_view level) {
  std::lock_guard lock(g_mutex);
  g_level = spdlog::level::from_str(std::string(level));
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(g_level); });
}

std::string lastFourDigits(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    }
  }
  return digits.size() <= 4 ? digits : digits.substr(digits.size() - 4);
}

std::string maskedNumber(std::string_view number) {
  // Four digits or fewer are all of the number: show none of them.
  const auto digits = std::count_if(number.begin(), number.end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
  return digits <= 4 ? std::string("****") : "**** " + lastFourDigits(number);
}

}  // namespace lostcard::wire
