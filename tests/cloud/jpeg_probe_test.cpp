#include "lostcard/cloud/jpeg_probe.hpp"

#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

using lostcard::cloud::probeJpeg;

namespace {

std::string encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> buf;
  REQUIRE(cv::imencode(ext, image, buf));
  return std::string(buf.begin(), buf.end());
}

// A minimal JPEG header: SOI, an APP0 segment, then a baseline SOF0 claiming the given size,
// and nothing else (no tables, no scan): a decoder would have to allocate width*height*3 bytes
// before finding out there is no data.
std::string craftedHeader(int width_px, int height_px) {
  std::string b = {'\xFF', '\xD8'};
  b += {'\xFF', '\xE0', 0x00, 0x10, 'J',  'F',  'I',  'F',  0x00,
        0x01,   0x01,   0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00};
  b += {'\xFF', '\xC0', 0x00, 0x11, 0x08};
  b += static_cast<char>(height_px >> 8);
  b += static_cast<char>(height_px & 0xFF);
  b += static_cast<char>(width_px >> 8);
  b += static_cast<char>(width_px & 0xFF);
  b += {0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01};
  return b;
}

}  // namespace

TEST_CASE("probeJpeg reads the size of a real JPEG") {
  const cv::Mat colour(480, 640, CV_8UC3, cv::Scalar(10, 200, 30));
  const auto info = probeJpeg(encode(colour, ".jpg"));
  REQUIRE(info);
  CHECK(info->width_px == 640);
  CHECK(info->height_px == 480);
  CHECK(info->components == 3);

  const cv::Mat grey(33, 17, CV_8UC1, cv::Scalar(128));
  const auto grey_info = probeJpeg(encode(grey, ".jpg"));
  REQUIRE(grey_info);
  CHECK(grey_info->width_px == 17);
  CHECK(grey_info->height_px == 33);
  CHECK(grey_info->components == 1);
}

TEST_CASE("probeJpeg reads a progressive JPEG's frame header") {
  const cv::Mat colour(100, 300, CV_8UC3, cv::Scalar(1, 2, 3));
  std::vector<uchar> buf;
  REQUIRE(cv::imencode(".jpg", colour, buf, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  const auto info = probeJpeg(std::string(buf.begin(), buf.end()));
  REQUIRE(info);
  CHECK(info->width_px == 300);
  CHECK(info->height_px == 100);
}

TEST_CASE("probeJpeg finds a huge claimed size from the header alone") {
  const auto info = probeJpeg(craftedHeader(50000, 50000));
  REQUIRE(info);
  CHECK(info->width_px == 50000);
  CHECK(info->height_px == 50000);
}

TEST_CASE("probeJpeg rejects what is not a JPEG header, with a reason") {
  std::string why;
  SECTION("empty") {
    CHECK_FALSE(probeJpeg("", &why));
    CHECK(why == "not a JPEG");
  }
  SECTION("garbage") {
    CHECK_FALSE(probeJpeg("this is not an image at all", &why));
    CHECK(why == "not a JPEG");
  }
  SECTION("a PNG") {
    const cv::Mat image(20, 20, CV_8UC3, cv::Scalar(0, 0, 0));
    CHECK_FALSE(probeJpeg(encode(image, ".png"), &why));
    CHECK(why == "not a JPEG");
  }
  SECTION("truncated inside a segment before the frame header") {
    const cv::Mat image(20, 20, CV_8UC3, cv::Scalar(0, 0, 0));
    const std::string jpeg = encode(image, ".jpg");
    CHECK_FALSE(probeJpeg(jpeg.substr(0, 10), &why));
    CHECK(why == "truncated segment");
  }
  SECTION("cut right after SOI") {
    CHECK_FALSE(probeJpeg(std::string("\xFF\xD8", 2), &why));
    CHECK(why == "truncated before the frame header");
  }
  SECTION("a scan before any frame header") {
    const std::string bytes("\xFF\xD8\xFF\xDA\x00\x02", 6);
    CHECK_FALSE(probeJpeg(bytes, &why));
    CHECK(why.find("scan before the frame header") != std::string::npos);
  }
  SECTION("garbage after SOI") {
    CHECK_FALSE(probeJpeg(std::string("\xFF\xD8garbage", 9), &why));
    CHECK(why.find("expected a marker") != std::string::npos);
  }
  SECTION("a zero-sized frame") {
    CHECK_FALSE(probeJpeg(craftedHeader(0, 100), &why));
    CHECK(why.find("no width or height") != std::string::npos);
  }
  SECTION("a bad segment length") {
    CHECK_FALSE(probeJpeg(std::string("\xFF\xD8\xFF\xE0\x00\x01", 6), &why));
    CHECK(why.find("bad segment length") != std::string::npos);
  }
}

TEST_CASE("probeJpeg never reads past the end of any prefix of a real JPEG") {
  const cv::Mat image(64, 96, CV_8UC3, cv::Scalar(90, 60, 30));
  const std::string jpeg = encode(image, ".jpg");
  const auto full = probeJpeg(jpeg);
  REQUIRE(full);
  // Every prefix either fails cleanly or (once it holds the frame header) gives the same size.
  for (std::size_t n = 0; n < jpeg.size(); ++n) {
    const std::string prefix = jpeg.substr(0, n);  // its own buffer, so overreads show in ASan
    const auto info = probeJpeg(prefix);
    if (info) {
      CHECK(info->width_px == 96);
      CHECK(info->height_px == 64);
    }
  }
}

TEST_CASE("endsWithEndOfImage tells a whole JPEG from one cut off") {
  using lostcard::cloud::endsWithEndOfImage;
  cv::Mat noise(120, 160, CV_8UC3);
  cv::randu(noise, 0, 255);
  const std::string jpeg = encode(noise, ".jpg");
  CHECK(endsWithEndOfImage(jpeg));
  CHECK(endsWithEndOfImage(jpeg + std::string(16, '\0')));  // padding after EOI is allowed
  CHECK_FALSE(endsWithEndOfImage(jpeg.substr(0, jpeg.size() / 2)));
  CHECK_FALSE(endsWithEndOfImage(jpeg.substr(0, jpeg.size() - 1)));
  CHECK_FALSE(endsWithEndOfImage(craftedHeader(640, 480)));
  // An EOI before the frame header (an embedded thumbnail's) does not count.
  CHECK_FALSE(endsWithEndOfImage(std::string("\xFF\xD8\xFF\xD9", 4) + craftedHeader(64, 48)));
}
