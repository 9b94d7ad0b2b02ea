// What a difficult card keeps of its photos: straightened, the signature band (with the
// security code) blacked out on every face but the number's, both ways up; frames that cannot
// be redacted are not kept.
#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "lostcard/cardgen/card_renderer.hpp"
#include "lostcard/cloud/image_redaction.hpp"
#include "lostcard/cloud/recognition_stages.hpp"

using namespace lostcard::cloud;
using lostcard::cardgen::CardPhotos;
using lostcard::cardgen::CardRenderer;
using lostcard::cardgen::CardSpec;
using lostcard::cardgen::cardSeed;

namespace {

std::string jpeg(const cv::Mat& image, int quality = 90) {
  std::vector<unsigned char> out;
  REQUIRE(cv::imencode(".jpg", image, out, {cv::IMWRITE_JPEG_QUALITY, quality}));
  return std::string(out.begin(), out.end());
}

cv::Mat decode(const std::string& bytes) {
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat image = cv::imdecode(raw, cv::IMREAD_COLOR);
  REQUIRE_FALSE(image.empty());
  return image;
}

double maxIn(const cv::Mat& image, const cv::Range& rows) {
  cv::Mat gray;
  cv::cvtColor(image.rowRange(rows), gray, cv::COLOR_BGR2GRAY);
  double lo = 0, hi = 0;
  cv::minMaxLoc(gray, &lo, &hi);
  return hi;
}

// The security code box of the easy preset's back, in straightened card pixels (upright; the
// card may lie either way up, so both placements are checked).
const cv::Rect kCodeBox(625, 180, 95, 52);

CardPhotos renderCard(const std::string& name, const std::string& number) {
  static CardRenderer renderer;
  return renderer.render(CardSpec{name, number}, cardSeed(11, name));
}

}  // namespace

TEST_CASE("the band covers the signature panel both ways up, in whole JPEG blocks") {
  const auto rows = signatureBandRows(kCardHeightPx);
  REQUIRE_FALSE(rows.empty());
  const int top = rows.front().start;
  const int bottom = rows.back().end;
  // Upright: 15.5..29 mm of 53.98 mm; turned: 24.98..38.48 mm. At 10 px/mm, widened to blocks.
  CHECK(top <= 155);
  CHECK(bottom >= 385);
  CHECK(top % kJpegBlockRows == 0);
  CHECK(bottom % kJpegBlockRows == 0);
  // The easy card's code box, upright and turned.
  CHECK(top <= kCodeBox.y);
  CHECK(bottom >= kCardHeightPx - kCodeBox.y);
  // The card's top and bottom edges (issuer name, logos) stay visible.
  CHECK(top > 100);
  CHECK(bottom < kCardHeightPx - 100);
  CHECK(signatureBandRows(0).empty());
}

TEST_CASE("blackOutSignatureBand zeroes exactly the band") {
  cv::Mat card(kCardHeightPx, kCardWidthPx, CV_8UC3, cv::Scalar(200, 220, 240));
  blackOutSignatureBand(card);
  const auto rows = signatureBandRows(card.rows);
  for (int y = 0; y < card.rows; ++y) {
    bool in_band = false;
    for (const auto& r : rows) {
      in_band = in_band || (y >= r.start && y < r.end);
    }
    cv::Mat gray;
    cv::cvtColor(card.row(y), gray, cv::COLOR_BGR2GRAY);
    if (in_band) {
      REQUIRE(cv::countNonZero(gray) == 0);
    } else {
      REQUIRE(cv::countNonZero(gray) == card.cols);
    }
  }
}

TEST_CASE("a difficult card's frames are straightened and blacked out on every face") {
  const CardPhotos photos = renderCard("redact-both", "");
  CardImages images;
  images.front_jpegs = {jpeg(photos.front)};
  images.back_jpegs = {jpeg(photos.back), jpeg(photos.back, 60)};

  const RedactedCard kept = redactForKeeping(images, std::nullopt, ImageLimits{});
  CHECK(kept.not_kept.empty());
  REQUIRE(kept.frames.size() == 3);
  CHECK(kept.frames[0].face == CardFace::kFront);
  CHECK(kept.frames[1].face == CardFace::kBack);
  CHECK(kept.frames[2].index == 1);
  for (const auto& frame : kept.frames) {
    CHECK(frame.straightened);
    CHECK(frame.blacked_out);
    const cv::Mat image = decode(frame.jpeg);
    CHECK(image.cols == kCardWidthPx);
    CHECK(image.rows == kCardHeightPx);
    // The band is still black after JPEG encoding (whole blocks), the rest of the card is not.
    for (const auto& rows : signatureBandRows(image.rows)) {
      CHECK(maxIn(image, rows) <= 8);
    }
    CHECK(maxIn(image, cv::Range(0, 100)) > 100);
  }
  // The security code's box sits in the band whichever way up the card lay.
  const cv::Mat back = decode(kept.frames[1].jpeg);
  cv::Mat upright_box;
  cv::cvtColor(back(kCodeBox), upright_box, cv::COLOR_BGR2GRAY);
  const cv::Rect turned(kCardWidthPx - kCodeBox.br().x, kCardHeightPx - kCodeBox.br().y,
                        kCodeBox.width, kCodeBox.height);
  cv::Mat turned_box;
  cv::cvtColor(back(turned), turned_box, cv::COLOR_BGR2GRAY);
  CHECK(cv::mean(upright_box)[0] < 4);
  CHECK(cv::mean(turned_box)[0] < 4);
}

