#include "lostcard/hw/log_display.hpp"

#include "lostcard/wire/log.hpp"

namespace lostcard::hw {

LogDisplay::LogDisplay() : log_(wire::componentLogger("hw.display")) {}

void LogDisplay::show(const std::string& text) {
  std::lock_guard lock(mutex_);
  if (text == last_text_) {
    log_->debug("display: \"{}\"", text);
    return;
  }
  last_text_ = text;
  log_->info("display: \"{}\"", text);
}

std::string LogDisplay::lastText() {
  std::lock_guard lock(mutex_);
  return last_text_;
}

}  // namespace lostcard::hw
