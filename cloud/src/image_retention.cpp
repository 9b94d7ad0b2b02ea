#include "lostcard/cloud/image_retention.hpp"

#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {

ImageRetentionSweep::ImageRetentionSweep(Store& store, ImageRetentionOptions options)
    : store_(store), options_(std::move(options)) {}

ImageRetentionSweep::~ImageRetentionSweep() { stop(); }

void ImageRetentionSweep::start() {
  std::lock_guard lock(mutex_);
  if (!thread_.joinable()) {
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
  }
}

void ImageRetentionSweep::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

int ImageRetentionSweep::sweepOnce() {
  try {
    return store_.purgeDifficultImages(options_.clock(), options_.retention);
  } catch (const std::exception& e) {
    wire::componentLogger("cloud.retention")
        ->warn("deleting old photos of difficult cards failed (next try in {} s): {}",
               std::chrono::duration_cast<std::chrono::seconds>(options_.interval).count(),
               e.what());
    return -1;
  }
}

void ImageRetentionSweep::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    sweepOnce();
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

}  // namespace lostcard::cloud
