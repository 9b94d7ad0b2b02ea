#include "lostcard/cloud/delivery.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>

#include "lostcard/cloud/issuer_events.hpp"
#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/registry_http_client.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/cloud/webhook_signature.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

using Clock = std::chrono::system_clock;

constexpr auto kPollInterval = std::chrono::seconds(1);
// Waits are cut in slices so stop() is honoured promptly.
constexpr auto kListenSlice = std::chrono::milliseconds(100);
constexpr auto kMinWait = std::chrono::milliseconds(10);
constexpr auto kErrorPause = std::chrono::seconds(1);
constexpr std::size_t kMaxErrorText = 300;
constexpr const char* kDoesNotOpen = "the sealed notice does not open: ";
// Notices to send: neither delivered nor given up, sealed (a row from before migration 6 still
// holds its payload in clear until Store::migrate seals it), and to a holder whose contact is
// verified (migration 11: the others' notices are held, neither sent nor given up, until it is).
constexpr const char* kPending =
    "delivered_at IS NULL AND gave_up_at IS NULL AND payload_sealed IS NOT NULL "
    "AND holder_id IN (SELECT id FROM holders WHERE contact_verified_at IS NOT NULL)";
// Contact messages to send (migration 11): every one not yet delivered nor given up.
constexpr const char* kContactPending =
    "delivered_at IS NULL AND gave_up_at IS NULL AND payload_sealed IS NOT NULL";
constexpr const char* kWipeContactPayloadSql =
    "payload_key_id = NULL, payload_nonce = NULL, payload_sealed = NULL";

// The notice key derived from the card key is HKDF-SHA256 of the card key's HMAC of this digit
// string. 32 digits are never a card number (those have 8 to 19: Store::enrollCard, the
// recognizer), so this HMAC is neither stored nor looked up anywhere: only the card key's
// holders can compute it.
constexpr std::string_view kCardKeyDerivationInput = "00000000000000000000000000000000";
constexpr std::string_view kNoticeKeyPurpose = "lostcard notice outbox v1";

struct Claimed {
  std::string id, deposit_id, holder_id, url, secret;
  SealedImage sealed;  // the notice, sealed (noticeAssociatedData)
  int attempts = 0;    // before this one
};

// A contact message (a verification code) claimed for sending: sealed like a notice
// (contactAssociatedData), to its holder's webhook.
struct ClaimedContact {
  std::string id, holder_id, url, secret;
  SealedImage sealed;
  int attempts = 0;  // before this one
};

// An issuer event (issuer_events.hpp) claimed for sending: its payload is not secret.
struct ClaimedEvent {
  std::string id, deposit_id, issuer_id, url, secret, payload;
  int attempts = 0;  // before this one
};

// Issuer events to send: neither delivered nor given up, to an issuer that has a webhook.
constexpr const char* kEventPending =
    "o.delivered_at IS NULL AND o.gave_up_at IS NULL AND i.webhook_url IS NOT NULL";

// Sets a flag when a NOTIFY arrives on the notice channel (or `channel`).
class Wakeup : public pqxx::notification_receiver {
 public:
  Wakeup(pqxx::connection_base& c, std::atomic<bool>& flag,
         const char* channel = Store::kNoticeChannel)
      : pqxx::notification_receiver(c, channel), flag_(flag) {}
  void operator()(const std::string&, int) override { flag_ = true; }

 private:
  std::atomic<bool>& flag_;
};

// Overwrites a string (an opened notice holds the pickup code) when the scope ends.
class EraseOnExit {
 public:
  explicit EraseOnExit(std::string& s) : s_(s) {}
  ~EraseOnExit() { OPENSSL_cleanse(s_.data(), s_.size()); }
  EraseOnExit(const EraseOnExit&) = delete;
  EraseOnExit& operator=(const EraseOnExit&) = delete;

 private:
  std::string& s_;
};

std::string shorten(std::string s) {
  if (s.size() > kMaxErrorText) {
    s.resize(kMaxErrorText);
    s += "...";
  }
  for (char& c : s) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return s;
}

