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
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/pickup_rules.hpp"
#include "lostcard/cloud/reconcile.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"
#include "lostcard/v1/notice.pb.h"

namespace lostcard::cloud {

class ImageVault;

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

// One photo kept of a difficult card: redacted (image_redaction.hpp), then sealed with
// AES-256-GCM (image_vault.hpp, the deposit id as associated data). Table difficult_images.
struct DifficultImage {
  std::string deposit_id;
  std::string face;           // "front" or "back"
  int frame = 0;              // position within its face, from 0
  bool straightened = false;  // the card cut out of the photo; else the photo as received
  bool blacked_out = false;   // the signature band was blacked out before sealing
  std::string key_id;         // the image key that sealed it
  std::string nonce;          // raw bytes
  std::string ciphertext;     // raw bytes, GCM tag last; "" in listings
  std::size_t ciphertext_bytes = 0;
  std::chrono::system_clock::time_point created_at{};  // set when read back
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
  // The per-kiosk limit on wrong codes (pickup_rules.hpp).
  PickupLimits pickup_limits{};
  // Seals the notices put in the outbox (delivery.hpp: loadNoticeVault; the worker opens them
  // with the same key). Must outlive the store. Null: processNoticeVault(), for tests.
  const ImageVault* notice_vault = nullptr;
  // Refused operator box codes at one kiosk within operator_code_window; at this many, every
  // operator code there is refused until the oldest leaves the window.
  int operator_code_tries = 5;
  std::chrono::seconds operator_code_window{15 * 60};
};

// One code typed at a kiosk (a PickupRequest from the kiosk on this connection).
struct PickupAttempt {
  std::string kiosk_id;
  std::string request_id;  // the kiosk's UUID for this attempt
  std::uint32_t slot = 0;  // 0-based
  std::string typed_code;  // never logged or stored
};

struct PickupOutcome {
  PickupVerdict verdict;
  std::string deposit_id;  // the deposit waiting in the slot, if any ("" for none)
  std::uint32_t slot = 0;
  bool repeated = false;  // the kiosk sent this request id before: the first answer again
};

struct NewPickupCode {
  bool ok = false;
  std::string error;      // why not ok
  std::string notice_id;  // the notice that carries the new code
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

// What a kiosk reported of an OPEN pickup answer (a PickupDone).
struct PickupReport {
  std::string kiosk_id;
  std::string request_id;  // the PickupRequest's, whose answer was OPEN
  std::string deposit_id;
  lostcard::v1::PickupOutcome outcome = lostcard::v1::PICKUP_OUTCOME_UNSPECIFIED;
  std::string detail;  // the kiosk's words, for operators; never a code
};

// The answer to a kiosk's report (PickupDone, BinEmptied): recorded, or why not (for its Ack).
struct ReportResult {
  bool ok = false;
  std::string error;
  bool repeated = false;  // reported before: nothing changed
  int collected = 0;      // deposits this report marked collected
};

// The answer to an operator's code typed at a kiosk.
struct OperatorAuthOutcome {
  lostcard::v1::OperatorAuthResult result = lostcard::v1::OPERATOR_AUTH_RESULT_REFUSED;
  std::int64_t retry_after_ms = 0;
  std::string account_id;  // the operator's, when OK
  bool repeated = false;
};

// The number an operator typed at a kiosk for a card to restock (a RestockCheck), as its keyed
// hash: the number itself never reaches the store.
struct RestockCheckAttempt {
  std::string kiosk_id;
  std::string request_id;  // the kiosk's UUID for this check
  std::string deposit_id;
  std::string key_id;                       // the hasher's key id
  std::optional<std::string> number_hmac;  // none: not a card number by the card formats
};

// The answer to one RestockCheck.
struct RestockCheckOutcome {
  lostcard::v1::RestockCheckResult result = lostcard::v1::RESTOCK_CHECK_RESULT_MISMATCH;
  std::int64_t retry_after_ms = 0;  // THROTTLED
  bool repeated = false;            // the kiosk sent this request id before: the first answer
};

class Store {
 public:
  explicit Store(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies pending migrations (migrations.hpp); safe to call from every node at start-up.
  // With a notice_vault, also seals the notices that migration 6 found waiting in clear.
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
  // The same, and when this call records a difficult decision, its sealed photos in the same
  // transaction (created_at = now), so a difficult card is never recorded without them (or they
  // without it). `images` are ignored when a decision was recorded before or this one is store.
  DepositDecision recordDecision(const DepositDecision& decision,
                                 std::chrono::system_clock::time_point now,
                                 const std::vector<DifficultImage>& images);
  std::optional<DepositDecision> findDecision(const std::string& deposit_id);

  // The card of `deposit_id` is physically at `location` in `kiosk_id`. In ONE transaction: the
  // deposit becomes "stored" at that location; if it was decided "store" and the location is a
  // slot, a pickup code is made (its hash stored), the notice built and put in the outbox
  // (sealed with the notice key: delivery.hpp), and the delivery workers are notified. Idempotent: a repeat is ok with notice_queued = false.
  // Refused (ok = false): a non-UUID id, an unknown deposit, another kiosk's deposit, no
  // location. A "store" card reported in the bin is recorded, sends no notice, and logs a
  // warning (ok = true). A card waiting to be restocked (status "awaiting_restock": resolved by
  // hand, operator_api.hpp, or a holder's card taken out of the bin) reported in a slot takes the
  // path of a new "store" card: pickup code and notice; it is no longer "collected".
  // Recording a store decision queues the issuer's "card.found" event (issuer_events.hpp).
  StoredResult recordStored(const std::string& kiosk_id, const std::string& deposit_id,
                            const lostcard::v1::Location& location,
                            std::chrono::system_clock::time_point now);

  // A holder typed `attempt.typed_code` for slot `attempt.slot` of kiosk `attempt.kiosk_id`.
  // Applies every rule of pickup_rules.hpp: only a deposit of that kiosk, stored in that slot,
  // can open; a code opens once (the deposit becomes "releasing"); a wrong code uses one of the
  // code's tries, and counts against the kiosk's window. The slow hash is checked with no
  // transaction open; the verdict is applied in one transaction that holds the kiosk's pickup
  // lock (an advisory lock) and the deposit's rows, after checking that nothing changed
  // meanwhile (else it starts over). Every attempt is recorded in pickup_attempts and the audit
  // log. Idempotent by (kiosk, request id): a repeat gets the recorded answer (repeated = true).
  // Throws std::invalid_argument when the request id is not a UUID.
  PickupOutcome redeemPickupCode(const PickupAttempt& attempt,
                                 std::chrono::system_clock::time_point now);

  // A fresh pickup code for a card waiting in a slot, at the request of its holder: replaces the
  // stored hash, gives it full tries and a new expiry (pickup_code_ttl from now), withdraws the
  // holder's notices not yet delivered (their code no longer works) and queues a new notice with
  // the new code (the next notice_seq of the deposit), in one transaction. Refused (ok = false):
  // no such deposit of this holder (one answer for both, so ids cannot be probed), or the card
  // is not waiting in a slot (not stored yet, already released or collected).
  NewPickupCode issueNewPickupCode(const std::string& deposit_id, const std::string& holder_id,
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
  // Metadata only: a notice's payload is sealed, and wiped once it is delivered or given up.
  std::vector<NoticeSummary> listNotices();
  // The deposit's newest notice still waiting to be delivered, opened with the notice key: the
  // pickup code in it too. For tests and tools; nullopt when none waits (or it does not open).
  std::optional<lostcard::v1::RetrievalNotice> waitingNotice(const std::string& deposit_id);

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

  // Difficult cards' sealed photos. One deposit's, ciphertext included, front then back, by
  // frame; every deposit's (or one's) without the ciphertext, newest first. Reading ciphertext
  // does not decrypt it: whoever opens one (lostcard-admin difficult-image) needs the image key.
  // With `access`, the read is recorded in the audit log (result "ok", detail: how many photos)
  // in the same transaction, at `now`.
  std::vector<DifficultImage> difficultImages(const std::string& deposit_id,
                                              const AuditEntry* access = nullptr,
                                              std::chrono::system_clock::time_point now = {});
  std::vector<DifficultImage> listDifficultImages(const std::optional<std::string>& deposit_id);
  // Deletes the photos kept for longer than `retention` at `now`; returns how many. PostgreSQL
  // frees their space at its next VACUUM (autovacuum); retiring the image key after the
  // retention period makes any copy left on disk or in backups unreadable.
  int purgeDifficultImages(std::chrono::system_clock::time_point now,
                           std::chrono::hours retention);

  // The kiosk's report of what became of the OPEN answer to request `r.request_id` (issue 6).
  // In one transaction under the kiosk's pickup lock: TAKEN makes the deposit "collected"
  // (collected_at, collected_by 'pickup') and tells its issuer the card went home
  // (queueIssuerEvent, kind "returned"); NOT_TAKEN, DOOR_FAILED and NOT_OPENED put it back to
  // "stored" in its slot (its code was used: the holder asks for a new one), DOOR_FAILED with an
  // alert row (kiosk_alerts) for operators; the outcome is kept on the pickup attempt and
  // audited as pickup.done. Idempotent by (kiosk, request id): a repeat is ok with repeated =
  // true. Refused (ok = false): no OPEN answer to that request at that kiosk, or for another
  // deposit. Throws std::invalid_argument for a request id that is not a UUID.
  ReportResult recordPickupDone(const PickupReport& r, std::chrono::system_clock::time_point now);

  // An operator typed `typed_code` at `kiosk_id` (an OperatorAuthRequest). OK only when it is the
  // box code of an enabled operator account assigned to that kiosk (operator_kiosks); the slow
  // hashes are checked with no transaction open. After StoreOptions::operator_code_tries refused
  // codes at the kiosk within the window, THROTTLED. Recorded in bin_openings and audited
  // (bin.open, or bin.open_refused; never the code). Idempotent by (kiosk, request id). Throws
  // std::invalid_argument for a request id that is not a UUID.
  OperatorAuthOutcome checkOperatorCode(const std::string& kiosk_id, const std::string& request_id,
                                        const std::string& typed_code,
                                        std::chrono::system_clock::time_point now);

  // An operator at `a.kiosk_id` typed the number of the card in their hand to put back deposit
  // `a.deposit_id` (a RestockCheck). OK only when that deposit is one of this kiosk's cards
  // awaiting restock and the number's keyed hash is its card's (cards.number_hmac, the card
  // named at the manual resolution or at the decision); NOT_WAITING for another kiosk's deposit
  // or one not awaiting restock; MISMATCH otherwise. A mismatch changes nothing about the
  // deposit; those of numbers that pass the card formats count against the kiosk: after
  // StoreOptions::operator_code_tries of them within operator_code_window (the operator codes'
  // limit and options), THROTTLED. Audited as restock.check (result, the deposit and the
  // request; never the number), in one transaction under the kiosk's operator lock. Idempotent by
  // (kiosk, request id) within operator_code_window. Throws std::invalid_argument for a request
  // or deposit id that is not a UUID.
  RestockCheckOutcome checkRestockCard(const RestockCheckAttempt& a,
                                       std::chrono::system_clock::time_point now);

  // After an OK opening (request `request_id`) the kiosk emptied its journal's bin: the listed
  // deposits of that kiosk recorded in the bin become "collected" (collected_by 'operator', the
  // operator's account) in one transaction, audited as bin.emptied; so do cards marked for return
  // to their issuer (to_return) that lie in the bin. A card decided "store" (its holder known)
  // that lay in the bin becomes "awaiting_restock" instead (collected by the operator too): on
  // the collection list as restock, and recordStored in a slot resumes its normal path. Deposits not in the bin by
  // the cloud's records are left as they are (logged; reconciliation shows them). Idempotent by
  // (kiosk, request id). Refused (ok = false): no OK opening for that request at that kiosk.
  ReportResult recordBinEmptied(const std::string& kiosk_id, const std::string& request_id,
                                const std::vector<std::string>& deposit_ids,
                                std::chrono::system_clock::time_point now);

  // What an operator's session at `kiosk_id` is for, sent with an OK OperatorAuthAnswer
  // (kiosk_stream.proto): the kiosk's to_return cards lying in a slot (the slots to unlock), and
  // its awaiting_restock cards with their restock numbers. Reads only.
  void fillOperatorSession(const std::string& kiosk_id, lostcard::v1::OperatorAuthAnswer& answer);

  // After an OK opening (request `request_id`) the operator's session ended with these cards
  // taken from their return slots (ReturnCollected): those of that kiosk recorded to_return in a
  // slot become "collected" (collected_by 'operator', the operator's account) in one
  // transaction, audited as return.collected. Others are left as they are (logged). Idempotent:
  // a repeat finds them collected. Refused (ok = false): no OK opening for that request at that
  // kiosk, or an id that is not a UUID.
  ReportResult recordReturnCollected(const std::string& kiosk_id, const std::string& request_id,
                                     const std::vector<std::string>& deposit_ids,
                                     std::chrono::system_clock::time_point now);

  // Gives operator `login` the box code `code` (10 digits, dashes or spaces allowed), kept as a
  // salted PBKDF2 hash, replacing any previous one; audited as account.operator_code. Throws
  // std::invalid_argument when the code is not 10 digits or `login` is no operator account.
  void setOperatorCode(const std::string& login, const std::string& code,
                       std::chrono::system_clock::time_point now);

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
