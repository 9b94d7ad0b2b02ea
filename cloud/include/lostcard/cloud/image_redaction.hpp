#pragma once
// What the cloud keeps of a difficult card's photos, before they are sealed (image_vault.hpp):
// each frame with the card cut out and straightened where its outline is found, and the band
// of the back that holds the signature panel and the security code (CVV) blacked out.
//
//   RedactedCard kept = redactForKeeping(images, numberFaceOf(reading), limits);
//   for (const KeptFrame& f : kept.frames) { store(vault.seal(f.jpeg, deposit_id)); }
//
// Which face is the back is not always known: a card lies either face up, and an unreadable
// card tells nothing. So the band is blacked out on EVERY face except the one the number was
// read on (when it was read on exactly one face), and in BOTH orientations, upright and turned
// 180 degrees, since a straightened card may lie either way up. The price: on a face blacked
// out both ways the middle of the card (where the number line of an embossed card sits) is
// black too; the operator has the card itself in the bin. Amex-style codes printed on the front
// are not covered (the number's face is kept whole).
//
// A frame that needs the blackout but whose card outline is not found (and that is not itself
// a tight crop of the card) is not kept: the band cannot be located in it. Frames that fail the
// image limits or do not decode are not kept either (nothing is decoded beyond the limits).
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lostcard/cloud/recognition.hpp"

namespace lostcard::cloud {

enum class CardFace { kFront, kBack };

// "front" or "back".
const char* faceName(CardFace face);

// The ID-1 card's back (ISO/IEC 7810: 85.60 x 53.98 mm): below the magnetic stripe (which ends
// about 16 mm from the top edge) runs the signature panel, about 19-28 mm from the top edge on
// payment cards, with the security code printed on it or in a box beside it. The band covers
// that with a margin, across the whole width.
inline constexpr double kCardHeightMm = 53.98;
inline constexpr double kSignatureBandTopMm = 15.5;
inline constexpr double kSignatureBandBottomMm = 29.0;
// Kept frames are JPEGs of this quality; the band is widened to whole 16-row JPEG blocks so it
// stays black after encoding.
inline constexpr int kKeptJpegQuality = 90;
inline constexpr int kJpegBlockRows = 16;

// The rows of an image of a card `height_px` tall that the blackout covers: the band upright
// and turned 180 degrees, widened to whole JPEG blocks. Ascending, not overlapping.
std::vector<cv::Range> signatureBandRows(int height_px);

// Blacks out signatureBandRows() across the whole width of `card` (a straightened card, or a
// photo that is a tight crop of one), in place.
void blackOutSignatureBand(cv::Mat& card);

struct KeptFrame {
  CardFace face = CardFace::kFront;
  int index = 0;              // the frame's position within its face, from 0
  bool straightened = false;  // the card cut out of the photo; else the photo as received
  bool blacked_out = false;   // the signature band was blacked out
  std::string jpeg;           // the frame as kept, re-encoded
};

struct FrameNotKept {
  CardFace face = CardFace::kFront;
  int index = 0;
  std::string why;  // never a number
};

struct RedactedCard {
  std::vector<KeptFrame> frames;
  std::vector<FrameNotKept> not_kept;
};

// Every frame of `images` as it may be kept. `number_face`: the face the number was read on,
// when it was read on exactly one; nullopt blacks out every face. Never throws for bad images;
// throws std::runtime_error only when encoding a decoded image fails.
RedactedCard redactForKeeping(const CardImages& images, std::optional<CardFace> number_face,
                              const ImageLimits& limits);

// The face `reading` found a checked number on, when it was exactly one face (whatever the
// outcome: a card with conflicting numbers still shows them on that face). No face, or both,
// gives nullopt, which blacks out every face (the safe side).
std::optional<CardFace> numberFaceOf(const CardReading& reading);

}  // namespace lostcard::cloud