// POSTs `payload` to `url` signed with `secret`, `id` as its Idempotency-Key: what every
// outbox sends. Returns the error text, "" when the receiver took it (2xx).
std::string postSigned(const std::string& url_text, const std::string& secret,
                       const std::string& id, const std::string& payload,
                       const DeliveryOptions& options) {
  const auto url = parseHttpUrl(url_text);
  if (!url) {
    return "webhook URL is not http(s)";
  }
  const auto unix_s =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  const HttpHeaders headers = {
      {"Content-Type", "application/json"},
      {"Idempotency-Key", id},
      {kSignatureHeader, signWebhook(secret, payload, unix_s)},
  };
  const auto response = httpPost(*url, headers, payload, options.request_timeout,
                                 options.extra_ca_file, options.allow_internal_webhooks);
  if (response.status >= 200 && response.status < 300) {
    return "";
  }
  if (response.status == 0) {
    return shorten(response.error);
  }
  return shorten("HTTP " + std::to_string(response.status) + ": " + response.body);
}

// Records one attempt at a sealed outbox row (notice_outbox, contact_outbox): delivered or given
// up, its payload is wiped with `wipe_sql`; else it is retried after the back-off. A row
// withdrawn (or given up) while it was being sent keeps that state: only one still waiting
// takes the outcome. Returns whether it was given up.
bool recordSealedAttempt(pqxx::work& tx, const char* table, const char* wipe_sql,
                         const std::string& id, int attempts, const std::string& error,
                         const DeliveryOptions& options) {
  const auto now = Clock::now();
  const std::string waiting =
      " WHERE id = $1::uuid AND delivered_at IS NULL AND gave_up_at IS NULL";
  if (error.empty()) {
    tx.exec_params(std::string("UPDATE ") + table + " SET delivered_at = $2::timestamptz, " +
                       "attempts = $3, last_error = NULL, " + wipe_sql + waiting,
                   id, detail::pgTimestamp(now), attempts);
    return false;
  }
  if (attempts >= options.max_attempts) {
    tx.exec_params(std::string("UPDATE ") + table + " SET gave_up_at = $2::timestamptz, " +
                       "attempts = $3, last_error = $4, " + wipe_sql + waiting,
                   id, detail::pgTimestamp(now), attempts, error);
    return true;
  }
  tx.exec_params(
      std::string("UPDATE ") + table +
          " SET next_attempt_at = $2::timestamptz, attempts = $3, last_error = $4" + waiting,
      id, detail::pgTimestamp(now + deliveryBackoff(attempts, options)), attempts, error);
  return false;
}

}  // namespace

std::string contactAssociatedData(std::string_view message_id, std::string_view holder_id) {
  std::string ad = "lostcard.contact_outbox|";
  ad.append(message_id).append("|").append(holder_id);
  return ad;
}

ImageVault loadNoticeVault(const std::string& key_file, const CardHasher& card_hasher) {
  if (!key_file.empty()) {
    return ImageVault::fromFile(key_file);
  }
  if (ImageVault::envIsSet(kNoticeKeyEnvVar)) {
    return ImageVault::fromEnv(kNoticeKeyEnvVar);
  }
  std::string secret = card_hasher.hash(kCardKeyDerivationInput);
  auto vault = ImageVault::derived(secret, "card-" + card_hasher.keyId(), kNoticeKeyPurpose);
  OPENSSL_cleanse(secret.data(), secret.size());
  return vault;
}

std::string noticeKeySource(const std::string& key_file) {
  if (!key_file.empty()) {
    return "file";
  }
  return ImageVault::envIsSet(kNoticeKeyEnvVar) ? "env" : "card key";
}

std::string noticeAssociatedData(std::string_view notice_id, std::string_view deposit_id,
                                 std::string_view holder_id) {
  // Ids are UUIDs but the holder's, which comes last: the fields cannot run into each other.
  std::string ad = "lostcard.notice_outbox|";
  ad.append(notice_id).append("|").append(deposit_id).append("|").append(holder_id);
  return ad;
}

const ImageVault& processNoticeVault() {
  static const ImageVault vault = [] {
    std::string key(ImageVault::kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) !=
        1) {
      throw std::runtime_error("notice key: RAND_bytes failed");
    }
    ImageVault v({{"process-" + wire::newUuid().substr(0, 8), key}});
    OPENSSL_cleanse(key.data(), key.size());
    wire::componentLogger("cloud.delivery")
        ->warn(
            "no notice key given: notices are sealed with key {}, made for this process "
            "alone (they cannot be delivered after a restart or by another process)",
            v.keyId());
    return v;
  }();
  return vault;
}

const ImageVault& noticeVaultOr(const ImageVault* configured) {
  return configured != nullptr ? *configured : processNoticeVault();
}

std::chrono::milliseconds deliveryBackoff(int attempts, const DeliveryOptions& options) {
  auto wait = options.initial_backoff;
  for (int i = 1; i < attempts && wait < options.max_backoff; ++i) {
    wait *= 2;
  }
  return std::min(wait, options.max_backoff);
}

