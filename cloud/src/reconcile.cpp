#include "lostcard/cloud/reconcile.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>

namespace lostcard::cloud {

namespace {

constexpr std::string_view kTray = "tray";
constexpr std::string_view kBin = "bin";
constexpr std::string_view kUncertainPlace = "uncertain";
constexpr std::string_view kAwaitingRestock = "awaiting_restock";

std::string slotPlace(std::uint32_t slot) { return "slot:" + std::to_string(slot); }

// Slots by index, then the bin, the tray, uncertain cards, and rows without a place.
std::tuple<int, long, std::string> sortKey(const ReconcileRow& row) {
  constexpr std::string_view kSlotPrefix = "slot:";
  if (row.place.rfind(kSlotPrefix, 0) == 0) {
    return {0, std::strtol(row.place.c_str() + kSlotPrefix.size(), nullptr, 10), row.deposit_id};
  }
  const int group = row.place == kBin              ? 1
                    : row.place == kTray           ? 2
                    : row.place == kUncertainPlace ? 3
                                                   : 4;
  return {group, 0, row.deposit_id};
}

std::string cloudView(const CloudDeposit& d) {
  if (d.status == "collected") {
    return "collected";
  }
  return d.place.empty() ? "no place yet" : d.place;
}

// Fills the cloud's side of a row from its record (or its absence).
void setCloudSide(ReconcileRow& row, const CloudDeposit* d) {
  if (d == nullptr) {
    row.cloud_view = "-";
    row.status = "-";
    return;
  }
  row.cloud_view = cloudView(*d);
  row.status = d->status;
  row.last4 = d->last4;
}

// A card the kiosk lists in a known place, against the cloud's record of it.
ReconcileRow compareListed(const v1::InventoryCard& card, const std::string& place,
                           const CloudDeposit* d) {
  ReconcileRow row;
  row.place = place;
  row.deposit_id = card.deposit_id();
  row.kiosk_view = place;
  row.pending = card.pending();
  row.flagged = card.flagged();
  setCloudSide(row, d);
  if (d == nullptr) {
    row.verdict = Verdict::kUnknownToCloud;
    row.note = "the cloud has no record of this deposit";
  } else if (d->status == kAwaitingRestock && d->place != place &&
             (place == kTray || place.rfind("slot:", 0) == 0)) {
    // An operator puts back a card resolved by hand: it goes from their hands (or the bin)
    // through the tray to a slot, and the cloud learns its slot from the CardStored that
    // follows.
    row.verdict = Verdict::kInFlight;
    row.note = "resolved by hand and being put back in " + place + "; its report is on its way";
  } else if (d->status == "collected") {
    row.verdict = Verdict::kElsewhere;
    row.note = "the kiosk has it in " + place + "; the cloud records it as collected";
  } else if (d->place.empty()) {
    // Only decided in the cloud: fine while the card is still being handled or was stored
    // offline (its CardStored follows the Disposition); otherwise its CardStored never landed.
    if (place == kTray || card.pending()) {
      row.verdict = Verdict::kInFlight;
      row.note = place == kTray ? "on the tray, being handled"
                                : "stored offline; the kiosk awaits its decision";
    } else {
      row.verdict = Verdict::kNoPlaceInCloud;
      row.note = "the kiosk stored it in " + place + "; the cloud has no place for it";
    }
  } else if (d->place == place) {
    row.verdict = Verdict::kAgree;
  } else {
    row.verdict = Verdict::kElsewhere;
    row.note = "the kiosk has it in " + place + "; the cloud records " + d->place;
  }
  return row;
}

}  // namespace

bool isDisagreement(Verdict verdict) {
  switch (verdict) {
    case Verdict::kAgree:
    case Verdict::kInFlight:
    case Verdict::kUnchecked:
      return false;
    case Verdict::kUnknownToCloud:
    case Verdict::kElsewhere:
    case Verdict::kNoPlaceInCloud:
    case Verdict::kMissingAtKiosk:
    case Verdict::kUncertain:
      return true;
  }
  return true;
}

std::string_view verdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kAgree:
      return "ok";
    case Verdict::kInFlight:
      return "in-flight";
    case Verdict::kUnknownToCloud:
      return "unknown-to-cloud";
    case Verdict::kElsewhere:
      return "elsewhere";
    case Verdict::kNoPlaceInCloud:
      return "no-place-in-cloud";
    case Verdict::kMissingAtKiosk:
      return "missing-at-kiosk";
    case Verdict::kUncertain:
      return "uncertain";
    case Verdict::kUnchecked:
      return "unchecked";
  }
  return "?";
}

