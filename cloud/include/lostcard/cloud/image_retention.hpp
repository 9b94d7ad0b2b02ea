#pragma once
// Deletes the photos kept of difficult cards once they are older than the retention period: a
// thread that calls Store::purgeDifficultImages(clock(), retention) at start and then every
// `interval`, until stop(). Every cloud node may run one; the deletes do not conflict.
//
//   ImageRetentionSweep sweep(store, {.retention = std::chrono::days(30)});
//   sweep.start();
//   ...
//   sweep.stop();   // also done by the destructor
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "lostcard/cloud/store.hpp"

namespace lostcard::cloud {

struct ImageRetentionOptions {
  std::chrono::hours retention{24 * 30};
  std::chrono::milliseconds interval{std::chrono::hours(1)};
  // The time the retention is measured at (injected for tests).
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

class ImageRetentionSweep {
 public:
  ImageRetentionSweep(Store& store, ImageRetentionOptions options);
  ~ImageRetentionSweep();
  ImageRetentionSweep(const ImageRetentionSweep&) = delete;
  ImageRetentionSweep& operator=(const ImageRetentionSweep&) = delete;

  void start();
  // Returns once the sweep in hand (if any) is done.
  void stop();

  // One sweep now, on the caller's thread; returns how many photos were deleted. Database
  // errors are logged and give -1 (the next sweep tries again).
  int sweepOnce();

 private:
  void run();

  Store& store_;
  ImageRetentionOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace lostcard::cloud
