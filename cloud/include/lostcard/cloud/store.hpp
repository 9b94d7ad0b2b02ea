#pragma once
// The cloud's PostgreSQL registry: issuers, holders, enrolled cards (keyed hash + last four),
// kiosks, deposits, pickup codes and the notice outbox. The schema is in migrations.hpp.
//
//   Store store({.conninfo = "host=... dbname=lostcard"});
//   store.migrate();
//   auto owners = store.findCardsByHash(hasher.keyId(), hasher.hash(candidate));
//   auto decided = store.recordDecision(decision, clock.now());      // first decision wins
//   auto stored = store.recordStored(kiosk_id, deposit_id, location, clock.now());
//   // stored.notice_queued: a pickup code was made and the notice is in the outbox, in the same
//   // transaction as the deposit's new location; NoticeDelivery (delivery.hpp) sends it.
//
// Thread-safe: calls share a small pool of connections; a call that meets a broken connection
// replaces it and runs once more (every call is idempotent). Database errors other than that
// are thrown (pqxx exceptions); expected refusals are values (StoredResult.error).
// Time is always passed in. Logs name deposit ids, kiosk ids and last four digits only.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/reconcile.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"

namespace lostcard::cloud {

struct KioskRecord {
  std::string id, name, address;
  double latitude = 0, longitude = 0;
  std::string opening_hours;
  int slot_count = 0;
};

struct CardOwner {
  std::int64_t card_id = 0;
  std::string holder_id;
  std::string issuer_id;
  std::string last4;
};

struct DepositDecision {
  std::string deposit_id, kiosk_id;
  bool store = false;                   // false: difficult card
  std::optional<std::int64_t> card_id;  // set iff store
  // Of the recognized number when one was read (store, or difficult/no holder), else "".
  std::string last4;
  lostcard::v1::DifficultReason reason = lostcard::v1::DIFFICULT_REASON_UNSPECIFIED;
  std::string detail;  // never a card number
};

struct StoredResult {
  bool ok = false;
  std::string error;  // why not ok, for the kiosk's Ack
  bool notice_queued = false;
};

struct StoreOptions {
  std::string conninfo;
  int pool_size = 4;
  std::chrono::hours pickup_code_ttl{24 * 14};
  int pickup_code_tries = 5;
};

// One line of `lostcard-admin deposits`.
struct DepositSummary {
  std::string id, kiosk_id, status, decision;
  std::string location;  // "slot:N", "bin" or "-"
  std::string last4;     // "" when none
  std::string reason;    // "unreadable", "no_holder", ... or "" for a store decision
};

// One line of `lostcard-admin notices`.
struct NoticeSummary {
  std::string id, deposit_id, holder_id;
  int attempts = 0;
  bool delivered = false;
  bool gave_up = false;
  std::string last_error;
};

class Store {
 public:
  explicit Store(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies pending migrations (migrations.hpp); safe to call from every node at start-up.
  void migrate();

  std::optional<KioskRecord> findKiosk(const std::string& kiosk_id);

  // Enrolled cards whose keyed hash is `hmac_bytes` under key `key_id` (0 or 1 rows, the pair is
  // unique; a vector so the caller can treat "several candidates" uniformly).
  std::vector<CardOwner> findCardsByHash(const std::string& key_id, const std::string& hmac_bytes);

  // Records the decision if the deposit has none; returns the recorded one (first decision
  // wins). Throws std::invalid_argument for a non-UUID deposit id, a store decision without a
  // card id, or a difficult one with one; pqxx::foreign_key_violation for an unknown kiosk.
  DepositDecision recordDecision(const DepositDecision& decision,
                                 std::chrono::system_clock::time_point now);
  std::optional<DepositDecision> findDecision(const std::string& deposit_id);

  // The card of `deposit_id` is physically at `location` in `kiosk_id`. In ONE transaction: the
  // deposit becomes "stored" at that location; if it was decided "store" and the location is a
  // slot, a pickup code is made (its hash stored), the notice built and put in the outbox, and
  // the delivery workers are notified. Idempotent: a repeat is ok with notice_queued = false.
  // Refused (ok = false): a non-UUID id, an unknown deposit, another kiosk's deposit, no
  // location. A "store" card reported in the bin is recorded, sends no notice, and logs a
  // warning (ok = true).
  StoredResult recordStored(const std::string& kiosk_id, const std::string& deposit_id,
                            const lostcard::v1::Location& location,
                            std::chrono::system_clock::time_point now);

  // Unknown kiosks are ignored with a warning.
  void recordHeartbeat(const std::string& kiosk_id, const lostcard::v1::Heartbeat& hb,
                       std::chrono::system_clock::time_point now);

  // Enrollment (lostcard-admin, tests). Upserts replace the other columns.
  void upsertIssuer(const std::string& id, const std::string& name);
  void upsertHolder(const std::string& id, const std::string& name, const std::string& webhook_url,
                    const std::string& webhook_secret);
  void upsertKiosk(const KioskRecord& kiosk);
  // Idempotent on the hash: enrolling a number again returns the same card id (and moves it to
  // the given issuer and holder). Throws std::invalid_argument unless `number` is 8 to 19 digits
  // (spaces and dashes allowed between them).
  std::int64_t enrollCard(const CardHasher& hasher, const std::string& issuer_id,
                          const std::string& holder_id, std::string_view number);

  // Inspection (lostcard-admin): newest first.
  std::vector<DepositSummary> listDeposits(const std::optional<std::string>& kiosk_id);
  std::vector<NoticeSummary> listNotices();

  // Keeps `inventory` as the kiosk's latest snapshot, received at `now`, unless the one kept is
  // newer (taken later by the kiosk's clock and with no fewer journal moves: an old message
  // that arrived late). Returns whether it was kept. Throws std::invalid_argument when it names
  // a deposit id that is not a UUID; pqxx::foreign_key_violation for an unknown kiosk.
  bool recordInventory(const std::string& kiosk_id, const lostcard::v1::Inventory& inventory,
                       std::chrono::system_clock::time_point now);
  // The kiosk's latest inventory against its deposits (reconcile.hpp), read in one snapshot.
  Reconciliation reconcile(const std::string& kiosk_id);
  // Every enrolled kiosk's id, ascending.
  std::vector<std::string> listKioskIds();

  // The channel NoticeDelivery LISTENs on; its payload is the notice id.
  static constexpr const char* kNoticeChannel = "lostcard_notice";

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "unreadable", "no_holder", "ambiguous", "bad_image"; "" for UNSPECIFIED.
std::string difficultReasonName(lostcard::v1::DifficultReason reason);
lostcard::v1::DifficultReason difficultReasonFromName(std::string_view name);

}  // namespace lostcard::cloud
