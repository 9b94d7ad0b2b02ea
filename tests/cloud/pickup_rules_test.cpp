// The pickup rules as pure functions (pickup_rules.hpp): their order, the throttle's wait, the
// words on the display.
#include "lostcard/cloud/pickup_rules.hpp"

#include <catch2/catch.hpp>

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace v1 = lostcard::v1;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z
constexpr const char* kTyped = "314-159-2653";

// A card waiting in the slot with a fresh code, at a quiet kiosk.
PickupState waiting() {
  PickupState s;
  s.deposit_waiting = true;
  s.deposit_id = "9b2f6a3e-3c7e-4a8e-9d55-0a1b2c3d4e5f";
  s.code_hash = "pbkdf2-sha256$1$00$00";
  s.tries_left = 5;
  s.expires_at = kNow + 24h;
  return s;
}

v1::PickupResult early(const PickupState& s, const char* typed = kTyped) {
  const auto v = judgeWithoutCode(s, typed, kNow, PickupLimits{});
  return v ? v->result : v1::PICKUP_RESULT_UNSPECIFIED;
}

}  // namespace

TEST_CASE("a fresh code at a quiet kiosk must be checked", "[pickup]") {
  CHECK_FALSE(judgeWithoutCode(waiting(), kTyped, kNow, PickupLimits{}).has_value());
  CHECK_FALSE(judgeWithoutCode(waiting(), "3141592653", kNow, PickupLimits{}).has_value());
}

TEST_CASE("the checked code opens or uses a try", "[pickup]") {
  const auto open = judgeCode(true, waiting());
  CHECK(open.result == v1::PICKUP_RESULT_OPEN);
  CHECK(open.tries_left == 5);
  auto s = waiting();
  const auto wrong = judgeCode(false, s);
  CHECK(wrong.result == v1::PICKUP_RESULT_WRONG_CODE);
  CHECK(wrong.tries_left == 4);
  s.tries_left = 1;
  CHECK(judgeCode(false, s).tries_left == 0);
  CHECK(countsAgainstKiosk(v1::PICKUP_RESULT_WRONG_CODE));
  for (auto r : {v1::PICKUP_RESULT_OPEN, v1::PICKUP_RESULT_LOCKED, v1::PICKUP_RESULT_EXPIRED,
                 v1::PICKUP_RESULT_NO_SUCH_DEPOSIT, v1::PICKUP_RESULT_KIOSK_THROTTLED,
                 v1::PICKUP_RESULT_INVALID_CODE}) {
    CHECK_FALSE(countsAgainstKiosk(r));
  }
}

TEST_CASE("refusals that need no check, in order", "[pickup]") {
  auto s = waiting();
  SECTION("nothing waits in the slot") {
    s.deposit_waiting = false;
    CHECK(early(s) == v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
  }
  SECTION("no tries left: locked, even before expiry and whatever is typed") {
    s.tries_left = 0;
    CHECK(early(s) == v1::PICKUP_RESULT_LOCKED);
    CHECK(early(s, "not a code") == v1::PICKUP_RESULT_LOCKED);
    s.expires_at = kNow - 1s;
    CHECK(early(s) == v1::PICKUP_RESULT_LOCKED);
  }
  SECTION("expired at the expiry instant") {
    s.expires_at = kNow;
    CHECK(early(s) == v1::PICKUP_RESULT_EXPIRED);
    s.expires_at = kNow + 1ms;
    CHECK(early(s) == v1::PICKUP_RESULT_UNSPECIFIED);
  }
  SECTION("not ten digits: no try used") {
    for (const char* typed : {"", "123", "31415926535", "314-159-265a", "3141592653 "}) {
      const auto v = judgeWithoutCode(s, typed, kNow, PickupLimits{});
      if (std::string(typed) == "3141592653 ") {
        CHECK_FALSE(v.has_value());  // spaces are allowed between and around the digits
        continue;
      }
      REQUIRE(v.has_value());
      CHECK(v->result == v1::PICKUP_RESULT_INVALID_CODE);
      CHECK(v->tries_left == 5);
    }
  }
  SECTION("a throttled kiosk refuses everything, first") {
    s.kiosk_wrong_tries = 20;
    s.tries_left = 0;
    CHECK(early(s) == v1::PICKUP_RESULT_KIOSK_THROTTLED);
    s.deposit_waiting = false;
    CHECK(early(s) == v1::PICKUP_RESULT_KIOSK_THROTTLED);
  }
}

TEST_CASE("the kiosk throttle lasts until the limit-th newest wrong try leaves the window",
          "[pickup]") {
  PickupLimits limits;
  limits.kiosk_wrong_tries = 3;
  limits.kiosk_window = 15min;
  auto s = waiting();
  s.kiosk_wrong_tries = 2;
  CHECK_FALSE(judgeWithoutCode(s, kTyped, kNow, limits).has_value());
  s.kiosk_wrong_tries = 3;
  s.limit_th_newest_wrong_try = kNow - 5min;
  const auto v = judgeWithoutCode(s, kTyped, kNow, limits);
  REQUIRE(v.has_value());
  CHECK(v->result == v1::PICKUP_RESULT_KIOSK_THROTTLED);
  CHECK(v->retry_after == 10min);
  CHECK_THAT(pickupMessage(*v), Catch::Contains("10 minutes"));
}

TEST_CASE("result names round-trip and messages never carry digits of a code", "[pickup]") {
  for (int r = v1::PICKUP_RESULT_OPEN; r <= v1::PICKUP_RESULT_INVALID_CODE; ++r) {
    const auto result = static_cast<v1::PickupResult>(r);
    const std::string name = pickupResultName(result);
    CHECK_FALSE(name.empty());
    CHECK(pickupResultFromName(name) == result);
    PickupVerdict v;
    v.result = result;
    v.tries_left = 3;
    const std::string message = pickupMessage(v);
    CHECK_FALSE(message.empty());
    CHECK(message.find("314") == std::string::npos);
  }
  CHECK(pickupResultFromName("nonsense") == v1::PICKUP_RESULT_UNSPECIFIED);
  PickupVerdict last;
  last.result = v1::PICKUP_RESULT_WRONG_CODE;
  last.tries_left = 0;
  CHECK_THAT(pickupMessage(last), Catch::Contains("locked"));
  last.tries_left = 1;
  CHECK_THAT(pickupMessage(last), Catch::Contains("1 try left"));
}