struct NoticeDelivery::Impl {
  explicit Impl(DeliveryOptions o)
      : options(std::move(o)),
        vault(noticeVaultOr(options.notice_vault)),
        pool(options.conninfo, 1),
        log(wire::componentLogger("cloud.delivery")) {}

  // Leases up to batch_size due rows of an outbox, so that no other worker sends them meanwhile:
  // `sql` takes $1 now, $2 the batch size and $3 the lease's end, and returns the rows `make`
  // turns into a claim.
  template <class Row>
  std::vector<Row> lease(const std::string& sql, const std::function<Row(const pqxx::row&)>& make) {
    const auto now = Clock::now();
    // A claimed row is not due again until well after this worker's request has timed out.
    const auto lease_until = now + 2 * options.request_timeout + std::chrono::seconds(5);
    return pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      const auto rows = tx.exec_params(sql, detail::pgTimestamp(now), options.batch_size,
                                       detail::pgTimestamp(lease_until));
      tx.commit();
      std::vector<Row> out;
      for (const auto& r : rows) {
        out.push_back(make(r));
      }
      return out;
    });
  }

  std::vector<Claimed> claim() {
    return lease<Claimed>(
        "WITH due AS ("
        "  SELECT id FROM notice_outbox "
        "  WHERE " +
            std::string(kPending) +
            " AND next_attempt_at <= $1 "
            "  ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE notice_outbox o SET next_attempt_at = $3 "
            "FROM due, holders h WHERE o.id = due.id AND h.id = o.holder_id "
            "RETURNING o.id::text, o.deposit_id::text, o.holder_id, o.attempts, "
            "          h.webhook_url, h.webhook_secret, "
            "          o.payload_key_id, o.payload_nonce, o.payload_sealed",
        [](const pqxx::row& r) {
          Claimed n;
          n.id = r[0].as<std::string>();
          n.deposit_id = r[1].as<std::string>();
          n.holder_id = r[2].as<std::string>();
          n.attempts = r[3].as<int>();
          n.url = r[4].as<std::string>();
          n.secret = r[5].as<std::string>();
          n.sealed.key_id = r[6].as<std::string>();
          n.sealed.nonce = pqxx::binarystring(r[7]).str();
          n.sealed.ciphertext = pqxx::binarystring(r[8]).str();
          return n;
        });
  }

  // Opens and sends one notice; returns the error text, "" when the receiver took it.
  std::string send(const Claimed& notice) {
    std::string why;
    auto payload = vault.open(
        notice.sealed, noticeAssociatedData(notice.id, notice.deposit_id, notice.holder_id), &why);
    if (!payload) {
      return kDoesNotOpen + why;
    }
    const EraseOnExit erase(*payload);
    return postSigned(notice.url, notice.secret, notice.id, *payload, options);
  }

  // A notice withdrawn (or given up) while it was being sent keeps that state: only a notice
  // still waiting takes the outcome.
  void recordOutcome(const Claimed& notice, const std::string& error) {
    const int attempts = notice.attempts + 1;
    pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      recordSealedAttempt(tx, "notice_outbox", kWipeNoticePayloadSql, notice.id, attempts, error,
                          options);
      tx.commit();
    });
    if (error.empty()) {
      log->info("notice {} (deposit {}) delivered to holder {} after {} attempt(s)", notice.id,
                notice.deposit_id, notice.holder_id, attempts);
    } else if (error.rfind(kDoesNotOpen, 0) == 0) {
      log->error("notice {} (deposit {}) to holder {}: not sent, attempt {}: {}", notice.id,
                 notice.deposit_id, notice.holder_id, attempts, error);
    } else if (attempts >= options.max_attempts) {
      log->error("notice {} (deposit {}) to holder {}: giving up after {} attempts: {}", notice.id,
                 notice.deposit_id, notice.holder_id, attempts, error);
    } else {
      log->warn("notice {} (deposit {}) to holder {}: attempt {} failed: {}", notice.id,
                notice.deposit_id, notice.holder_id, attempts, error);
    }
  }

  // How long until the earliest pending notice is due (kPollInterval at most).
  std::chrono::milliseconds untilNextDue() {
    const auto next_us = pool.run([&](pqxx::connection& c) -> std::optional<std::int64_t> {
      pqxx::read_transaction tx(c);
      const auto next = tx.exec1(
          "SELECT " +
          detail::epochMicrosSql(
              std::string("least((SELECT min(next_attempt_at) FROM notice_outbox WHERE ") +
              kPending +
              "), (SELECT min(o.next_attempt_at) FROM issuer_event_outbox o "
              "JOIN issuers i ON i.id = o.issuer_id WHERE " +
              kEventPending + "), (SELECT min(next_attempt_at) FROM contact_outbox WHERE " +
              kContactPending + "))"))[0];
      if (next.is_null()) {
        return std::nullopt;
      }
      return next.as<std::int64_t>();
    });
    if (!next_us) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(kPollInterval);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        detail::fromEpochMicros(*next_us) - Clock::now());
    return std::clamp(wait, std::chrono::milliseconds(0),
                      std::chrono::duration_cast<std::chrono::milliseconds>(kPollInterval));
  }

  std::vector<ClaimedEvent> claimEvents() {
    return lease<ClaimedEvent>(
        "WITH due AS ("
        "  SELECT o.id FROM issuer_event_outbox o JOIN issuers i ON i.id = o.issuer_id "
        "  WHERE " +
            std::string(kEventPending) +
            " AND o.next_attempt_at <= $1 "
            "  ORDER BY o.next_attempt_at LIMIT $2 FOR UPDATE OF o SKIP LOCKED) "
            "UPDATE issuer_event_outbox o SET next_attempt_at = $3 "
            "FROM due, issuers i WHERE o.id = due.id AND i.id = o.issuer_id "
            "RETURNING o.id::text, o.deposit_id::text, o.issuer_id, o.attempts, "
            "          i.webhook_url, i.webhook_secret, o.payload::text",
        [](const pqxx::row& r) {
          return ClaimedEvent{r[0].as<std::string>(), r[1].as<std::string>(),
                              r[2].as<std::string>(), r[4].as<std::string>(),
                              r[5].as<std::string>(), r[6].as<std::string>(),
                              r[3].as<int>()};
        });
  }

  // Signs and POSTs one issuer event like a notice (the issuer's secret, the event id as
  // Idempotency-Key); returns the error text, "" when the receiver took it.
  std::string sendEvent(const ClaimedEvent& event) {
    return postSigned(event.url, event.secret, event.id, event.payload, options);
  }

  std::vector<ClaimedContact> claimContacts() {
    return lease<ClaimedContact>(
        "WITH due AS ("
        "  SELECT id FROM contact_outbox "
        "  WHERE " +
            std::string(kContactPending) +
            " AND next_attempt_at <= $1 "
            "  ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE contact_outbox o SET next_attempt_at = $3 "
            "FROM due, holders h WHERE o.id = due.id AND h.id = o.holder_id "
            "RETURNING o.id::text, o.holder_id, o.attempts, h.webhook_url, h.webhook_secret, "
            "          o.payload_key_id, o.payload_nonce, o.payload_sealed",
        [](const pqxx::row& r) {
          return ClaimedContact{r[0].as<std::string>(),
                                r[1].as<std::string>(),
                                r[3].as<std::string>(),
                                r[4].as<std::string>(),
                                SealedImage{r[5].as<std::string>(), pqxx::binarystring(r[6]).str(),
                                            pqxx::binarystring(r[7]).str()},
                                r[2].as<int>()};
        });
  }

  // Opens and sends one contact message (it carries a verification code, wiped after).
  std::string sendContact(const ClaimedContact& message) {
    std::string why;
    auto payload =
        vault.open(message.sealed, contactAssociatedData(message.id, message.holder_id), &why);
    if (!payload) {
      return kDoesNotOpen + why;
    }
    const EraseOnExit erase(*payload);
    return postSigned(message.url, message.secret, message.id, *payload, options);
  }

  void recordContactOutcome(const ClaimedContact& message, const std::string& error) {
    const int attempts = message.attempts + 1;
    const bool gave_up = pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      const bool given_up = recordSealedAttempt(tx, "contact_outbox", kWipeContactPayloadSql,
                                                message.id, attempts, error, options);
      tx.commit();
      return given_up;
    });
    if (error.empty()) {
      log->info("contact message {} delivered to holder {} after {} attempt(s)", message.id,
                message.holder_id, attempts);
    } else if (gave_up) {
      log->error("contact message {} to holder {}: giving up after {} attempts: {}", message.id,
                 message.holder_id, attempts, error);
    } else {
      log->warn("contact message {} to holder {}: attempt {} failed: {}", message.id,
                message.holder_id, attempts, error);
    }
  }

  void recordEventOutcome(const ClaimedEvent& event, const std::string& error) {
    const auto now = Clock::now();
    const int attempts = event.attempts + 1;
    const bool give_up = !error.empty() && attempts >= options.max_attempts;
    pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(
          "UPDATE issuer_event_outbox SET attempts = $2, last_error = $3, "
          "  delivered_at = CASE WHEN $3::text IS NULL THEN $4::timestamptz END, "
          "  gave_up_at = CASE WHEN $5::boolean THEN $4::timestamptz END, "
          "  next_attempt_at = $6::timestamptz "
          "WHERE id = $1::uuid AND delivered_at IS NULL AND gave_up_at IS NULL",
          event.id, attempts, error.empty() ? std::nullopt : std::optional<std::string>(error),
          detail::pgTimestamp(now), give_up,
          detail::pgTimestamp(error.empty() ? now : now + deliveryBackoff(attempts, options)));
      tx.commit();
    });
    if (error.empty()) {
      log->info("issuer event {} (deposit {}) delivered to issuer {} after {} attempt(s)", event.id,
                event.deposit_id, event.issuer_id, attempts);
    } else if (give_up) {
      log->error("issuer event {} (deposit {}) to issuer {}: giving up after {} attempts: {}",
                 event.id, event.deposit_id, event.issuer_id, attempts, error);
    } else {
      log->warn("issuer event {} (deposit {}) to issuer {}: attempt {} failed: {}", event.id,
                event.deposit_id, event.issuer_id, attempts, error);
    }
  }

  int deliverDue() {
    int tried = 0;
    for (const auto& notice : claim()) {
      recordOutcome(notice, send(notice));
      ++tried;
    }
    for (const auto& event : claimEvents()) {
      recordEventOutcome(event, sendEvent(event));
      ++tried;
    }
    for (const auto& message : claimContacts()) {
      recordContactOutcome(message, sendContact(message));
      ++tried;
    }
    return tried;
  }

  DeliveryOptions options;
  const ImageVault& vault;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
  std::mutex mutex;
  std::condition_variable stopped;
};

