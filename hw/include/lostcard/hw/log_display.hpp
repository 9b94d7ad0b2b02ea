#pragma once
// A Display that writes what the box would show to the log ("hw.display"), until the front
// panel has a driver. Repeats of the same text are logged at debug level only.
//
//   LogDisplay display;
//   display.show("Thank you! Your card is safe.");
#include <memory>
#include <mutex>
#include <string>

#include "lostcard/hw/devices.hpp"

namespace spdlog {
class logger;
}

namespace lostcard::hw {

class LogDisplay final : public Display {
 public:
  LogDisplay();
  void show(const std::string& text) override;
  std::string lastText();

 private:
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;
  std::string last_text_;
};

}  // namespace lostcard::hw
