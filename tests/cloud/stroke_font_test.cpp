// The digits cardgen draws from strokes (lostcard/cardgen/stroke_font.hpp): they stand in for a
// FreeType2 font, so they must place text where FreeType would, and draw everything else with
// the font they fall back on.
#include "lostcard/cardgen/stroke_font.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>
#include <vector>

using lostcard::cardgen::createStrokeFont;
using lostcard::cardgen::StrokeStyle;

namespace {

const std::string kOcrB = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

cv::Ptr<cv::freetype::FreeType2> ocrB() {
  auto font = cv::freetype::createFreeType2();
  font->loadFontData(kOcrB, 0);
  return font;
}

// Where `font` inks `text` drawn at `org` on a black canvas.
cv::Rect inkBox(cv::freetype::FreeType2& font, const std::string& text, cv::Point org,
                int height_px, bool bottom_left_origin, cv::Mat* drawn = nullptr) {
  cv::Mat canvas(400, 1200, CV_8UC3, cv::Scalar::all(0));
  font.putText(canvas, text, org, height_px, cv::Scalar::all(255), -1, cv::LINE_AA,
               bottom_left_origin);
  cv::Mat gray;
  cv::cvtColor(canvas, gray, cv::COLOR_BGR2GRAY);
  if (drawn != nullptr) {
    *drawn = gray;
  }
  return cv::boundingRect(gray > 40);
}

// One digit alone, its ink scaled to 32 x 20 as a glyph is for the classifier.
cv::Mat glyphOf(cv::freetype::FreeType2& font, char digit) {
  cv::Mat drawn;
  const cv::Rect box = inkBox(font, std::string(1, digit), {100, 200}, 80, true, &drawn);
  cv::Mat glyph;
  cv::resize(drawn(box), glyph, {20, 32}, 0, 0, cv::INTER_AREA);
  return glyph;
}

}  // namespace

TEST_CASE("A stroke font lays out digits where a FreeType font would") {
  const StrokeStyle style =
      GENERATE(StrokeStyle::kEmbossing, StrokeStyle::kEmbossingFooted, StrokeStyle::kSquare);
  CAPTURE(lostcard::cardgen::strokeFontName(style));
  auto font = createStrokeFont(style, ocrB());
  auto reference = ocrB();
  const std::string text = "4556 7375 8689 9855";
  constexpr int kHeight = 40;
  for (const bool bottom_left_origin : {true, false}) {
    CAPTURE(bottom_left_origin);
    const cv::Rect ink = inkBox(*font, text, {50, 150}, kHeight, bottom_left_origin);
    const cv::Rect expected = inkBox(*reference, text, {50, 150}, kHeight, bottom_left_origin);
    // The baseline and the digits' height match OCR-B's within a few pixels.
    CHECK(std::abs(ink.br().y - expected.br().y) <= 2);
    CHECK(std::abs(ink.height - expected.height) <= 0.15 * kHeight);
    CHECK(std::abs(ink.x - expected.x) <= 0.15 * kHeight);
    // getTextSize measures what putText draws.
    int base_line = -1;
    const cv::Size size = font->getTextSize(text, kHeight, -1, &base_line);
    CHECK(base_line == 0);
    CHECK(std::abs(size.width - ink.width) <= 0.3 * kHeight);
    CHECK(std::abs(size.height - ink.height) <= 2);
  }
}

TEST_CASE("A stroke font's ten digits are ten different shapes") {
  const StrokeStyle style =
      GENERATE(StrokeStyle::kEmbossing, StrokeStyle::kEmbossingFooted, StrokeStyle::kSquare);
  CAPTURE(lostcard::cardgen::strokeFontName(style));
  auto font = createStrokeFont(style, ocrB());
  std::vector<cv::Mat> glyphs;
  for (char d = '0'; d <= '9'; ++d) {
    glyphs.push_back(glyphOf(*font, d));
  }
  // Mean difference over the glyph, in grey levels.
  const auto difference = [](const cv::Mat& a, const cv::Mat& b) {
    return cv::norm(a, b, cv::NORM_L1) / static_cast<double>(a.total());
  };
  double closest = 255;
  for (int a = 0; a < 10; ++a) {
    for (int b = a + 1; b < 10; ++b) {
      CAPTURE(a, b);
      // At least a stroke apart (the squared 8 and 9 differ by one short stroke).
      CHECK(difference(glyphs[a], glyphs[b]) > 8);
      closest = std::min(closest, difference(glyphs[a], glyphs[b]));
    }
  }
  if (style != StrokeStyle::kSquare) {
    // The embossers' 9 is their 6 turned (so a line read upside down can hold both): nearer
    // to it than any two digits are to each other.
    cv::Mat six_turned;
    cv::rotate(glyphs[6], six_turned, cv::ROTATE_180);
    CHECK(difference(six_turned, glyphs[9]) < closest / 2);
  }
}

TEST_CASE("A stroke font draws letters and signs with the font it falls back on") {
  auto font = createStrokeFont(StrokeStyle::kEmbossing, ocrB());
  auto reference = ocrB();
  cv::Mat ours;
  cv::Mat theirs;
  const cv::Rect a = inkBox(*font, "J", {60, 200}, 48, true, &ours);
  const cv::Rect b = inkBox(*reference, "J", {60, 200}, 48, true, &theirs);
  CHECK(a == b);
  CHECK(cv::countNonZero(ours != theirs) == 0);
  // Digits are its own: not OCR-B's.
  inkBox(*font, "7", {60, 200}, 48, true, &ours);
  inkBox(*reference, "7", {60, 200}, 48, true, &theirs);
  CHECK(cv::countNonZero(ours != theirs) > 50);
}

TEST_CASE("A stroke font loads no font file and needs a fallback") {
  auto font = createStrokeFont(StrokeStyle::kSquare, ocrB());
  CHECK_THROWS_AS(font->loadFontData(kOcrB, 0), std::logic_error);
  CHECK_THROWS_AS(createStrokeFont(StrokeStyle::kSquare, nullptr), std::invalid_argument);
  cv::Mat floats(40, 200, CV_32FC3, cv::Scalar::all(0));
  CHECK_THROWS_AS(
      font->putText(floats, "12", {10, 30}, 20, cv::Scalar::all(1), -1, cv::LINE_AA, true),
      std::invalid_argument);
}
