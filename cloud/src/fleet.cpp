#include "lostcard/cloud/fleet.hpp"

namespace lostcard::cloud {

namespace {

// used/total at or above percent %, in integers (no rounding at the edge).
bool atLeast(int used, int total, int percent) {
  return total > 0 && static_cast<long long>(used) * 100 >= static_cast<long long>(percent) * total;
}

}  // namespace

bool kioskOnline(const KioskFill& kiosk, const FleetThresholds& limits,
                 std::chrono::system_clock::time_point now) {
  return kiosk.last_heartbeat_at.has_value() &&
         now - *kiosk.last_heartbeat_at <= limits.online_within;
}

std::vector<FleetAlert> kioskAlerts(const KioskFill& kiosk, const FleetThresholds& limits,
                                    std::chrono::system_clock::time_point now) {
  std::vector<FleetAlert> alerts;
  if (!kioskOnline(kiosk, limits, now)) {
    alerts.push_back(
        {"offline", kiosk.last_heartbeat_at
                        ? "no heartbeat for " +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                 now - *kiosk.last_heartbeat_at)
                                                 .count()) +
                              " s"
                        : "never sent a heartbeat"});
  }
  if (!kiosk.last_heartbeat_at) {
    return alerts;
  }
  if (atLeast(kiosk.bin_count, kiosk.bin_capacity, limits.bin_percent)) {
    alerts.push_back({"bin_nearly_full", "the difficult-card bin holds " +
                                             std::to_string(kiosk.bin_count) + " of " +
                                             std::to_string(kiosk.bin_capacity) + " cards"});
  }
  if (atLeast(kiosk.slots_used, kiosk.slot_count, limits.slots_percent)) {
    alerts.push_back({"slots_nearly_full", std::to_string(kiosk.slots_used) + " of " +
                                               std::to_string(kiosk.slot_count) +
                                               " storage slots are in use"});
  }
  return alerts;
}

}  // namespace lostcard::cloud