TEST_CASE("the face the number was read on is kept whole") {
  const CardPhotos photos = renderCard("redact-front", "4539148803436467");
  CardImages images;
  images.front_jpegs = {jpeg(photos.front)};
  images.back_jpegs = {jpeg(photos.back)};
  const CardFace number_face = photos.traits.back_up ? CardFace::kBack : CardFace::kFront;

  const RedactedCard kept = redactForKeeping(images, number_face, ImageLimits{});
  REQUIRE(kept.frames.size() == 2);
  for (const auto& frame : kept.frames) {
    CHECK(frame.straightened);
    CHECK(frame.blacked_out == (frame.face != number_face));
    const cv::Mat image = decode(frame.jpeg);
    const double band_max = maxIn(image, cv::Range(300, 380));
    if (frame.face == number_face) {
      CHECK(band_max > 100);  // the number line is there to be read by an operator
    } else {
      CHECK(band_max <= 8);
    }
  }
}

TEST_CASE("frames that cannot be redacted are not kept") {
  const CardPhotos photos = renderCard("redact-bad", "");
  CardImages images;
  // A photo with no card in it: nothing to straighten, no band to find.
  const cv::Mat empty_tray(960, 1280, CV_8UC3, cv::Scalar(60, 60, 60));
  images.front_jpegs = {jpeg(empty_tray), "not a jpeg"};
  std::string cut = jpeg(photos.back);
  cut.resize(cut.size() / 2);
  images.back_jpegs = {cut, jpeg(photos.back)};
  ImageLimits limits;

  SECTION("on a face to black out") {
    const RedactedCard kept = redactForKeeping(images, std::nullopt, limits);
    REQUIRE(kept.frames.size() == 1);
    CHECK(kept.frames[0].face == CardFace::kBack);
    CHECK(kept.frames[0].index == 1);
    REQUIRE(kept.not_kept.size() == 3);
    CHECK(kept.not_kept[0].why.find("no card outline") != std::string::npos);
    CHECK(kept.not_kept[2].why.find("cut off") != std::string::npos);
  }
  SECTION("the number's face keeps a photo without an outline as received") {
    const RedactedCard kept = redactForKeeping(images, CardFace::kFront, limits);
    REQUIRE(kept.frames.size() == 2);
    CHECK_FALSE(kept.frames[0].straightened);
    CHECK_FALSE(kept.frames[0].blacked_out);
    CHECK(decode(kept.frames[0].jpeg).cols == 1280);
  }
  SECTION("over the size limits nothing is decoded") {
    limits.max_width_px = 1000;
    const RedactedCard kept = redactForKeeping(images, std::nullopt, limits);
    CHECK(kept.frames.empty());
    CHECK(kept.not_kept.size() == 4);
  }
}

TEST_CASE("a tight crop of the card is blacked out as it is") {
  cv::Mat crop(1080, 1712, CV_8UC3, cv::Scalar(230, 230, 230));
  CardImages images;
  images.back_jpegs = {jpeg(crop)};
  const RedactedCard kept = redactForKeeping(images, CardFace::kFront, ImageLimits{});
  REQUIRE(kept.frames.size() == 1);
  const cv::Mat image = decode(kept.frames[0].jpeg);
  CHECK(kept.frames[0].blacked_out);
  for (const auto& rows : signatureBandRows(image.rows)) {
    CHECK(maxIn(image, rows) <= 8);
  }
  CHECK(maxIn(image, cv::Range(0, 200)) > 200);
}

TEST_CASE("numberFaceOf names the one face a number was read on, else says nothing") {
  CardReading r;
  r.outcome = ReadOutcome::kRead;
  r.number_faces = {"front"};
  CHECK(numberFaceOf(r) == CardFace::kFront);
  r.number_faces = {"back"};
  CHECK(numberFaceOf(r) == CardFace::kBack);
  r.outcome = ReadOutcome::kUnreadable;
  CHECK(numberFaceOf(r) == CardFace::kBack);
  r.number_faces = {"back", "front"};
  CHECK_FALSE(numberFaceOf(r));
  r.number_faces.clear();
  CHECK_FALSE(numberFaceOf(r));
  r.number_faces = {"side"};
  CHECK_FALSE(numberFaceOf(r));
}