Reconciliation reconcileInventory(
    const std::string& kiosk_id, const std::optional<InventorySnapshot>& snapshot,
    const std::vector<CloudDeposit>& deposits,
    std::optional<std::chrono::system_clock::time_point> latest_record_at, int slots_total) {
  Reconciliation r;
  r.kiosk_id = kiosk_id;
  r.latest_record_at = latest_record_at;
  r.slots_total = slots_total;

  std::map<std::string, const CloudDeposit*> cloud;
  for (const auto& d : deposits) {
    cloud[d.deposit_id] = &d;
  }
  auto cloudRecord = [&](const std::string& id) -> const CloudDeposit* {
    const auto it = cloud.find(id);
    return it == cloud.end() ? nullptr : it->second;
  };

  if (!snapshot) {
    std::set<std::string> slots_used;
    for (const auto& d : deposits) {
      if (d.status == "collected") {
        continue;
      }
      ReconcileRow row;
      row.place = d.place.empty() ? "-" : d.place;
      row.deposit_id = d.deposit_id;
      row.kiosk_view = "?";
      setCloudSide(row, &d);
      row.verdict = Verdict::kUnchecked;
      row.note = "no inventory from this kiosk yet";
      if (d.place == kBin) {
        ++r.bin_count;
      } else if (!d.place.empty()) {
        slots_used.insert(d.place);
      }
      r.rows.push_back(std::move(row));
    }
    r.slots_used = static_cast<int>(slots_used.size());
  } else {
    const auto& inv = snapshot->inventory;
    r.has_inventory = true;
    r.journal_seq = inv.journal_seq();
    r.taken_at_ms = inv.taken_at_ms();
    r.received_at = snapshot->received_at;
    r.stale = latest_record_at && *latest_record_at > snapshot->received_at;
    r.slots_total = static_cast<int>(inv.slots_total());
    r.bin_capacity = static_cast<int>(inv.bin_capacity());
    r.bin_count = inv.bin_size();

    std::set<std::string> listed;
    std::map<std::string, std::string> kiosk_slot_holder;  // "slot:N" -> a deposit id there
    for (const auto& card : inv.slots()) {
      const std::string place = slotPlace(card.slot());
      kiosk_slot_holder.emplace(place, card.deposit_id());
      listed.insert(card.deposit_id());
      r.rows.push_back(compareListed(card, place, cloudRecord(card.deposit_id())));
    }
    r.slots_used = static_cast<int>(kiosk_slot_holder.size());
    for (const auto& card : inv.bin()) {
      listed.insert(card.deposit_id());
      r.rows.push_back(compareListed(card, std::string(kBin), cloudRecord(card.deposit_id())));
    }
    for (const auto& card : inv.tray()) {
      listed.insert(card.deposit_id());
      r.rows.push_back(compareListed(card, std::string(kTray), cloudRecord(card.deposit_id())));
    }
    for (const auto& u : inv.uncertain()) {
      listed.insert(u.deposit_id());
      ReconcileRow row;
      row.place = kUncertainPlace;
      row.deposit_id = u.deposit_id();
      row.kiosk_view = (u.last_known().empty() ? "unknown" : u.last_known()) + " (uncertain)";
      setCloudSide(row, cloudRecord(u.deposit_id()));
      row.verdict = Verdict::kUncertain;
      row.note = u.detail().empty() ? "the kiosk does not know where it is" : u.detail();
      r.rows.push_back(std::move(row));
    }
    for (const auto& d : deposits) {
      if (d.status == "collected" || listed.count(d.deposit_id) != 0) {
        continue;
      }
      ReconcileRow row;
      row.place = d.place.empty() ? "-" : d.place;
      row.deposit_id = d.deposit_id;
      row.kiosk_view = "-";
      setCloudSide(row, &d);
      if (d.status == kAwaitingRestock) {
        // Resolved by hand: out of the box with the operator (or just taken from the bin, its
        // BinEmptied on its way) until they put it back in a slot at the box.
        row.verdict = Verdict::kInFlight;
        row.note = "resolved by hand: with the operator until it is put back in a slot";
        r.rows.push_back(std::move(row));
        continue;
      }
      if (d.status == "releasing") {
        // A pickup code was accepted and the slot told to open: the kiosk's report of the card
        // taken is on its way.
        row.verdict = Verdict::kInFlight;
        row.note = "released for pickup; the kiosk's report of it is on its way";
        r.rows.push_back(std::move(row));
        continue;
      }
      row.verdict = Verdict::kMissingAtKiosk;
      if (d.place.empty()) {
        row.note = "the cloud has a decision for it; the kiosk does not list it";
      } else if (d.place == kBin) {
        row.note = "the cloud records it in the bin; the kiosk's bin does not hold it";
      } else {
        const auto holder = kiosk_slot_holder.find(d.place);
        row.note = "the cloud records it in " + d.place + "; the kiosk says " + d.place +
                   (holder == kiosk_slot_holder.end() ? " is empty" : " holds " + holder->second);
      }
      r.rows.push_back(std::move(row));
    }
  }

  std::sort(r.rows.begin(), r.rows.end(),
            [](const ReconcileRow& a, const ReconcileRow& b) { return sortKey(a) < sortKey(b); });
  if (r.has_inventory && !r.stale) {
    r.disagreements = static_cast<int>(std::count_if(
        r.rows.begin(), r.rows.end(), [](const auto& row) { return isDisagreement(row.verdict); }));
  }
  return r;
}

}  // namespace lostcard::cloud
