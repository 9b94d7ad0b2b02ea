#pragma once
// The notice delivery worker: sends the retrieval notices that Store::recordStored puts in the
// outbox to the holders' webhooks, until each is delivered.
//
//   NoticeDelivery delivery({.conninfo = conninfo});
//   delivery.start();   // a thread: LISTEN for new notices, poll every second as a fallback
//   ...
//   delivery.stop();    // also done by the destructor
//
// Each notice is POSTed as JSON to its holder's webhook_url (http:// or https://) with
//   Content-Type: application/json
//   Idempotency-Key: <notice id>            (the same on every attempt)
//   X-Lostcard-Signature: t=..,v1=..        (webhook_signature.hpp, the holder's secret)
// A 2xx answer marks it delivered and wipes the stored payload (the row's metadata stays).
// Anything else is retried after an exponential back-off (deliveryBackoff), up to max_attempts;
// then the notice is given up (gave_up_at) and its payload wiped too.
//
// The outbox holds each notice sealed (AES-256-GCM, image_vault.hpp, with the id of the key that
// sealed it), never in clear: the notice carries the holder's pickup code, of which the database
// otherwise keeps only a slow hash. Store seals, the worker opens, both with the notice key
// (loadNoticeVault). The associated data binds the row (noticeAssociatedData): a payload copied
// to another row, or a row moved to another holder, does not open. A notice that does not open
// is not sent: the attempt fails ("does not open: ..." in last_error, an error logged) and is
// retried like any other, so a node given the key later still delivers it.
//
// Several workers (one per cloud node) share the outbox: due rows are claimed with
// SELECT ... FOR UPDATE SKIP LOCKED and leased (next_attempt_at pushed past the request's
// deadline), so a notice is sent by one worker at a time and picked up again if a worker dies
// mid-request. Receivers drop repeats by Idempotency-Key.
//
// Notices to a holder whose contact is not verified (holders.contact_verified_at NULL: a holder
// who signed up and has not yet typed the code sent to their webhook, holder_contact.hpp) are
// HELD: neither claimed nor counted as attempts, so never given up; they go out once the contact
// is verified (that transaction NOTIFYs kContactChannel, which wakes the worker).
//
// The same worker sends the holders' contact messages (table contact_outbox: a verification
// code as a v1.ContactVerification, holder_contact.hpp) to the holder's webhook, verified or not:
// sealed like notices (contactAssociatedData), signed with the holder's secret, Idempotency-Key =
// message id, the same back-off and limit, the payload wiped once delivered or given up.
//
// The same worker sends issuers' events (issuer_events.hpp, table issuer_event_outbox) to their
// issuer's webhook: signed with the issuer's webhook secret, Idempotency-Key = event id, the same
// back-off and limit. Their payload holds no secret and is kept in clear.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/image_vault.hpp"

namespace lostcard::cloud {

// ---- The notice key ----
//
//   const auto notice_vault = loadNoticeVault(key_file, hasher);   // once, at start-up
//   Store store({.conninfo = db, .notice_vault = &notice_vault});
//   NoticeDelivery delivery({.conninfo = db, .notice_vault = &notice_vault});
//
// Every cloud node must hold the same notice key(s). They come from, in this order:
//   1. `key_file`: "<key id> <64 hex>" lines, the first seals, every one opens (rotation: add the
//      new key first, retire the old one once no notice it sealed is waiting);
//   2. $LOSTCARD_NOTICE_KEY = "<key id>:<64 hex>";
//   3. else a key derived from the card hash key (HKDF-SHA256), id "card-<card key id>": every
//      node holds the card key already, so notices need no key of their own to be sealed.
// Throws what ImageVault::fromFile / fromEnv throw.
inline constexpr const char* kNoticeKeyEnvVar = "LOSTCARD_NOTICE_KEY";
ImageVault loadNoticeVault(const std::string& key_file, const CardHasher& card_hasher);
// Where loadNoticeVault found the key: "file", "env" or "card key"; for the start-up log.
std::string noticeKeySource(const std::string& key_file);

// The associated data of a sealed notice: its outbox row's notice id, deposit id and holder id.
std::string noticeAssociatedData(std::string_view notice_id, std::string_view deposit_id,
                                 std::string_view holder_id);

// The associated data of a sealed contact message: its contact_outbox id and holder id.
std::string contactAssociatedData(std::string_view message_id, std::string_view holder_id);
// NOTIFY'd when a contact message is queued or a contact becomes verified (held notices due).
inline constexpr const char* kContactChannel = "lostcard_contact";

// Store and NoticeDelivery given no notice_vault share this one: a random key made for this
// process alone (a warning is logged). Enough for tests in one process; lostcard-cloud always
// passes loadNoticeVault's, as notices sealed with it cannot be opened after a restart.
const ImageVault& processNoticeVault();
// `configured`, or processNoticeVault() when null.
const ImageVault& noticeVaultOr(const ImageVault* configured);
// The SET list that wipes a notice_outbox row's payload, sealed or (before migration 6) clear.
inline constexpr const char* kWipeNoticePayloadSql =
    "payload = NULL, payload_key_id = NULL, payload_nonce = NULL, payload_sealed = NULL";

struct DeliveryOptions {
  std::string conninfo;
  std::chrono::milliseconds initial_backoff{500};
  // A holder's endpoint may be down for a day: retries back off to hourly and go on for about
  // 3.7 days (13 doubling tries to reach an hour, then hourly) before the notice is given up.
  std::chrono::milliseconds max_backoff{3'600'000};
  int max_attempts = 100;
  std::chrono::milliseconds request_timeout{5000};
  // Extra CA certificates (PEM) trusted for https webhooks, besides the system's.
  std::string extra_ca_file{};
  // Notices claimed per round.
  int batch_size = 16;
  // Opens the sealed notices (loadNoticeVault); must outlive the worker. Null: processNoticeVault.
  const ImageVault* notice_vault = nullptr;
  // POST to webhooks at internal addresses too (registry_http_client.hpp): for tests, a demo on
  // one machine, or a deployment whose receivers are on a private network. Off, a webhook
  // naming the cloud's own network fails like an unreachable one.
  bool allow_internal_webhooks = false;
};

// The wait before the next attempt after `attempts` failed ones (1, 2, ...):
// initial_backoff * 2^(attempts-1), capped at max_backoff.
std::chrono::milliseconds deliveryBackoff(int attempts, const DeliveryOptions& options);

class NoticeDelivery {
 public:
  explicit NoticeDelivery(DeliveryOptions options);
  ~NoticeDelivery();
  NoticeDelivery(const NoticeDelivery&) = delete;
  NoticeDelivery& operator=(const NoticeDelivery&) = delete;

  void start();
  void stop();

  // One round without the thread: claims the notices due now and tries each once. Returns the
  // number of attempts made. For tools and tests; do not mix with start().
  int deliverDue();

 private:
  void run();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace lostcard::cloud
