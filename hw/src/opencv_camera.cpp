#include "lostcard/hw/opencv_camera.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <system_error>
#include <utility>

#include "lostcard/wire/log.hpp"

namespace lostcard::hw {

namespace {
constexpr int kMaxFrames = 30;
}  // namespace

OpencvCamera::OpencvCamera(CameraConfig config)
    : config_(std::move(config)),
      front_{config_.front_device, nullptr},
      back_{config_.back_device, nullptr} {}

OpencvCamera::~OpencvCamera() = default;

std::string OpencvCamera::id() const {
  return fmt::format("v4l2:{},{}", config_.front_device, config_.back_device);
}

Status OpencvCamera::ensureOpen(Device& device) {
  if (device.capture && device.capture->isOpened()) {
    return Status::success();
  }
  device.capture.reset();
  // Checked first: OpenCV's own message for a missing device is a warning on stderr.
  std::error_code ec;
  if (!std::filesystem::exists(device.path, ec)) {
    return Status::failure(fmt::format("camera: {} not found", device.path));
  }
  auto capture = std::make_unique<cv::VideoCapture>();
  if (!capture->open(device.path, cv::CAP_V4L2)) {
    return Status::failure(fmt::format("camera: cannot open {} with V4L2", device.path));
  }
  capture->set(cv::CAP_PROP_FRAME_WIDTH, config_.width_px);
  capture->set(cv::CAP_PROP_FRAME_HEIGHT, config_.height_px);
  cv::Mat discard;
  for (int i = 0; i < config_.warmup_frames; ++i) {
    capture->read(discard);
  }
  wire::componentLogger("hw.camera")
      ->info("camera: opened {} at {}x{}", device.path,
             static_cast<int>(capture->get(cv::CAP_PROP_FRAME_WIDTH)),
             static_cast<int>(capture->get(cv::CAP_PROP_FRAME_HEIGHT)));
  device.capture = std::move(capture);
  return Status::success();
}

Result<std::vector<CapturedFrame>> OpencvCamera::capture(Face face, int frames) {
  using R = Result<std::vector<CapturedFrame>>;
  if (frames < 1 || frames > kMaxFrames) {
    return R::failure(fmt::format("camera: frames must be 1..{}, not {}", kMaxFrames, frames));
  }
  std::lock_guard lock(mutex_);
  Device& device = face == Face::kFront ? front_ : back_;
  if (Status s = ensureOpen(device); !s) {
    return R::failure(s.error());
  }
  std::vector<CapturedFrame> out;
  cv::Mat image;
  for (int i = 0; i < frames; ++i) {
    if (!device.capture->read(image) || image.empty()) {
      device.capture.reset();  // reopened on the next capture
      return R::failure(fmt::format("camera: {} returned no frame", device.path));
    }
    std::vector<uchar> jpeg;
    if (!cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, config_.jpeg_quality})) {
      return R::failure(fmt::format("camera: cannot encode a frame from {}", device.path));
    }
    out.push_back({std::string(jpeg.begin(), jpeg.end()), image.cols, image.rows});
  }
  return out;
}

}  // namespace lostcard::hw
