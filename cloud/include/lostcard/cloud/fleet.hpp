#pragma once
// What an operator should look at in a box, from its latest heartbeat: pure (no database, no
// clock of its own), tested in tests/cloud/fleet_test.cpp.
//
//   const FleetThresholds limits{.bin_percent = 80, .slots_percent = 90};
//   for (const auto& alert : kioskAlerts(fill, limits, clock.now())) { ... }
//
// A box is online when its last heartbeat is no older than `online_within` (a kiosk sends one
// every 5 s by default, and only while its TLS session to a cloud node is up). A box that never
// sent one is offline and its fill is unknown (no fill alerts).
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace lostcard::cloud {

struct FleetThresholds {
  int bin_percent = 80;     // "bin_nearly_full" at or above this share of the bin's capacity
  int slots_percent = 90;   // "slots_nearly_full" at or above this share of the slots
  std::chrono::seconds online_within{30};
};

struct KioskFill {
  std::string kiosk_id;
  std::optional<std::chrono::system_clock::time_point> last_heartbeat_at;
  int slots_used = 0;
  int slot_count = 0;
  int bin_count = 0;
  int bin_capacity = 0;
};

struct FleetAlert {
  std::string kind;     // "offline", "bin_nearly_full", "slots_nearly_full"
  std::string message;  // for a person
};

bool kioskOnline(const KioskFill& kiosk, const FleetThresholds& limits,
                 std::chrono::system_clock::time_point now);
// Offline first, then the bin, then the slots.
std::vector<FleetAlert> kioskAlerts(const KioskFill& kiosk, const FleetThresholds& limits,
                                    std::chrono::system_clock::time_point now);

}  // namespace lostcard::cloud
