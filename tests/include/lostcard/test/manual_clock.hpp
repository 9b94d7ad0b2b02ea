#pragma once
// A clock for tests that stands still until told to move: inject [&] { return clock.now(); }
// where the code under test asks the time, and advance() it across expiries and windows.
// Safe to read from other threads (a server's) while the test advances it.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace lostcard::test {

class ManualClock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start) : start_(start) {}

  std::chrono::system_clock::time_point now() const {
    return start_ + std::chrono::seconds(offset_s_.load());
  }
  void advance(std::chrono::seconds by) { offset_s_ += by.count(); }

 private:
  std::chrono::system_clock::time_point start_;
  std::atomic<std::int64_t> offset_s_{0};
};

}  // namespace lostcard::test
