// The operators' alerts (fleet.hpp): thresholds at their edges, offline boxes, unknown fill.
#include "lostcard/cloud/fleet.hpp"

#include <catch2/catch.hpp>

using namespace lostcard::cloud;
using namespace std::chrono_literals;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1'700'000'000s);

std::vector<std::string> kinds(const KioskFill& fill, const FleetThresholds& limits = {}) {
  std::vector<std::string> out;
  for (const auto& alert : kioskAlerts(fill, limits, kNow)) {
    out.push_back(alert.kind);
  }
  return out;
}

KioskFill fill(int slots_used, int bin_count) {
  return {"k1", kNow - 5s, slots_used, 20, bin_count, 10};
}

}  // namespace

TEST_CASE("bin and slot alerts start exactly at their thresholds") {
  CHECK(kinds(fill(17, 7)).empty());  // 85 % of slots, 70 % of the bin
  CHECK(kinds(fill(18, 7)) == std::vector<std::string>{"slots_nearly_full"});  // 90 %
  CHECK(kinds(fill(17, 8)) == std::vector<std::string>{"bin_nearly_full"});    // 80 %
  CHECK(kinds(fill(20, 10)) == std::vector<std::string>{"bin_nearly_full", "slots_nearly_full"});
  CHECK(kinds(fill(17, 7), {.bin_percent = 70, .slots_percent = 85}) ==
        std::vector<std::string>{"bin_nearly_full", "slots_nearly_full"});
  // A box without slots or a bin of unknown capacity raises no fill alert.
  CHECK(kinds({"k1", kNow, 0, 0, 3, 0}).empty());
}

TEST_CASE(
    "a box is offline once its last heartbeat is older than the bound, or it never sent one") {
  KioskFill kiosk = fill(0, 0);
  kiosk.last_heartbeat_at = kNow - 30s;
  CHECK(kioskOnline(kiosk, {}, kNow));
  CHECK(kinds(kiosk).empty());
  kiosk.last_heartbeat_at = kNow - 31s;
  CHECK_FALSE(kioskOnline(kiosk, {}, kNow));
  const auto alerts = kioskAlerts(kiosk, {}, kNow);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].kind == "offline");
  CHECK(alerts[0].message == "no heartbeat for 31 s");
  CHECK(kioskOnline(kiosk, {.online_within = 60s}, kNow));
  // Never heard of: offline, and its fill (all zero) is unknown, not "empty".
  const KioskFill never{"k2", std::nullopt, 20, 20, 10, 10};
  CHECK(kinds(never) == std::vector<std::string>{"offline"});
}