NoticeDelivery::NoticeDelivery(DeliveryOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

NoticeDelivery::~NoticeDelivery() { stop(); }

void NoticeDelivery::start() {
  if (thread_.joinable()) {
    return;
  }
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void NoticeDelivery::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    stopping_ = true;
  }
  impl_->stopped.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

int NoticeDelivery::deliverDue() { return impl_->deliverDue(); }

void NoticeDelivery::run() {
  auto& log = impl_->log;
  std::unique_ptr<pqxx::connection> listener;
  std::unique_ptr<Wakeup> wakeup;
  std::unique_ptr<Wakeup> event_wakeup;
  std::unique_ptr<Wakeup> contact_wakeup;
  std::atomic<bool> woken{true};
  log->info("notice delivery started");
  while (!stopping_) {
    try {
      if (!listener) {
        listener = std::make_unique<pqxx::connection>(impl_->options.conninfo);
        wakeup = std::make_unique<Wakeup>(*listener, woken);
        event_wakeup = std::make_unique<Wakeup>(*listener, woken, kIssuerEventChannel);
        contact_wakeup = std::make_unique<Wakeup>(*listener, woken, kContactChannel);
        woken = true;  // notices queued while we were not listening
      }
      woken = false;
      // Drain: a full batch may mean more are due.
      while (!stopping_ && impl_->deliverDue() >= impl_->options.batch_size) {
      }
      // Sleep until a NOTIFY, the next retry or the poll interval, whichever comes first (and
      // a little at least, so a row another worker is claiming right now is not spun on).
      const auto until =
          std::chrono::steady_clock::now() + std::max(impl_->untilNextDue(), kMinWait);
      while (!stopping_ && !woken) {
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          break;
        }
        const auto slice = std::min<std::chrono::microseconds>(left, kListenSlice);
        listener->await_notification(0, static_cast<long>(slice.count()));
      }
    } catch (const std::exception& e) {
      log->error("notice delivery: {}; retrying", e.what());
      contact_wakeup.reset();
      event_wakeup.reset();
      wakeup.reset();
      listener.reset();
      std::unique_lock lock(impl_->mutex);
      impl_->stopped.wait_for(lock, kErrorPause, [&] { return stopping_.load(); });
    }
  }
  contact_wakeup.reset();
  event_wakeup.reset();
  wakeup.reset();
  listener.reset();
  log->info("notice delivery stopped");
}

}  // namespace lostcard::cloud
