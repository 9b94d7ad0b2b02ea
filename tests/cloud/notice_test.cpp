#include "lostcard/cloud/notice.hpp"

#include <catch2/catch.hpp>
#include <regex>
#include <string>

using namespace lostcard::cloud;
using namespace std::chrono_literals;

namespace {
// A card number the notice must never show more than the last four digits of.
constexpr const char* kCardNumber = "5500005555554242";

NoticeInput sampleInput() {
  NoticeInput in;
  in.notice_id = "6f1c1f0e-2b1a-4c1e-9a39-1c2d3e4f5a6b";
  in.deposit_id = "0b7e7c55-3c1f-4f9e-8a53-0d5c0e2b9f11";
  in.holder_name = "Ada Lovelace";
  in.card_last4 = std::string(kCardNumber).substr(12);
  in.issuer_name = "Northwind Bank";
  in.kiosk.set_kiosk_id("kiosk-zrh-hb");
  in.kiosk.set_name("Zurich Main Station, west hall");
  in.kiosk.set_address("Bahnhofplatz 1, 8001 Zurich");
  in.kiosk.set_latitude(47.378177);
  in.kiosk.set_longitude(8.540192);
  in.kiosk.set_opening_hours("Mo-Su 05:00-24:00");
  in.slot = 7;  // the door labelled 8
  in.pickup_code = "314-159-2653";
  // 2024-05-01T12:00:00Z, and the code for 14 days.
  in.stored_at = std::chrono::system_clock::time_point(1714564800s);
  in.pickup_code_expires_at = in.stored_at + 14 * 24h;
  return in;
}
}  // namespace

TEST_CASE("the notice text says where, when, what code and how") {
  const auto in = sampleInput();
  const std::string text = noticeText(in);
  CHECK_THAT(text, Catch::Contains("Zurich Main Station, west hall"));
  CHECK_THAT(text, Catch::Contains("Bahnhofplatz 1, 8001 Zurich"));
  CHECK_THAT(text, Catch::Contains("Mo-Su 05:00-24:00"));
  CHECK_THAT(text,
             Catch::Contains("https://www.openstreetmap.org/?mlat=47.378177&mlon=8.540192#map=18/"
                             "47.378177/8.540192"));
  CHECK_THAT(text, Catch::Contains("4242"));
  CHECK_THAT(text, Catch::Contains("314-159-2653"));
  CHECK_THAT(text, Catch::Contains("2024-05-15 12:00 UTC"));
  CHECK_THAT(text, Catch::Contains("Northwind Bank"));
  CHECK_THAT(text, Catch::Contains("Ada Lovelace"));
  CHECK_THAT(text, Catch::Contains("Type the code on the box's keypad; slot 8 opens",
                                   Catch::CaseSensitive::No));
}

TEST_CASE("the notice never carries more than the last four digits of the card") {
  const auto notice = buildNotice(sampleInput());
  const std::string number = kCardNumber;
  for (const std::string& s : {notice.message(), noticeToJson(notice)}) {
    // No five consecutive digits of the number appear anywhere.
    for (std::size_t i = 0; i + 5 <= number.size(); ++i) {
      CHECK(s.find(number.substr(i, 5)) == std::string::npos);
    }
  }
}

TEST_CASE("the notice message has every field filled") {
  const auto in = sampleInput();
  const auto notice = buildNotice(in);
  CHECK(notice.notice_id() == in.notice_id);
  CHECK(notice.deposit_id() == in.deposit_id);
  CHECK(notice.holder_name() == "Ada Lovelace");
  CHECK(notice.card_last4() == "4242");
  CHECK(notice.issuer_name() == "Northwind Bank");
  CHECK(notice.kiosk().kiosk_id() == "kiosk-zrh-hb");
  CHECK(notice.kiosk().latitude() == Approx(47.378177));
  CHECK(notice.pickup_code() == "314-159-2653");
  CHECK(notice.pickup_code_expires_at() == "2024-05-15T12:00:00Z");
  CHECK(notice.stored_at() == "2024-05-01T12:00:00Z");
  CHECK(notice.map_url() == mapUrl(47.378177, 8.540192));
  CHECK(notice.message() == noticeText(in));
}

TEST_CASE("the JSON uses protobuf's canonical names and parses back") {
  const auto notice = buildNotice(sampleInput());
  const auto json = noticeToJson(notice);
  CHECK_THAT(json, Catch::Contains("\"pickupCode\":\"314-159-2653\""));
  CHECK_THAT(json, Catch::Contains("\"cardLast4\":\"4242\""));
  const auto back = noticeFromJson(json);
  REQUIRE(back.has_value());
  CHECK(back->SerializeAsString() == notice.SerializeAsString());
  CHECK_FALSE(noticeFromJson("not json").has_value());
  CHECK_FALSE(noticeFromJson(R"({"notice_id": 5})").has_value());
  // The .proto names are accepted too; unknown fields (a newer sender) are ignored.
  CHECK(noticeFromJson(R"({"notice_id":"n","card_last4":"4242"})")->card_last4() == "4242");
  CHECK(noticeFromJson(R"({"notice_id":"n","future_field":1})").has_value());
}

TEST_CASE("map links and times are formatted for any place and time") {
  CHECK(mapUrl(-33.856784, 151.215297) ==
        "https://www.openstreetmap.org/?mlat=-33.856784&mlon=151.215297#map=18/-33.856784/"
        "151.215297");
  CHECK(formatRfc3339Utc(std::chrono::system_clock::time_point(0s)) == "1970-01-01T00:00:00Z");
}

TEST_CASE("a missing issuer name or opening hours still reads well") {
  auto in = sampleInput();
  in.issuer_name.clear();
  in.kiosk.set_opening_hours("");
  const auto text = noticeText(in);
  CHECK_THAT(text, Catch::Contains("Your card ending in 4242"));
  CHECK_THAT(text, Catch::Contains("Opening hours: as posted on the box"));
}
