#pragma once
// The box's two cameras (above and below the glass tray) through OpenCV's V4L2 backend.
//
//   OpencvCamera camera(config.cameras);           // opens nothing yet
//   auto frames = camera.capture(Face::kFront, 3);  // opens /dev/video0 on first use
//   if (!frames) { log->warn("{}", frames.error()); }   // "camera: /dev/video0 not found"
//
// Each device is opened on first use with the configured resolution, and a few warm-up frames
// are dropped while exposure settles. A device that fails to deliver a frame is closed, so the
// next capture reopens it (USB cameras come and go). Frames are JPEG-encoded with cv::imencode.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lostcard/hw/board.hpp"
#include "lostcard/hw/devices.hpp"

namespace cv {
class VideoCapture;
}

namespace lostcard::hw {

class OpencvCamera final : public Camera {
 public:
  explicit OpencvCamera(CameraConfig config);
  ~OpencvCamera() override;

  Result<std::vector<CapturedFrame>> capture(Face face, int frames) override;
  std::string id() const override;

 private:
  struct Device {
    std::string path;
    std::unique_ptr<cv::VideoCapture> capture;
  };
  Status ensureOpen(Device& device);

  CameraConfig config_;
  std::mutex mutex_;
  Device front_;
  Device back_;
};

}  // namespace lostcard::hw
