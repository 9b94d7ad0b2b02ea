#pragma once
// The retrieval notice a holder receives when their card is stored in a box: where the box is,
// when it is open, which code to type and until when. Pure: no I/O, the times are passed in.
//
//   NoticeInput in;
//   in.notice_id = ...; in.kiosk = place; in.slot = 7; in.pickup_code = "123-456-7890"; ...
//   lostcard::v1::RetrievalNotice notice = buildNotice(in);
//   std::string json = noticeToJson(notice);   // protobuf's canonical JSON mapping
//
// The card number is never an input: only its last four digits.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lostcard/v1/notice.pb.h"

namespace lostcard::cloud {

struct NoticeInput {
  std::string notice_id;
  std::string deposit_id;
  std::string holder_name;
  std::string card_last4;
  std::string issuer_name;
  lostcard::v1::KioskPlace kiosk;
  // 0-based slot index, as in the protocol; the text shows the label on the box's door, which
  // counts from 1.
  std::uint32_t slot = 0;
  std::string pickup_code;
  std::chrono::system_clock::time_point pickup_code_expires_at;
  std::chrono::system_clock::time_point stored_at;
};

lostcard::v1::RetrievalNotice buildNotice(const NoticeInput& input);

// The ready-to-show text of the notice (RetrievalNotice.message).
std::string noticeText(const NoticeInput& input);

// https://www.openstreetmap.org/?mlat=<lat>&mlon=<lon>#map=18/<lat>/<lon>
std::string mapUrl(double latitude, double longitude);

// "2024-05-01T12:00:00Z"
std::string formatRfc3339Utc(std::chrono::system_clock::time_point t);

// Protobuf's canonical JSON (lowerCamelCase names: "pickupCode", "cardLast4"), as stored in
// the outbox and POSTed.
std::string noticeToJson(const lostcard::v1::RetrievalNotice& notice);
// Parses a notice (either field naming); unknown fields are ignored. std::nullopt when `json` is
// not a notice.
std::optional<lostcard::v1::RetrievalNotice> noticeFromJson(std::string_view json);

// The JSON field that holds the pickup code, cleared from the outbox once delivered.
inline constexpr const char* kPickupCodeJsonField = "pickupCode";

}  // namespace lostcard::cloud
