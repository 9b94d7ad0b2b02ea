#pragma once
// Reconciliation: what a kiosk's journal says each place in the box holds (its latest
// Inventory message) against what the cloud records (the deposits table), one row per deposit,
// with a verdict for each. Pure logic: no database, no clock; Store::reconcile() gathers the
// inputs and calls reconcileInventory().
//
//   Reconciliation r = store.reconcile("kiosk-17");
//   if (r.stale) { ... }                       // the cloud has newer records: compare later
//   for (const auto& row : r.rows) {
//     if (isDisagreement(row.verdict)) { ... } // row.kiosk_view vs row.cloud_view
//   }
//   r.disagreements                            // 0 when stale or without an inventory
//
// A snapshot is stale when the cloud recorded something for that kiosk (a decision, a card
// stored or collected) after the snapshot arrived: the two sides are then not looking at the
// same moment, so differences are shown but not counted as disagreements. Times compared are
// all the cloud's own.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/v1/kiosk_stream.pb.h"

namespace lostcard::cloud {

// One deposit of the kiosk as the cloud records it.
struct CloudDeposit {
  std::string deposit_id;
  std::string status;  // "decided", "stored", "collected", "awaiting_restock", ...
  // "slot:N" or "bin" once stored; "" while only decided, and for a card to restock that left
  // the bin with the operator.
  std::string place;
  std::string last4;   // "" when none was read
};

// The latest Inventory of a kiosk and when the cloud received it (the cloud's clock).
struct InventorySnapshot {
  v1::Inventory inventory;
  std::chrono::system_clock::time_point received_at;
};

enum class Verdict {
  kAgree,           // the same place on both sides
  kInFlight,        // on its way: on the tray, or stored offline and awaiting its decision
  kUnknownToCloud,  // the kiosk holds a card the cloud never heard of
  kElsewhere,       // the cloud records another place (or the card as collected)
  kNoPlaceInCloud,  // the kiosk stored it; the cloud has a decision but no place for it
  kMissingAtKiosk,  // the cloud records it in a place the kiosk says is empty
  kUncertain,       // the kiosk itself does not know for sure where the card is
  kUnchecked,       // no inventory from this kiosk yet: the cloud's view only
};

// Disagreements are the verdicts an operator must look at.
bool isDisagreement(Verdict verdict);
// "ok", "in-flight", "unknown-to-cloud", "elsewhere", "no-place-in-cloud", "missing-at-kiosk",
// "uncertain", "unchecked".
std::string_view verdictName(Verdict verdict);

struct ReconcileRow {
  // The place the row is about: the kiosk's ("slot:N", "bin", "tray", "uncertain"), or the
  // cloud's when the kiosk does not list the card.
  std::string place;
  std::string deposit_id;
  std::string kiosk_view;  // "slot:N", "bin", "tray", "jam (uncertain)", ...; "-" not listed
  std::string cloud_view;  // "slot:N", "bin", "no place yet", "collected"; "-" never heard of
  std::string last4;       // the cloud's; "" when it has none
  std::string status;      // the cloud's deposit status; "-" when it has no record
  bool pending = false;    // the kiosk stored it offline and has no decision yet
  bool flagged = false;    // the kiosk flagged it for an operator
  Verdict verdict = Verdict::kAgree;
  std::string note;  // why, for operators; ids and places only
};

struct Reconciliation {
  std::string kiosk_id;
  bool has_inventory = false;
  bool stale = false;
  // From the inventory (zero without one).
  std::uint64_t journal_seq = 0;
  std::int64_t taken_at_ms = 0;  // the kiosk's clock
  std::chrono::system_clock::time_point received_at{};
  // The cloud's latest record for this kiosk's deposits, if any.
  std::optional<std::chrono::system_clock::time_point> latest_record_at;
  int slots_total = 0;
  int bin_capacity = 0;
  // The kiosk's counts when there is an inventory, else the cloud's stored cards.
  int slots_used = 0;
  int bin_count = 0;
  // Slots ascending, then the bin, the tray, uncertain cards; by deposit id within a place.
  std::vector<ReconcileRow> rows;
  // Rows whose verdict is a disagreement; 0 when stale or without an inventory.
  int disagreements = 0;
};

// Compares `snapshot` (nullopt: the kiosk never sent one) with the kiosk's deposits as the
// cloud records them. `slots_total` is the cloud's slot count for the kiosk, used without an
// inventory.
Reconciliation reconcileInventory(
    const std::string& kiosk_id, const std::optional<InventorySnapshot>& snapshot,
    const std::vector<CloudDeposit>& deposits,
    std::optional<std::chrono::system_clock::time_point> latest_record_at, int slots_total);

}  // namespace lostcard::cloud
