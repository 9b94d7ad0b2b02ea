#pragma once
// Digits drawn from strokes, in shapes real cards carry that no Debian font package has:
//  - kEmbossing: the embossers' font (Farrington 7B, ISO/IEC 7811's font for embossed card
//    numbers): a 6 like a "b" and a 9 like a "q", a 7 whose stroke turns into a straight stem, an
//    open 4, a flat-topped 5. kEmbossingFooted is the same with a footed 1 and a round-topped 3,
//    as some embossers stamp them.
//  - kSquare: the squared, wide print face some issuers print flat numbers in (every digit built
//    of straight strokes with rounded corners: a 4 like a "Ч", a 7 like a "ᒣ").
//
// createStrokeFont gives them as an OpenCV FreeType2, so that code written for Debian's fonts
// draws them unchanged: `putText` and `getTextSize` lay the digits out with the font's own
// advance; every other character (letters of a holder's name, "/" of an expiry date) is drawn
// by `fallback`. `loadFontData` is refused: the shapes are built in.
//
//   auto farrington = createStrokeFont(StrokeStyle::kEmbossing, ocr_b);
//   farrington->putText(img, "4000 1234", {20, 60}, 40, cv::Scalar::all(255), -1, cv::LINE_AA,
//                       true);  // as FreeType2: org is the baseline's left end
#include <opencv2/freetype.hpp>
#include <string>

namespace lostcard::cardgen {

enum class StrokeStyle { kEmbossing, kEmbossingFooted, kSquare };

// The name a renderer knows the style by ("Farrington", "Farrington-Footed", "Square").
std::string strokeFontName(StrokeStyle style);

cv::Ptr<cv::freetype::FreeType2> createStrokeFont(StrokeStyle style,
                                                  cv::Ptr<cv::freetype::FreeType2> fallback);

}  // namespace lostcard::cardgen
