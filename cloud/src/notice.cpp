#include "lostcard/cloud/notice.hpp"

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace lostcard::cloud {

namespace {
std::string coordinate(double degrees) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6f", degrees);
  return buffer;
}

std::tm utcParts(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  return parts;
}

// "2024-05-01 12:00 UTC", for people.
std::string humanUtc(std::chrono::system_clock::time_point t) {
  const std::tm parts = utcParts(t);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M UTC", &parts);
  return buffer;
}
}  // namespace

std::string mapUrl(double latitude, double longitude) {
  const std::string lat = coordinate(latitude);
  const std::string lon = coordinate(longitude);
  return "https://www.openstreetmap.org/?mlat=" + lat + "&mlon=" + lon + "#map=18/" + lat + "/" +
         lon;
}

std::string formatRfc3339Utc(std::chrono::system_clock::time_point t) {
  const std::tm parts = utcParts(t);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buffer;
}

std::string noticeText(const NoticeInput& in) {
  const auto& kiosk = in.kiosk;
  const std::string card =
      in.issuer_name.empty() ? "Your card" : "Your " + in.issuer_name + " card";
  std::string text;
  text += (in.holder_name.empty() ? "Hello" : "Hello " + in.holder_name) + ",\n";
  text += card + " ending in " + in.card_last4 +
          " was found and is kept safe in the lostcard box \"" + kiosk.name() + "\".\n";
  text += "Where: " + kiosk.address() + " (" + coordinate(kiosk.latitude()) + ", " +
          coordinate(kiosk.longitude()) + ")\n";
  text += "Map: " + mapUrl(kiosk.latitude(), kiosk.longitude()) + "\n";
  text += "Opening hours: " +
          (kiosk.opening_hours().empty() ? std::string("as posted on the box")
                                         : kiosk.opening_hours()) +
          "\n";
  text += "Pickup code: " + in.pickup_code + " (valid until " +
          humanUtc(in.pickup_code_expires_at) + ")\n";
  const std::string slot_number = std::to_string(in.slot + 1);
  text += "How to collect: enter the slot number " + slot_number +
          " and then type the code on the box's keypad; slot " + slot_number +
          " opens. Take your card and close the slot.\n";
  text += "The code works once and only for this card. Nobody from lostcard will ask you for it.";
  return text;
}

lostcard::v1::RetrievalNotice buildNotice(const NoticeInput& in) {
  lostcard::v1::RetrievalNotice notice;
  notice.set_notice_id(in.notice_id);
  notice.set_deposit_id(in.deposit_id);
  notice.set_holder_name(in.holder_name);
  notice.set_card_last4(in.card_last4);
  notice.set_issuer_name(in.issuer_name);
  *notice.mutable_kiosk() = in.kiosk;
  notice.set_pickup_code(in.pickup_code);
  notice.set_pickup_code_expires_at(formatRfc3339Utc(in.pickup_code_expires_at));
  notice.set_message(noticeText(in));
  notice.set_map_url(mapUrl(in.kiosk.latitude(), in.kiosk.longitude()));
  notice.set_stored_at(formatRfc3339Utc(in.stored_at));
  notice.set_slot_number(in.slot + 1);
  return notice;
}

std::string noticeToJson(const lostcard::v1::RetrievalNotice& notice) {
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(notice, &json);
  if (!status.ok()) {
    // Only a malformed message can fail here, which buildNotice never makes.
    throw std::logic_error("notice: cannot encode as JSON: " + status.ToString());
  }
  return json;
}

std::optional<lostcard::v1::RetrievalNotice> noticeFromJson(std::string_view json) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  lostcard::v1::RetrievalNotice notice;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &notice, options);
  if (!status.ok()) {
    return std::nullopt;
  }
  return notice;
}

}  // namespace lostcard::cloud
