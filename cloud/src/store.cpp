#include "lostcard/cloud/store.hpp"

#include <google/protobuf/util/json_util.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <limits>
#include <pqxx/pqxx>
#include <stdexcept>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/issuer_events.hpp"
#include "lostcard/cloud/migrations.hpp"
#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

constexpr std::size_t kMinCardDigits = 8;
constexpr std::size_t kMaxCardDigits = 19;

struct ReasonName {
  v1::DifficultReason reason;
  const char* name;
};
constexpr ReasonName kReasonNames[] = {
    {v1::DIFFICULT_REASON_UNREADABLE, "unreadable"},
    {v1::DIFFICULT_REASON_NO_HOLDER, "no_holder"},
    {v1::DIFFICULT_REASON_AMBIGUOUS, "ambiguous"},
    {v1::DIFFICULT_REASON_BAD_IMAGE, "bad_image"},
};

// NULL for "", so optional text columns stay NULL rather than empty.
std::optional<std::string> nullIfEmpty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

std::string text(const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); }

bool isLast4(const std::string& s) {
  if (s.size() != 4) {
    return false;
  }
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

constexpr const char* kDecisionColumns =
    "id::text, kiosk_id, decision, card_id, last4, difficult_reason, detail";

DepositDecision decisionFromRow(const pqxx::row& row) {
  DepositDecision d;
  d.deposit_id = row[0].as<std::string>();
  d.kiosk_id = row[1].as<std::string>();
  d.store = row[2].as<std::string>() == "store";
  if (!row[3].is_null()) {
    d.card_id = row[3].as<std::int64_t>();
  }
  d.last4 = text(row[4]);
  d.reason = difficultReasonFromName(text(row[5]));
  d.detail = text(row[6]);
  return d;
}

std::string describeLocation(const v1::Location& location) {
  switch (location.place_case()) {
    case v1::Location::kSlot:
      return "slot " + std::to_string(location.slot());
    case v1::Location::kBin:
      return "bin";
    default:
      return "nowhere";
  }
}

void requireUuids(const google::protobuf::RepeatedPtrField<v1::InventoryCard>& cards) {
  for (const auto& card : cards) {
    if (!wire::isUuid(card.deposit_id())) {
      throw std::invalid_argument("inventory names a deposit id that is not a UUID");
    }
  }
}

// A difficult card's sealed photos, in the transaction that records its decision.
void insertDifficultImages(pqxx::work& tx, const std::string& deposit_id,
                           const std::vector<DifficultImage>& images,
                           std::chrono::system_clock::time_point now) {
  for (const auto& image : images) {
    tx.exec_params(
        "INSERT INTO difficult_images (deposit_id, face, frame, straightened, blacked_out, "
        "                              key_id, nonce, ciphertext, created_at) "
        "VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz) "
        "ON CONFLICT (deposit_id, face, frame) DO NOTHING",
        deposit_id, image.face, image.frame, image.straightened, image.blacked_out, image.key_id,
        pqxx::binarystring(image.nonce), pqxx::binarystring(image.ciphertext),
        detail::pgTimestamp(now));
  }
}

// The notice as JSON, sealed for its outbox row (delivery.hpp); the clear JSON is erased.
SealedImage sealNotice(const ImageVault& vault, const NoticeInput& in,
                       const std::string& holder_id) {
  std::string json = noticeToJson(buildNotice(in));
  auto sealed = vault.seal(json, noticeAssociatedData(in.notice_id, in.deposit_id, holder_id));
  OPENSSL_cleanse(json.data(), json.size());
  return sealed;
}

}  // namespace

std::string difficultReasonName(v1::DifficultReason reason) {
  for (const auto& entry : kReasonNames) {
    if (entry.reason == reason) {
      return entry.name;
    }
  }
  return "";
}

v1::DifficultReason difficultReasonFromName(std::string_view name) {
  for (const auto& entry : kReasonNames) {
    if (name == entry.name) {
      return entry.reason;
    }
  }
  return v1::DIFFICULT_REASON_UNSPECIFIED;
}

struct Store::Impl {
  explicit Impl(StoreOptions o)
      : options(std::move(o)),
        pool(options.conninfo, options.pool_size),
        log(wire::componentLogger("cloud.registry")) {}

  // Notices waiting in clear, queued before migration 6: sealed in place. Returns how many.
  int sealClearNotices() {
    return pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      const auto rows = tx.exec(
          "SELECT id::text, deposit_id::text, holder_id, payload::text FROM notice_outbox "
          "WHERE payload IS NOT NULL FOR UPDATE");
      for (const auto& r : rows) {
        const std::string id = r[0].as<std::string>();
        std::string json = r[3].as<std::string>();
        const auto sealed = noticeVault().seal(
            json, noticeAssociatedData(id, r[1].as<std::string>(), r[2].as<std::string>()));
        OPENSSL_cleanse(json.data(), json.size());
        tx.exec_params(
            "UPDATE notice_outbox SET payload = NULL, payload_key_id = $2, payload_nonce = $3, "
            "payload_sealed = $4 WHERE id = $1::uuid",
            id, sealed.key_id, pqxx::binarystring(sealed.nonce),
            pqxx::binarystring(sealed.ciphertext));
      }
      tx.commit();
      return static_cast<int>(rows.size());
    });
  }

  // The key that seals notices (made on first use when none was given: most callers of a
  // Store, lostcard-admin's, never queue one).
  const ImageVault& noticeVault() const { return noticeVaultOr(options.notice_vault); }

  StoreOptions options;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
};

Store::Store(StoreOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Store::~Store() = default;

void Store::migrate() {
  impl_->pool.run([&](pqxx::connection& c) { return applyMigrations(c); });
  // Only with a key every node holds: one made for this process would seal them for good.
  if (impl_->options.notice_vault != nullptr) {
    if (const int sealed = impl_->sealClearNotices(); sealed > 0) {
      impl_->log->info("sealed {} notice(s) queued in clear before migration 6", sealed);
    }
  }
}

std::optional<KioskRecord> Store::findKiosk(const std::string& kiosk_id) {
  return impl_->pool.run([&](pqxx::connection& c) -> std::optional<KioskRecord> {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT id, name, address, latitude, longitude, opening_hours, slot_count "
        "FROM kiosks WHERE id = $1",
        kiosk_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    const auto& r = rows[0];
    KioskRecord k;
    k.id = r[0].as<std::string>();
    k.name = r[1].as<std::string>();
    k.address = r[2].as<std::string>();
    k.latitude = r[3].as<double>();
    k.longitude = r[4].as<double>();
    k.opening_hours = r[5].as<std::string>();
    k.slot_count = r[6].as<int>();
    return k;
  });
}

std::vector<CardOwner> Store::findCardsByHash(const std::string& key_id,
                                              const std::string& hmac_bytes) {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT id, holder_id, issuer_id, last4 FROM cards "
        "WHERE number_key_id = $1 AND number_hmac = $2 ORDER BY id",
        key_id, pqxx::binarystring(hmac_bytes));
    std::vector<CardOwner> owners;
    for (const auto& r : rows) {
      owners.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<std::string>(),
                        r[3].as<std::string>()});
    }
    return owners;
  });
}

DepositDecision Store::recordDecision(const DepositDecision& decision,
                                      std::chrono::system_clock::time_point now) {
  return recordDecision(decision, now, {});
}

DepositDecision Store::recordDecision(const DepositDecision& decision,
                                      std::chrono::system_clock::time_point now,
                                      const std::vector<DifficultImage>& images) {
  if (!wire::isUuid(decision.deposit_id)) {
    throw std::invalid_argument("deposit id is not a UUID");
  }
  if (decision.store != decision.card_id.has_value()) {
    throw std::invalid_argument("a store decision needs a card id, a difficult one has none");
  }
  if (!decision.last4.empty() && !isLast4(decision.last4)) {
    throw std::invalid_argument("last4 must be four digits");
  }
  const auto recorded = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto inserted = tx.exec_params(
        "INSERT INTO deposits (id, kiosk_id, status, decision, card_id, last4, difficult_reason, "
        "                      detail, decided_at) "
        "VALUES ($1::uuid, $2, 'decided', $3, $4, $5, $6, $7, $8::timestamptz) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        decision.deposit_id, decision.kiosk_id, decision.store ? "store" : "difficult",
        decision.card_id, nullIfEmpty(decision.last4),
        decision.store ? std::nullopt : nullIfEmpty(difficultReasonName(decision.reason)),
        decision.detail, detail::pgTimestamp(now));
    if (!inserted.empty() && !decision.store) {
      insertDifficultImages(tx, decision.deposit_id, images, now);
    }
    if (!inserted.empty() && decision.store) {
      // The issuer learns its card was found as soon as the cloud knows (issuer_events.hpp).
      queueIssuerEvent(tx, decision.deposit_id, "found", now);
    }
    const auto row = tx.exec_params1(
        std::string("SELECT ") + kDecisionColumns + " FROM deposits WHERE id = $1::uuid",
        decision.deposit_id);
    tx.commit();
    return decisionFromRow(row);
  });
  impl_->log->info("deposit {} of kiosk {}: {}{}", recorded.deposit_id, recorded.kiosk_id,
                   recorded.store ? "store, card ending " + recorded.last4
                                  : "difficult (" + difficultReasonName(recorded.reason) + ")",
                   recorded.store == decision.store ? "" : " (an earlier decision stands)");
  return recorded;
}

std::optional<DepositDecision> Store::findDecision(const std::string& deposit_id) {
  if (!wire::isUuid(deposit_id)) {
    return std::nullopt;
  }
  return impl_->pool.run([&](pqxx::connection& c) -> std::optional<DepositDecision> {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        std::string("SELECT ") + kDecisionColumns + " FROM deposits WHERE id = $1::uuid",
        deposit_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    return decisionFromRow(rows[0]);
  });
}

StoredResult Store::recordStored(const std::string& kiosk_id, const std::string& deposit_id,
                                 const v1::Location& location,
                                 std::chrono::system_clock::time_point now) {
  auto& log = impl_->log;
  if (!wire::isUuid(deposit_id)) {
    return {false, "deposit id is not a UUID", false};
  }
  if (location.place_case() == v1::Location::PLACE_NOT_SET) {
    return {false, "no location given", false};
  }
  const bool in_slot = location.place_case() == v1::Location::kSlot;
  const auto& options = impl_->options;

  return impl_->pool.run([&](pqxx::connection& c) -> StoredResult {
    pqxx::work tx(c);
    // The row lock serializes concurrent reports of the same deposit: the second one waits and
    // then sees "stored", so exactly one notice is made.
    const auto rows = tx.exec_params(
        "SELECT kiosk_id, status, decision, location_kind, location_slot, last4 "
        "FROM deposits WHERE id = $1::uuid FOR UPDATE",
        deposit_id);
    if (rows.empty()) {
      log->warn("deposit {} reported stored by kiosk {} is unknown", deposit_id, kiosk_id);
      return {false, "unknown deposit", false};
    }
    const auto& d = rows[0];
    if (d[0].as<std::string>() != kiosk_id) {
      log->warn("kiosk {} reported deposit {} of kiosk {}", kiosk_id, deposit_id,
                d[0].as<std::string>());
      return {false, "deposit belongs to another kiosk", false};
    }
    if (in_slot) {
      const auto slot_count =
          tx.exec_params1("SELECT slot_count FROM kiosks WHERE id = $1", kiosk_id)[0].as<int>();
      if (location.slot() >= static_cast<std::uint32_t>(slot_count)) {
        log->warn("kiosk {} reported deposit {} in slot {}, but it has {} slots", kiosk_id,
                  deposit_id, location.slot(), slot_count);
        return {false,
                "slot " + std::to_string(location.slot()) + " does not exist (the kiosk has " +
                    std::to_string(slot_count) + " slots)",
                false};
      }
    }
    const std::string status = d[1].as<std::string>();
    const bool store_decision = d[2].as<std::string>() == "store";
    const std::string last4 = text(d[5]);
    // A card an operator resolved by hand (operations.hpp) waits for a slot like a new one:
    // once reported in a slot it takes the normal path below (pickup code, notice).
    const bool restocked = status == "awaiting_restock" && in_slot && store_decision;
    if (status != "decided" && !restocked) {
      const bool same_place = in_slot ? (text(d[3]) == "slot" && !d[4].is_null() &&
                                         d[4].as<std::uint32_t>() == location.slot())
                                      : text(d[3]) == "bin";
      if (!same_place) {
        log->warn("deposit {} of kiosk {} reported at {} but recorded elsewhere; kept as recorded",
                  deposit_id, kiosk_id, describeLocation(location));
      }
      return {true, "", false};
    }

    const std::string now_sql = detail::pgTimestamp(now);
    // A restocked card is back in the box: it no longer counts as collected from the bin, and
    // its restock number is free for the next card resolved at this box.
    tx.exec_params(
        "UPDATE deposits SET status = 'stored', location_kind = $2, location_slot = $3, "
        "stored_at = $4::timestamptz, collected_at = NULL, collected_by = NULL, "
        "collected_by_account = NULL, restock_number = NULL WHERE id = $1::uuid",
        deposit_id, in_slot ? "slot" : "bin",
        in_slot ? std::optional<std::int64_t>(location.slot()) : std::nullopt, now_sql);

    if (!store_decision) {
      tx.commit();
      log->info("deposit {} of kiosk {} (difficult) stored at {}", deposit_id, kiosk_id,
                describeLocation(location));
      return {true, "", false};
    }
    if (!in_slot) {
      tx.commit();
      log->warn(
          "deposit {} of kiosk {} (card ending {}) was decided store but is in the bin: "
          "no notice sent",
          deposit_id, kiosk_id, last4);
      return {true, "", false};
    }

    const auto info = tx.exec_params1(
        "SELECT c.holder_id, h.name, i.name, c.last4, k.id, k.name, k.address, k.latitude, "
        "       k.longitude, k.opening_hours "
        "FROM deposits d "
        "JOIN cards c ON c.id = d.card_id "
        "JOIN holders h ON h.id = c.holder_id "
        "JOIN issuers i ON i.id = c.issuer_id "
        "JOIN kiosks k ON k.id = d.kiosk_id "
        "WHERE d.id = $1::uuid",
        deposit_id);
    const std::string holder_id = info[0].as<std::string>();

    NoticeInput in;
    in.notice_id = wire::newUuid();
    in.deposit_id = deposit_id;
    in.holder_name = info[1].as<std::string>();
    in.issuer_name = info[2].as<std::string>();
    in.card_last4 = info[3].as<std::string>();
    in.kiosk.set_kiosk_id(info[4].as<std::string>());
    in.kiosk.set_name(info[5].as<std::string>());
    in.kiosk.set_address(info[6].as<std::string>());
    in.kiosk.set_latitude(info[7].as<double>());
    in.kiosk.set_longitude(info[8].as<double>());
    in.kiosk.set_opening_hours(info[9].as<std::string>());
    in.slot = location.slot();
    in.pickup_code = generatePickupCode();
    in.pickup_code_expires_at = now + options.pickup_code_ttl;
    in.stored_at = now;
    const auto sealed = sealNotice(impl_->noticeVault(), in, holder_id);

    const auto inserted = tx.exec_params(
        "INSERT INTO notice_outbox (id, deposit_id, holder_id, payload_key_id, payload_nonce, "
        "                           payload_sealed, next_attempt_at, created_at) "
        "VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz) "
        "ON CONFLICT (deposit_id, notice_seq) DO NOTHING RETURNING id",
        in.notice_id, deposit_id, holder_id, sealed.key_id, pqxx::binarystring(sealed.nonce),
        pqxx::binarystring(sealed.ciphertext), now_sql);
    if (inserted.empty()) {
      // Cannot happen while the status check above holds; kept so a notice is never doubled.
      tx.commit();
      return {true, "", false};
    }
    tx.exec_params(
        "INSERT INTO pickup_codes (deposit_id, code_hash, expires_at, tries_left, created_at) "
        "VALUES ($1::uuid, $2, $3::timestamptz, $4, $5::timestamptz) "
        "ON CONFLICT (deposit_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
        "  expires_at = EXCLUDED.expires_at, tries_left = EXCLUDED.tries_left, "
        "  created_at = EXCLUDED.created_at, used_at = NULL",
        deposit_id, hashCode(in.pickup_code), detail::pgTimestamp(in.pickup_code_expires_at),
        options.pickup_code_tries, now_sql);
    // Delivered to listeners only when the transaction commits.
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(kNoticeChannel), in.notice_id);
    tx.commit();
    log->info(
        "deposit {} of kiosk {} stored at {}; notice {} queued for holder {} (card ending {})",
        deposit_id, kiosk_id, describeLocation(location), in.notice_id, holder_id, in.card_last4);
    return {true, "", true};
  });
}

void Store::recordHeartbeat(const std::string& kiosk_id, const v1::Heartbeat& hb,
                            std::chrono::system_clock::time_point now) {
  const auto updated = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto r = tx.exec_params(
        "UPDATE kiosks SET last_heartbeat_at = $2::timestamptz, slots_used = $3, bin_count = $4, "
        "bin_capacity = $5 WHERE id = $1",
        kiosk_id, detail::pgTimestamp(now), static_cast<std::int64_t>(hb.slots_used()),
        static_cast<std::int64_t>(hb.bin_count()), static_cast<std::int64_t>(hb.bin_capacity()));
    tx.commit();
    return r.affected_rows();
  });
  if (updated == 0) {
    impl_->log->warn("heartbeat from unknown kiosk {}", kiosk_id);
  }
}

void Store::upsertIssuer(const std::string& id, const std::string& name) {
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO issuers (id, name) VALUES ($1, $2) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        id, name);
    tx.commit();
  });
}

void Store::upsertHolder(const std::string& id, const std::string& name,
                         const std::string& webhook_url, const std::string& webhook_secret) {
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO holders (id, name, webhook_url, webhook_secret) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, webhook_url = EXCLUDED.webhook_url, "
        "webhook_secret = EXCLUDED.webhook_secret",
        id, name, webhook_url, webhook_secret);
    tx.commit();
  });
}

void Store::upsertKiosk(const KioskRecord& k) {
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO kiosks (id, name, address, latitude, longitude, opening_hours, slot_count) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address, "
        "latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, "
        "opening_hours = EXCLUDED.opening_hours, slot_count = EXCLUDED.slot_count",
        k.id, k.name, k.address, k.latitude, k.longitude, k.opening_hours, k.slot_count);
    tx.commit();
  });
}

std::int64_t Store::enrollCard(const CardHasher& hasher, const std::string& issuer_id,
                               const std::string& holder_id, std::string_view number) {
  const std::string digits = cardDigits(number);
  if (digits.size() < kMinCardDigits || digits.size() > kMaxCardDigits) {
    throw std::invalid_argument("a card number has 8 to 19 digits");
  }
  const std::string hmac = hasher.hash(digits);
  const std::string last4 = digits.substr(digits.size() - 4);
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto row = tx.exec_params1(
        "INSERT INTO cards (issuer_id, holder_id, number_key_id, number_hmac, last4) "
        "VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (number_key_id, number_hmac) DO UPDATE SET issuer_id = EXCLUDED.issuer_id, "
        "holder_id = EXCLUDED.holder_id RETURNING id",
        issuer_id, holder_id, hasher.keyId(), pqxx::binarystring(hmac), last4);
    tx.commit();
    return row[0].as<std::int64_t>();
  });
}

std::vector<DepositSummary> Store::listDeposits(const std::optional<std::string>& kiosk_id) {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT id::text, kiosk_id, status, decision, location_kind, location_slot, last4, "
        "       difficult_reason "
        "FROM deposits WHERE $1::text IS NULL OR kiosk_id = $1 "
        "ORDER BY decided_at DESC, id",
        kiosk_id);
    std::vector<DepositSummary> out;
    for (const auto& r : rows) {
      DepositSummary s;
      s.id = r[0].as<std::string>();
      s.kiosk_id = r[1].as<std::string>();
      s.status = r[2].as<std::string>();
      s.decision = r[3].as<std::string>();
      const std::string kind = text(r[4]);
      s.location = kind == "slot" ? "slot:" + r[5].as<std::string>() : kind.empty() ? "-" : kind;
      s.last4 = text(r[6]);
      s.reason = text(r[7]);
      out.push_back(std::move(s));
    }
    return out;
  });
}

std::vector<NoticeSummary> Store::listNotices() {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec(
        "SELECT id::text, deposit_id::text, holder_id, attempts, delivered_at IS NOT NULL, "
        "       gave_up_at IS NOT NULL, last_error "
        "FROM notice_outbox ORDER BY created_at DESC, id");
    std::vector<NoticeSummary> out;
    for (const auto& r : rows) {
      NoticeSummary s;
      s.id = r[0].as<std::string>();
      s.deposit_id = r[1].as<std::string>();
      s.holder_id = r[2].as<std::string>();
      s.attempts = r[3].as<int>();
      s.delivered = r[4].as<bool>();
      s.gave_up = r[5].as<bool>();
      s.last_error = text(r[6]);
      out.push_back(std::move(s));
    }
    return out;
  });
}

std::optional<v1::RetrievalNotice> Store::waitingNotice(const std::string& deposit_id) {
  if (!wire::isUuid(deposit_id)) {
    return std::nullopt;
  }
  const auto row = impl_->pool.run([&](pqxx::connection& c) -> std::optional<pqxx::row> {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT id::text, holder_id, payload_key_id, payload_nonce, payload_sealed "
        "FROM notice_outbox WHERE deposit_id = $1::uuid AND delivered_at IS NULL "
        "AND gave_up_at IS NULL AND payload_sealed IS NOT NULL "
        "ORDER BY notice_seq DESC LIMIT 1",
        deposit_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    return rows[0];
  });
  if (!row) {
    return std::nullopt;
  }
  const SealedImage sealed{(*row)[2].as<std::string>(), pqxx::binarystring((*row)[3]).str(),
                           pqxx::binarystring((*row)[4]).str()};
  std::string why;
  auto json = impl_->noticeVault().open(
      sealed,
      noticeAssociatedData((*row)[0].as<std::string>(), deposit_id, (*row)[1].as<std::string>()),
      &why);
  if (!json) {
    impl_->log->warn("the waiting notice of deposit {} does not open: {}", deposit_id, why);
    return std::nullopt;
  }
  auto notice = noticeFromJson(*json);
  OPENSSL_cleanse(json->data(), json->size());
  return notice;
}

bool Store::recordInventory(const std::string& kiosk_id, const v1::Inventory& inventory,
                            std::chrono::system_clock::time_point now) {
  requireUuids(inventory.slots());
  requireUuids(inventory.bin());
  requireUuids(inventory.tray());
  for (const auto& u : inventory.uncertain()) {
    if (!wire::isUuid(u.deposit_id())) {
      throw std::invalid_argument("inventory names a deposit id that is not a UUID");
    }
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;  // deposit_id, as in the .proto, for psql readers
  if (!google::protobuf::util::MessageToJsonString(inventory, &json, print).ok()) {
    throw std::runtime_error("cannot encode an inventory as JSON");
  }
  const auto journal_seq = static_cast<std::int64_t>(
      std::min<std::uint64_t>(inventory.journal_seq(), std::numeric_limits<std::int64_t>::max()));
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // An older snapshot (taken earlier by the kiosk's clock and with no more journal moves) is an
    // old message that arrived late: it does not replace a newer one.
    const auto r = tx.exec_params(
        "INSERT INTO kiosk_inventories (kiosk_id, journal_seq, taken_at_ms, received_at, "
        "                               slots_total, bin_capacity, inventory) "
        "VALUES ($1, $2, $3, $4::timestamptz, $5, $6, $7::jsonb) "
        "ON CONFLICT (kiosk_id) DO UPDATE SET journal_seq = EXCLUDED.journal_seq, "
        "  taken_at_ms = EXCLUDED.taken_at_ms, received_at = EXCLUDED.received_at, "
        "  slots_total = EXCLUDED.slots_total, bin_capacity = EXCLUDED.bin_capacity, "
        "  inventory = EXCLUDED.inventory "
        "WHERE EXCLUDED.taken_at_ms >= kiosk_inventories.taken_at_ms "
        "   OR EXCLUDED.journal_seq > kiosk_inventories.journal_seq",
        kiosk_id, journal_seq, inventory.taken_at_ms(), detail::pgTimestamp(now),
        static_cast<std::int64_t>(inventory.slots_total()),
        static_cast<std::int64_t>(inventory.bin_capacity()), json);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

Reconciliation Store::reconcile(const std::string& kiosk_id) {
  struct Inputs {
    std::optional<InventorySnapshot> snapshot;
    std::vector<CloudDeposit> deposits;
    std::optional<std::chrono::system_clock::time_point> latest_record_at;
    int slot_count = 0;
  };
  const auto in = impl_->pool.run([&](pqxx::connection& c) {
    // One snapshot of the database for the three reads, so they describe the same moment.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
    Inputs out;
    const auto kiosk = tx.exec_params("SELECT slot_count FROM kiosks WHERE id = $1", kiosk_id);
    if (!kiosk.empty()) {
      out.slot_count = kiosk[0][0].as<int>();
    }
    const auto inventory =
        tx.exec_params("SELECT inventory::text, " + detail::epochMicrosSql("received_at") +
                           " FROM kiosk_inventories WHERE kiosk_id = $1",
                       kiosk_id);
    if (!inventory.empty()) {
      InventorySnapshot snap;
      google::protobuf::util::JsonParseOptions parse;
      parse.ignore_unknown_fields = true;  // written by a newer node
      if (!google::protobuf::util::JsonStringToMessage(inventory[0][0].as<std::string>(),
                                                       &snap.inventory, parse)
               .ok()) {
        throw std::runtime_error("unreadable inventory of kiosk " + kiosk_id);
      }
      snap.received_at = detail::fromEpochMicros(inventory[0][1].as<std::int64_t>());
      out.snapshot = std::move(snap);
    }
    // A card to restock that an operator took out of the box is no longer in it.
    const auto rows = tx.exec_params(
        // A card to restock that left the bin with the operator has no place in the box.
        "SELECT id::text, status, CASE WHEN collected_at IS NULL THEN location_kind END, "
        "location_slot, last4 FROM deposits WHERE kiosk_id = $1 ORDER BY id",
        kiosk_id);
    for (const auto& r : rows) {
      CloudDeposit d;
      d.deposit_id = r[0].as<std::string>();
      d.status = r[1].as<std::string>();
      const std::string kind = text(r[2]);
      d.place = kind == "slot" ? "slot:" + r[3].as<std::string>() : kind;
      d.last4 = text(r[4]);
      out.deposits.push_back(std::move(d));
    }
    const auto latest = tx.exec_params1(
        "SELECT " + detail::epochMicrosSql("max(greatest(decided_at, stored_at, collected_at))") +
            " FROM deposits WHERE kiosk_id = $1",
        kiosk_id);
    if (!latest[0].is_null()) {
      out.latest_record_at = detail::fromEpochMicros(latest[0].as<std::int64_t>());
    }
    return out;
  });
  return reconcileInventory(kiosk_id, in.snapshot, in.deposits, in.latest_record_at, in.slot_count);
}

std::vector<std::string> Store::listKioskIds() {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    std::vector<std::string> ids;
    for (const auto& r : tx.exec("SELECT id FROM kiosks ORDER BY id")) {
      ids.push_back(r[0].as<std::string>());
    }
    return ids;
  });
}

// ---- Pickup codes: redemption and new codes (pickup_rules.hpp) ----

namespace {

// The kiosk's pickup lock: pg_advisory_xact_lock(kPickupLockClass, hashtext(kiosk id)). The
// two-key form, so it never meets the migrations' one-key lock. Serializes the attempts of one
// kiosk (its throttle count and its deposits); two kiosks whose ids hash alike only wait for
// each other.
constexpr int kPickupLockClass = 0x70696b;  // "pik"

void lockKioskPickups(pqxx::transaction_base& tx, const std::string& kiosk_id) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kPickupLockClass, kiosk_id);
}

std::optional<PickupOutcome> findRecordedAttempt(pqxx::transaction_base& tx,
                                                 const PickupAttempt& a) {
  const auto rows = tx.exec_params(
      "SELECT result, coalesce(deposit_id::text, ''), slot, tries_left, retry_after_ms "
      "FROM pickup_attempts WHERE kiosk_id = $1 AND request_id = $2::uuid",
      a.kiosk_id, a.request_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  PickupOutcome o;
  o.verdict.result = pickupResultFromName(rows[0][0].as<std::string>());
  o.deposit_id = rows[0][1].as<std::string>();
  o.slot = rows[0][2].as<std::uint32_t>();
  o.verdict.tries_left = rows[0][3].as<int>();
  o.verdict.retry_after = std::chrono::milliseconds(rows[0][4].as<std::int64_t>());
  o.repeated = true;
  return o;
}

// The kiosk's recent wrong codes and the deposit waiting in the slot, its rows locked.
PickupState readPickupState(pqxx::transaction_base& tx, const PickupAttempt& a,
                            std::chrono::system_clock::time_point now, const PickupLimits& limits) {
  PickupState s;
  const std::string window_start = detail::pgTimestamp(now - limits.kiosk_window);
  s.kiosk_wrong_tries = tx.exec_params1(
                              "SELECT count(*) FROM pickup_attempts WHERE kiosk_id = $1 "
                              "AND result = 'wrong_code' AND at > $2::timestamptz",
                              a.kiosk_id, window_start)[0]
                            .as<int>();
  if (s.kiosk_wrong_tries >= limits.kiosk_wrong_tries && limits.kiosk_wrong_tries > 0) {
    const auto nth =
        tx.exec_params("SELECT " + detail::epochMicrosSql("at") +
                           " FROM pickup_attempts WHERE kiosk_id = $1 AND result = 'wrong_code' "
                           "AND at > $2::timestamptz ORDER BY at DESC OFFSET $3 LIMIT 1",
                       a.kiosk_id, window_start, limits.kiosk_wrong_tries - 1);
    if (!nth.empty()) {
      s.limit_th_newest_wrong_try = detail::fromEpochMicros(nth[0][0].as<std::int64_t>());
    }
  }
  const auto rows = tx.exec_params(
      "SELECT d.id::text, p.code_hash, p.tries_left, " + detail::epochMicrosSql("p.expires_at") +
          " FROM deposits d JOIN pickup_codes p ON p.deposit_id = d.id "
          "WHERE d.kiosk_id = $1 AND d.status = 'stored' AND d.location_kind = 'slot' "
          "  AND d.location_slot = $2 AND p.used_at IS NULL "
          "ORDER BY d.stored_at DESC, d.id LIMIT 1 FOR UPDATE OF d, p",
      a.kiosk_id, static_cast<std::int64_t>(a.slot));
  if (!rows.empty()) {
    s.deposit_waiting = true;
    s.deposit_id = rows[0][0].as<std::string>();
    s.code_hash = rows[0][1].as<std::string>();
    s.tries_left = rows[0][2].as<int>();
    s.expires_at = detail::fromEpochMicros(rows[0][3].as<std::int64_t>());
  }
  return s;
}

// Records the attempt (pickup_attempts and the audit log) in the caller's transaction.
void recordAttempt(pqxx::transaction_base& tx, const PickupAttempt& a, const PickupOutcome& o,
                   std::chrono::system_clock::time_point now) {
  const std::string result = pickupResultName(o.verdict.result);
  tx.exec_params(
      "INSERT INTO pickup_attempts (kiosk_id, request_id, slot, deposit_id, result, tries_left, "
      "                             retry_after_ms, at) "
      "VALUES ($1, $2::uuid, $3, $4::uuid, $5, $6, $7, $8::timestamptz)",
      a.kiosk_id, a.request_id, static_cast<std::int64_t>(a.slot), nullIfEmpty(o.deposit_id),
      result, std::max(0, o.verdict.tries_left),
      static_cast<std::int64_t>(o.verdict.retry_after.count()), detail::pgTimestamp(now));
  AuditEntry entry;
  entry.actor_role = "kiosk";
  entry.actor_id = a.kiosk_id;
  entry.action = "pickup.attempt";
  entry.object_kind = "deposit";
  if (!o.deposit_id.empty()) {
    entry.object_ids.push_back(o.deposit_id);
  }
  entry.result = result;
  // The request id is in pickup_attempts; here it would only meet the digit-run masking.
  entry.detail = "slot index " + std::to_string(a.slot);
  appendAudit(tx, entry, now);
}

// One round of a redemption: either settled (an answer recorded) or the code to check.
struct PickupRound {
  std::optional<PickupOutcome> settled;
  std::string deposit_id;
  std::string code_hash;
};

// What the notice about `deposit_id` says besides the code and the times; and its holder.
std::pair<std::string, NoticeInput> noticeBasis(pqxx::transaction_base& tx,
                                                const std::string& deposit_id) {
  const auto info = tx.exec_params1(
      "SELECT c.holder_id, h.name, i.name, c.last4, k.id, k.name, k.address, k.latitude, "
      "       k.longitude, k.opening_hours, d.location_slot, " +
          detail::epochMicrosSql("d.stored_at") +
          " FROM deposits d "
          "JOIN cards c ON c.id = d.card_id "
          "JOIN holders h ON h.id = c.holder_id "
          "JOIN issuers i ON i.id = c.issuer_id "
          "JOIN kiosks k ON k.id = d.kiosk_id "
          "WHERE d.id = $1::uuid",
      deposit_id);
  NoticeInput in;
  in.deposit_id = deposit_id;
  in.holder_name = info[1].as<std::string>();
  in.issuer_name = info[2].as<std::string>();
  in.card_last4 = info[3].as<std::string>();
  in.kiosk.set_kiosk_id(info[4].as<std::string>());
  in.kiosk.set_name(info[5].as<std::string>());
  in.kiosk.set_address(info[6].as<std::string>());
  in.kiosk.set_latitude(info[7].as<double>());
  in.kiosk.set_longitude(info[8].as<double>());
  in.kiosk.set_opening_hours(info[9].as<std::string>());
  in.slot = info[10].as<std::uint32_t>();
  in.stored_at = detail::fromEpochMicros(info[11].as<std::int64_t>());
  return {info[0].as<std::string>(), std::move(in)};
}

}  // namespace

PickupOutcome Store::redeemPickupCode(const PickupAttempt& a,
                                      std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(a.request_id)) {
    throw std::invalid_argument("pickup request id is not a UUID");
  }
  auto& log = impl_->log;
  const PickupLimits& limits = impl_->options.pickup_limits;
  const auto finish = [&](const PickupOutcome& o) {
    const auto level =
        o.verdict.result == v1::PICKUP_RESULT_OPEN ? spdlog::level::info : spdlog::level::warn;
    log->log(level, "kiosk {} slot index {}: pickup request {}{}: {} (deposit {}, tries left {})",
             a.kiosk_id, a.slot, a.request_id, o.repeated ? " (repeated)" : "",
             pickupResultName(o.verdict.result), o.deposit_id.empty() ? "-" : o.deposit_id,
             o.verdict.tries_left);
    return o;
  };
  const auto settle = [&](pqxx::work& tx, const PickupState& s, const PickupVerdict& v) {
    PickupOutcome o;
    o.verdict = v;
    o.deposit_id = s.deposit_id;
    o.slot = a.slot;
    recordAttempt(tx, a, o, now);
    tx.commit();
    return o;
  };

  // Each round: read (settling at once what needs no code check), check the slow hash with no
  // transaction open, then apply under the locks if the code is still the one checked. A round
  // starts over only when a new code was issued for the slot meanwhile.
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    const PickupRound first = impl_->pool.run([&](pqxx::connection& c) -> PickupRound {
      pqxx::work tx(c);
      lockKioskPickups(tx, a.kiosk_id);
      if (auto recorded = findRecordedAttempt(tx, a)) {
        return {recorded, "", ""};
      }
      const PickupState s = readPickupState(tx, a, now, limits);
      if (auto early = judgeWithoutCode(s, a.typed_code, now, limits)) {
        return {settle(tx, s, *early), "", ""};
      }
      return {std::nullopt, s.deposit_id, s.code_hash};  // rolled back: nothing written
    });
    if (first.settled) {
      return finish(*first.settled);
    }

    const bool matches = verifyCode(a.typed_code, first.code_hash);

    const PickupRound second = impl_->pool.run([&](pqxx::connection& c) -> PickupRound {
      pqxx::work tx(c);
      lockKioskPickups(tx, a.kiosk_id);
      if (auto recorded = findRecordedAttempt(tx, a)) {
        return {recorded, "", ""};  // the same request, answered meanwhile (or before a retry)
      }
      const PickupState s = readPickupState(tx, a, now, limits);
      if (auto early = judgeWithoutCode(s, a.typed_code, now, limits)) {
        // Throttled, locked or used meanwhile: the check just made is not told.
        return {settle(tx, s, *early), "", ""};
      }
      if (s.deposit_id != first.deposit_id || s.code_hash != first.code_hash) {
        return {std::nullopt, "", ""};  // a new code: check again
      }
      const PickupVerdict v = judgeCode(matches, s);
      if (v.result == v1::PICKUP_RESULT_OPEN) {
        const std::string now_sql = detail::pgTimestamp(now);
        tx.exec_params(
            "UPDATE pickup_codes SET used_at = $2::timestamptz WHERE deposit_id = $1::uuid",
            s.deposit_id, now_sql);
        tx.exec_params(
            "UPDATE deposits SET status = 'releasing', released_at = $2::timestamptz "
            "WHERE id = $1::uuid",
            s.deposit_id, now_sql);
        // A notice still on its way carries this code, now used: withdrawn, so that nobody
        // (the holder's inbox, a card query) counts on it; a card left in its slot needs a new
        // code anyway.
        tx.exec_params(
            std::string("UPDATE notice_outbox SET gave_up_at = $2::timestamptz, "
                        "  last_error = 'withdrawn: its pickup code was used', ") +
                kWipeNoticePayloadSql +
                " WHERE deposit_id = $1::uuid AND delivered_at IS NULL AND gave_up_at IS NULL",
            s.deposit_id, now_sql);
      } else {
        tx.exec_params("UPDATE pickup_codes SET tries_left = $2 WHERE deposit_id = $1::uuid",
                       s.deposit_id, v.tries_left);
      }
      return {settle(tx, s, v), "", ""};
    });
    if (second.settled) {
      return finish(*second.settled);
    }
  }
  throw std::runtime_error("pickup: the code of slot " + std::to_string(a.slot) + " of kiosk " +
                           a.kiosk_id + " kept changing while it was checked");
}

NewPickupCode Store::issueNewPickupCode(const std::string& deposit_id, const std::string& holder_id,
                                        std::chrono::system_clock::time_point now) {
  constexpr const char* kNotYours = "no such deposit of this holder";
  if (!wire::isUuid(deposit_id)) {
    return {false, kNotYours, ""};
  }
  const auto& options = impl_->options;
  const std::string code = generatePickupCode();
  const std::string code_hash = hashCode(code);  // slow: before the transaction
  const auto result = impl_->pool.run([&](pqxx::connection& c) -> NewPickupCode {
    pqxx::work tx(c);
    // The same order of locks as a redemption: the kiosk's pickup lock, then the rows.
    const auto owner = tx.exec_params(
        "SELECT d.kiosk_id, d.status, d.location_kind, c.holder_id FROM deposits d "
        "JOIN cards c ON c.id = d.card_id WHERE d.id = $1::uuid",
        deposit_id);
    if (owner.empty() || owner[0][3].as<std::string>() != holder_id) {
      return {false, kNotYours, ""};
    }
    lockKioskPickups(tx, owner[0][0].as<std::string>());
    const auto rows = tx.exec_params(
        "SELECT d.status, d.location_kind FROM deposits d WHERE d.id = $1::uuid FOR UPDATE",
        deposit_id);
    if (rows[0][0].as<std::string>() != "stored" || text(rows[0][1]) != "slot") {
      return {false, "the card is not waiting in a slot (" + rows[0][0].as<std::string>() + ")",
              ""};
    }
    auto [holder, in] = noticeBasis(tx, deposit_id);
    const std::string now_sql = detail::pgTimestamp(now);
    in.notice_id = wire::newUuid();
    in.pickup_code = code;
    in.pickup_code_expires_at = now + options.pickup_code_ttl;
    const auto sealed = sealNotice(impl_->noticeVault(), in, holder);

    tx.exec_params(
        "INSERT INTO pickup_codes (deposit_id, code_hash, expires_at, tries_left, created_at) "
        "VALUES ($1::uuid, $2, $3::timestamptz, $4, $5::timestamptz) "
        "ON CONFLICT (deposit_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
        "  expires_at = EXCLUDED.expires_at, tries_left = EXCLUDED.tries_left, "
        "  created_at = EXCLUDED.created_at, used_at = NULL",
        deposit_id, code_hash, detail::pgTimestamp(in.pickup_code_expires_at),
        options.pickup_code_tries, now_sql);
    // The holder is coming: the unclaimed sweep ages the card from now (unclaimed.hpp).
    tx.exec_params("UPDATE deposits SET holder_action_at = $2::timestamptz WHERE id = $1::uuid",
                   deposit_id, now_sql);
    // A notice still on its way carries the old code, which no longer works: withdrawn, its
    // payload wiped as after a delivery.
    tx.exec_params(
        std::string("UPDATE notice_outbox SET gave_up_at = $2::timestamptz, "
                    "  last_error = 'withdrawn: a new pickup code was issued', ") +
            kWipeNoticePayloadSql +
            " WHERE deposit_id = $1::uuid AND delivered_at IS NULL AND gave_up_at IS NULL",
        deposit_id, now_sql);
    tx.exec_params(
        "INSERT INTO notice_outbox (id, deposit_id, holder_id, payload_key_id, payload_nonce, "
        "                           payload_sealed, next_attempt_at, created_at, notice_seq) "
        "SELECT $1::uuid, $2::uuid, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz, "
        "       coalesce(max(notice_seq), 0) + 1 "
        "FROM notice_outbox WHERE deposit_id = $2::uuid",
        in.notice_id, deposit_id, holder, sealed.key_id, pqxx::binarystring(sealed.nonce),
        pqxx::binarystring(sealed.ciphertext), now_sql);
    AuditEntry entry;
    entry.actor_role = "holder";
    entry.actor_id = holder_id;
    entry.action = "pickup.new_code";
    entry.object_kind = "deposit";
    entry.object_ids = {deposit_id};
    entry.result = "ok";
    entry.detail = "notice " + in.notice_id;
    appendAudit(tx, entry, now);
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(kNoticeChannel), in.notice_id);
    tx.commit();
    return {true, "", in.notice_id};
  });
  if (result.ok) {
    impl_->log->info("deposit {}: new pickup code for holder {}; notice {} queued", deposit_id,
                     holder_id, result.notice_id);
  } else {
    impl_->log->warn("deposit {}: new pickup code for holder {} refused: {}", deposit_id, holder_id,
                     result.error);
  }
  return result;
}

// ---- Difficult cards' photos (image_vault.hpp, image_redaction.hpp) ----

namespace {

// The columns every read of difficult_images starts with: deposit_id::text, face, frame,
// straightened, blacked_out, key_id.
DifficultImage difficultImageHead(const pqxx::row& r) {
  DifficultImage image;
  image.deposit_id = r[0].as<std::string>();
  image.face = r[1].as<std::string>();
  image.frame = r[2].as<int>();
  image.straightened = r[3].as<bool>();
  image.blacked_out = r[4].as<bool>();
  image.key_id = r[5].as<std::string>();
  return image;
}

}  // namespace

std::vector<DifficultImage> Store::difficultImages(const std::string& deposit_id,
                                                   const AuditEntry* access,
                                                   std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(deposit_id)) {
    return {};
  }
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto rows = tx.exec_params(
        "SELECT deposit_id::text, face, frame, straightened, blacked_out, key_id, nonce, "
        "       ciphertext, " +
            detail::epochMicrosSql("created_at") +
            " FROM difficult_images WHERE deposit_id = $1::uuid "
            "ORDER BY face = 'back', frame",
        deposit_id);
    std::vector<DifficultImage> out;
    for (const auto& r : rows) {
      DifficultImage image = difficultImageHead(r);
      image.nonce = pqxx::binarystring(r[6]).str();
      image.ciphertext = pqxx::binarystring(r[7]).str();
      image.ciphertext_bytes = image.ciphertext.size();
      image.created_at = detail::fromEpochMicros(r[8].as<std::int64_t>());
      out.push_back(std::move(image));
    }
    if (access != nullptr) {
      AuditEntry entry = *access;
      entry.object_kind = "deposit";
      entry.object_ids = {deposit_id};
      entry.detail = std::to_string(out.size()) + " photo(s)";
      appendAudit(tx, entry, now);
    }
    tx.commit();
    return out;
  });
}

std::vector<DifficultImage> Store::listDifficultImages(
    const std::optional<std::string>& deposit_id) {
  if (deposit_id && !wire::isUuid(*deposit_id)) {
    return {};
  }
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT deposit_id::text, face, frame, straightened, blacked_out, key_id, "
        "       octet_length(ciphertext), " +
            detail::epochMicrosSql("created_at") +
            " FROM difficult_images WHERE $1::uuid IS NULL OR deposit_id = $1::uuid "
            "ORDER BY created_at DESC, deposit_id, face = 'back', frame",
        deposit_id);
    std::vector<DifficultImage> out;
    for (const auto& r : rows) {
      DifficultImage image = difficultImageHead(r);
      image.ciphertext_bytes = r[6].as<std::size_t>();
      image.created_at = detail::fromEpochMicros(r[7].as<std::int64_t>());
      out.push_back(std::move(image));
    }
    return out;
  });
}

int Store::purgeDifficultImages(std::chrono::system_clock::time_point now,
                                std::chrono::hours retention) {
  const int purged = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto r = tx.exec_params(
        "DELETE FROM difficult_images WHERE created_at < $1::timestamptz",
        detail::pgTimestamp(now - retention));
    tx.commit();
    return static_cast<int>(r.affected_rows());
  });
  if (purged > 0) {
    impl_->log->info("deleted {} photo(s) of difficult cards kept longer than {} days", purged,
                     retention.count() / 24);
  }
  return purged;
}

// ---- Doors opened at the box: pickup reports and the operator's bin (issue 6) ----

namespace {

// The kiosk's operator lock: serializes its operator-code checks and restock checks (their
// throttle counts), as kPickupLockClass does its pickups.
constexpr int kOperatorLockClass = 0x62696e;  // "bin"

void lockKioskOperator(pqxx::work& tx, const std::string& kiosk_id) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kOperatorLockClass, kiosk_id);
}

// The per-kiosk limit on wrong entries at the box (operator codes, restock numbers): `newest`
// holds the times (epochMicrosSql) of the kiosk's wrong entries within `window`, newest first,
// at most `tries` of them. 0 when another entry is taken now; else the milliseconds until the
// oldest of them leaves the window.
std::int64_t entryWaitMs(const pqxx::result& newest, int tries, std::chrono::seconds window,
                         std::chrono::system_clock::time_point now) {
  if (tries <= 0 || static_cast<int>(newest.size()) < tries) {
    return 0;
  }
  const auto oldest = detail::fromEpochMicros(newest.back()[0].as<std::int64_t>());
  return std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(oldest + window - now).count());
}

std::string outcomeName(v1::PickupOutcome outcome) {
  switch (outcome) {
    case v1::PICKUP_OUTCOME_TAKEN:
      return "taken";
    case v1::PICKUP_OUTCOME_NOT_TAKEN:
      return "not_taken";
    case v1::PICKUP_OUTCOME_DOOR_FAILED:
      return "door_failed";
    case v1::PICKUP_OUTCOME_NOT_OPENED:
      return "not_opened";
    default:
      return "";
  }
}

std::string operatorResultName(v1::OperatorAuthResult result) {
  switch (result) {
    case v1::OPERATOR_AUTH_RESULT_OK:
      return "ok";
    case v1::OPERATOR_AUTH_RESULT_THROTTLED:
      return "throttled";
    default:
      return "refused";
  }
}

v1::OperatorAuthResult operatorResultFromName(const std::string& name) {
  return name == "ok"          ? v1::OPERATOR_AUTH_RESULT_OK
         : name == "throttled" ? v1::OPERATOR_AUTH_RESULT_THROTTLED
                               : v1::OPERATOR_AUTH_RESULT_REFUSED;
}

}  // namespace

ReportResult Store::recordPickupDone(const PickupReport& r,
                                     std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(r.request_id)) {
    throw std::invalid_argument("pickup report: request id is not a UUID");
  }
  const std::string outcome = outcomeName(r.outcome);
  if (outcome.empty()) {
    return {false, "pickup report without an outcome", false, 0};
  }
  auto result = impl_->pool.run([&](pqxx::connection& c) -> ReportResult {
    pqxx::work tx(c);
    lockKioskPickups(tx, r.kiosk_id);
    const auto attempt = tx.exec_params(
        "SELECT coalesce(deposit_id::text, ''), coalesce(done_outcome, '') FROM pickup_attempts "
        "WHERE kiosk_id = $1 AND request_id = $2::uuid AND result = 'open'",
        r.kiosk_id, r.request_id);
    if (attempt.empty()) {
      return {false, "no pickup request " + r.request_id + " of this kiosk opened a slot", false,
              0};
    }
    const std::string deposit_id = attempt[0][0].as<std::string>();
    if (deposit_id != r.deposit_id) {
      return {false, "pickup request " + r.request_id + " opened another deposit", false, 0};
    }
    if (!attempt[0][1].as<std::string>().empty()) {
      if (attempt[0][1].as<std::string>() != outcome) {
        impl_->log->warn("deposit {}: pickup {} reported {} again as {}; the first report holds",
                         deposit_id, r.request_id, attempt[0][1].as<std::string>(), outcome);
      }
      return {true, "", true, 0};
    }
    const std::string now_sql = detail::pgTimestamp(now);
    const auto status =
        tx.exec_params1("SELECT status FROM deposits WHERE id = $1::uuid FOR UPDATE", deposit_id)[0]
            .as<std::string>();
    int collected = 0;
    if (status != "releasing") {
      impl_->log->warn("deposit {}: pickup {} reported {} while the deposit is {}; unchanged",
                       deposit_id, r.request_id, outcome, status);
    } else if (r.outcome == v1::PICKUP_OUTCOME_TAKEN) {
      tx.exec_params(
          "UPDATE deposits SET status = 'collected', collected_at = $2::timestamptz, "
          "collected_by = 'pickup' WHERE id = $1::uuid",
          deposit_id, now_sql);
      queueIssuerEvent(tx, deposit_id, "returned", now);
      collected = 1;
    } else {
      // Still in its slot; the code was used, so only a new code opens it.
      tx.exec_params(
          "UPDATE deposits SET status = 'stored', released_at = NULL WHERE id = $1::uuid",
          deposit_id);
    }
    if (r.outcome == v1::PICKUP_OUTCOME_DOOR_FAILED) {
      tx.exec_params(
          "INSERT INTO kiosk_alerts (kiosk_id, deposit_id, kind, detail, at) "
          "VALUES ($1, $2::uuid, 'slot_door_failed', $3, $4::timestamptz)",
          r.kiosk_id, deposit_id, maskDigitRuns(r.detail, 6), now_sql);
    }
    tx.exec_params(
        "UPDATE pickup_attempts SET done_outcome = $3, done_at = $4::timestamptz "
        "WHERE kiosk_id = $1 AND request_id = $2::uuid",
        r.kiosk_id, r.request_id, outcome, now_sql);
    AuditEntry entry;
    entry.actor_role = "kiosk";
    entry.actor_id = r.kiosk_id;
    entry.action = "pickup.done";
    entry.object_kind = "deposit";
    entry.object_ids = {deposit_id};
    entry.result = outcome;
    entry.detail = r.detail;
    appendAudit(tx, entry, now);
    tx.commit();
    return {true, "", false, collected};
  });
  if (result.ok && !result.repeated) {
    const auto level = r.outcome == v1::PICKUP_OUTCOME_TAKEN         ? spdlog::level::info
                       : r.outcome == v1::PICKUP_OUTCOME_DOOR_FAILED ? spdlog::level::err
                                                                     : spdlog::level::warn;
    impl_->log->log(level, "deposit {} at kiosk {}: pickup {}{}", r.deposit_id, r.kiosk_id, outcome,
                    r.outcome == v1::PICKUP_OUTCOME_TAKEN
                        ? "; collected by its holder"
                        : "; back to stored (the holder needs a new code)");
  }
  return result;
}

OperatorAuthOutcome Store::checkOperatorCode(const std::string& kiosk_id,
                                             const std::string& request_id,
                                             const std::string& typed_code,
                                             std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(request_id)) {
    throw std::invalid_argument("operator request id is not a UUID");
  }
  const auto& options = impl_->options;
  struct Candidate {
    std::string account_id;
    std::string code_hash;
  };
  const auto lock = [&](pqxx::work& tx) { lockKioskOperator(tx, kiosk_id); };
  const auto recorded = [&](pqxx::work& tx) -> std::optional<OperatorAuthOutcome> {
    const auto rows = tx.exec_params(
        "SELECT result, retry_after_ms, coalesce(account_id::text, '') FROM bin_openings "
        "WHERE kiosk_id = $1 AND request_id = $2::uuid",
        kiosk_id, request_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    return OperatorAuthOutcome{operatorResultFromName(rows[0][0].as<std::string>()),
                               rows[0][1].as<std::int64_t>(), rows[0][2].as<std::string>(), true};
  };
  // Refused codes in the window, and when the kiosk takes codes again (0: it does now).
  const auto throttle = [&](pqxx::work& tx) -> std::int64_t {
    const auto window = options.operator_code_window;
    const auto rows =
        tx.exec_params("SELECT " + detail::epochMicrosSql("at") +
                           " FROM bin_openings WHERE kiosk_id = $1 AND result = 'refused' "
                           "AND at > $2::timestamptz ORDER BY at DESC LIMIT $3",
                       kiosk_id, detail::pgTimestamp(now - window), options.operator_code_tries);
    return entryWaitMs(rows, options.operator_code_tries, window, now);
  };

  // First: a repeat, the throttle, and the candidates' hashes; nothing written.
  struct First {
    std::optional<OperatorAuthOutcome> settled;
    std::vector<Candidate> candidates;
  };
  const First first = impl_->pool.run([&](pqxx::connection& c) -> First {
    pqxx::work tx(c);
    lock(tx);
    if (auto again = recorded(tx)) {
      return {again, {}};
    }
    First out;
    for (const auto& row :
         tx.exec_params("SELECT a.id::text, b.code_hash FROM accounts a "
                        "JOIN operator_kiosks k ON k.account_id = a.id AND k.kiosk_id = $1 "
                        "JOIN operator_box_codes b ON b.account_id = a.id "
                        "WHERE a.role = 'operator' AND a.disabled_at IS NULL ORDER BY a.id",
                        kiosk_id)) {
      out.candidates.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
    }
    return out;
  });
  if (first.settled) {
    return *first.settled;
  }
  // The slow hashes, with no transaction open. Every candidate is checked, so the time taken
  // does not tell which one matched.
  std::string matched;
  for (const auto& candidate : first.candidates) {
    if (verifyCode(typed_code, candidate.code_hash) && matched.empty()) {
      matched = candidate.account_id;
    }
  }
  auto outcome = impl_->pool.run([&](pqxx::connection& c) -> OperatorAuthOutcome {
    pqxx::work tx(c);
    lock(tx);
    if (auto again = recorded(tx)) {
      return *again;
    }
    OperatorAuthOutcome o;
    if (const auto wait_ms = throttle(tx); wait_ms > 0) {
      o.result = v1::OPERATOR_AUTH_RESULT_THROTTLED;
      o.retry_after_ms = wait_ms;
    } else if (!matched.empty()) {
      o.result = v1::OPERATOR_AUTH_RESULT_OK;
      o.account_id = matched;
    }
    const std::string result = operatorResultName(o.result);
    tx.exec_params(
        "INSERT INTO bin_openings (kiosk_id, request_id, account_id, result, retry_after_ms, at) "
        "VALUES ($1, $2::uuid, $3::bigint, $4, $5, $6::timestamptz)",
        kiosk_id, request_id, nullIfEmpty(o.account_id), result, o.retry_after_ms,
        detail::pgTimestamp(now));
    AuditEntry entry;
    entry.actor_role = o.account_id.empty() ? "kiosk" : "operator";
    entry.actor_id = o.account_id.empty() ? kiosk_id : o.account_id;
    entry.action = o.result == v1::OPERATOR_AUTH_RESULT_OK ? "bin.open" : "bin.open_refused";
    entry.object_kind = "kiosk";
    entry.object_ids = {kiosk_id};
    entry.result = result;
    appendAudit(tx, entry, now);
    tx.commit();
    return o;
  });
  if (!outcome.repeated) {
    impl_->log->log(
        outcome.result == v1::OPERATOR_AUTH_RESULT_OK ? spdlog::level::info : spdlog::level::warn,
        "kiosk {}: operator code (request {}): {}{}", kiosk_id, request_id,
        operatorResultName(outcome.result),
        outcome.account_id.empty() ? "" : "; bin unlocked for account " + outcome.account_id);
  }
  return outcome;
}

namespace {

std::string restockResultName(v1::RestockCheckResult result) {
  switch (result) {
    case v1::RESTOCK_CHECK_RESULT_OK:
      return "ok";
    case v1::RESTOCK_CHECK_RESULT_NOT_WAITING:
      return "not_waiting";
    case v1::RESTOCK_CHECK_RESULT_THROTTLED:
      return "throttled";
    default:
      return "mismatch";
  }
}

v1::RestockCheckResult restockResultFromName(const std::string& name) {
  return name == "ok"            ? v1::RESTOCK_CHECK_RESULT_OK
         : name == "not_waiting" ? v1::RESTOCK_CHECK_RESULT_NOT_WAITING
         : name == "throttled"   ? v1::RESTOCK_CHECK_RESULT_THROTTLED
                                 : v1::RESTOCK_CHECK_RESULT_MISMATCH;
}

}  // namespace

RestockCheckOutcome Store::checkRestockCard(const RestockCheckAttempt& a,
                                            std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(a.request_id) || !wire::isUuid(a.deposit_id)) {
    throw std::invalid_argument("restock check: request or deposit id is not a UUID");
  }
  const auto& options = impl_->options;
  const auto window = options.operator_code_window;
  // The audit row is the check's record: its detail names the request (as appendAudit writes it,
  // digit runs masked), so a resend finds the first answer.
  const std::string request_detail = maskDigitRuns("request " + a.request_id, 6);
  auto outcome = impl_->pool.run([&](pqxx::connection& c) -> RestockCheckOutcome {
    pqxx::work tx(c);
    lockKioskOperator(tx, a.kiosk_id);
    const std::string since = detail::pgTimestamp(now - window);
    const auto mismatches =
        tx.exec_params("SELECT " + detail::epochMicrosSql("at") +
                           " FROM audit_log WHERE action = 'restock.check' AND actor_id = $1 "
                           "AND result = 'mismatch' AND at > $2::timestamptz "
                           "ORDER BY at DESC LIMIT $3",
                       a.kiosk_id, since, options.operator_code_tries);
    const std::int64_t wait_ms = entryWaitMs(mismatches, options.operator_code_tries, window, now);
    const auto before = tx.exec_params(
        "SELECT result FROM audit_log WHERE action = 'restock.check' AND actor_id = $1 "
        "AND at > $2::timestamptz AND detail = $3 LIMIT 1",
        a.kiosk_id, since, request_detail);
    if (!before.empty()) {
      const std::string name = before[0][0].as<std::string>();
      return {restockResultFromName(name), name == "throttled" ? wait_ms : 0, true};
    }
    RestockCheckOutcome o;
    std::string result;
    if (wait_ms > 0) {
      o.result = v1::RESTOCK_CHECK_RESULT_THROTTLED;
      o.retry_after_ms = wait_ms;
    } else {
      // The deposit's card: named at the manual resolution, or at the decision for a holder's
      // card that left the bin (recordBinEmptied); either way its keyed hash is the card's.
      const auto card = tx.exec_params(
          "SELECT c.number_key_id, c.number_hmac FROM deposits d JOIN cards c ON c.id = d.card_id "
          "WHERE d.id = $1::uuid AND d.kiosk_id = $2 AND d.status = 'awaiting_restock' "
          "AND d.decision = 'store'",
          a.deposit_id, a.kiosk_id);
      if (card.empty()) {
        o.result = v1::RESTOCK_CHECK_RESULT_NOT_WAITING;
      } else if (!a.number_hmac) {
        // Not a card number by the card formats: a typo that says nothing about any card, so it
        // is not counted against the kiosk.
        o.result = v1::RESTOCK_CHECK_RESULT_MISMATCH;
        result = "bad_number";
      } else {
        const std::string key_id = card[0][0].as<std::string>();
        const pqxx::binarystring hmac(card[0][1]);
        const bool same = key_id == a.key_id && hmac.size() == a.number_hmac->size() &&
                          CRYPTO_memcmp(hmac.data(), a.number_hmac->data(), hmac.size()) == 0;
        if (key_id != a.key_id) {
          impl_->log->error("deposit {}: its card is hashed under key {}, this node's is {}",
                            a.deposit_id, key_id, a.key_id);
        }
        o.result = same ? v1::RESTOCK_CHECK_RESULT_OK : v1::RESTOCK_CHECK_RESULT_MISMATCH;
      }
    }
    AuditEntry entry;
    entry.actor_role = "kiosk";
    entry.actor_id = a.kiosk_id;
    entry.action = "restock.check";
    entry.object_kind = "deposit";
    entry.object_ids = {a.deposit_id};
    entry.result = result.empty() ? restockResultName(o.result) : result;
    entry.detail = request_detail;
    appendAudit(tx, entry, now);
    tx.commit();
    return o;
  });
  if (!outcome.repeated) {
    impl_->log->log(
        outcome.result == v1::RESTOCK_CHECK_RESULT_OK ? spdlog::level::info : spdlog::level::warn,
        "kiosk {}: restock check of deposit {} (request {}): {}", a.kiosk_id, a.deposit_id,
        a.request_id, restockResultName(outcome.result));
  }
  return outcome;
}

ReportResult Store::recordBinEmptied(const std::string& kiosk_id, const std::string& request_id,
                                     const std::vector<std::string>& deposit_ids,
                                     std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(request_id)) {
    return {false, "bin report: request id is not a UUID", false, 0};
  }
  for (const auto& id : deposit_ids) {
    if (!wire::isUuid(id)) {
      return {false, "bin report names a deposit id that is not a UUID", false, 0};
    }
  }
  auto result = impl_->pool.run([&](pqxx::connection& c) -> ReportResult {
    pqxx::work tx(c);
    detail::lockRestockNumbers(tx, kiosk_id);
    const auto opening = tx.exec_params(
        "SELECT account_id::text, emptied_at IS NOT NULL FROM bin_openings "
        "WHERE kiosk_id = $1 AND request_id = $2::uuid AND result = 'ok' FOR UPDATE",
        kiosk_id, request_id);
    if (opening.empty()) {
      return {false, "no operator request " + request_id + " of this kiosk opened the bin", false,
              0};
    }
    if (opening[0][1].as<bool>()) {
      return {true, "", true, 0};
    }
    const std::string account_id = opening[0][0].as<std::string>();
    const std::string now_sql = detail::pgTimestamp(now);
    std::vector<std::string> collected;
    for (const auto& id : deposit_ids) {
      // A card that leaves the bin with the operator is collected, except a holder's card: one
      // resolved by hand stays awaiting_restock, and one of a known holder that went to the bin
      // (no free slot, say) becomes awaiting_restock, numbered below as if resolved by hand.
      // Either is the operator's to put back in a slot.
      const auto changed = tx.exec_params(
          "UPDATE deposits SET collected_at = $3::timestamptz, "
          "  collected_by = 'operator', collected_by_account = $4::bigint, "
          "  status = CASE WHEN status = 'awaiting_restock' THEN status "
          "                WHEN status = 'stored' AND decision = 'store' THEN 'awaiting_restock' "
          "                ELSE 'collected' END "
          "WHERE id = $1::uuid AND kiosk_id = $2 AND location_kind = 'bin' "
          "  AND collected_at IS NULL "
          "  AND status IN ('decided', 'stored', 'to_return', 'awaiting_restock') RETURNING status",
          id, kiosk_id, now_sql, account_id);
      if (changed.empty()) {
        impl_->log->warn(
            "kiosk {}: deposit {} reported taken from the bin, but the cloud does "
            "not record it there; unchanged",
            kiosk_id, id);
      } else {
        collected.push_back(id);
        if (changed[0][0].as<std::string>() == "awaiting_restock") {
          impl_->log->info("kiosk {}: deposit {} (a holder's card) left the bin: to restock",
                           kiosk_id, id);
        }
      }
    }
    if (const int unnumbered = detail::numberWaitingRestocks(tx, kiosk_id); unnumbered > 0) {
      impl_->log->warn("kiosk {}: {} card(s) to restock wait for a free restock number (all 999 "
                       "taken); they get one when cards are put back",
                       kiosk_id, unnumbered);
    }
    tx.exec_params(
        "UPDATE bin_openings SET emptied_at = $3::timestamptz, emptied_count = $4 "
        "WHERE kiosk_id = $1 AND request_id = $2::uuid",
        kiosk_id, request_id, now_sql, static_cast<int>(collected.size()));
    AuditEntry entry;
    entry.actor_role = "operator";
    entry.actor_id = account_id;
    entry.action = "bin.emptied";
    entry.object_kind = "deposit";
    entry.object_ids = collected;
    entry.result = "ok";
    entry.detail = "kiosk " + kiosk_id + ": " + std::to_string(collected.size()) + " of " +
                   std::to_string(deposit_ids.size()) + " reported deposits collected";
    appendAudit(tx, entry, now);
    tx.commit();
    return {true, "", false, static_cast<int>(collected.size())};
  });
  if (result.ok && !result.repeated) {
    impl_->log->info("kiosk {}: bin emptied by an operator (request {}): {} deposit(s) collected",
                     kiosk_id, request_id, result.collected);
  }
  return result;
}

void Store::fillOperatorSession(const std::string& kiosk_id, v1::OperatorAuthAnswer& answer) {
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // A card that found all 999 numbers taken gets one freed since.
    detail::lockRestockNumbers(tx, kiosk_id);
    detail::numberWaitingRestocks(tx, kiosk_id);
    for (const auto& row :
         tx.exec_params("SELECT location_slot, id::text FROM deposits WHERE kiosk_id = $1 "
                        "AND status = 'to_return' AND location_kind = 'slot' "
                        "AND collected_at IS NULL ORDER BY location_slot",
                        kiosk_id)) {
      auto* slot = answer.add_return_slots();
      slot->set_slot(row[0].as<std::uint32_t>());
      slot->set_deposit_id(row[1].as<std::string>());
    }
    for (const auto& row : tx.exec_params(
             "SELECT restock_number, id::text, coalesce(last4, '') FROM deposits "
             "WHERE kiosk_id = $1 AND status = 'awaiting_restock' AND restock_number IS NOT NULL "
             "ORDER BY restock_number",
             kiosk_id)) {
      auto* card = answer.add_restock();
      card->set_restock_number(row[0].as<std::uint32_t>());
      card->set_deposit_id(row[1].as<std::string>());
      card->set_last4(row[2].as<std::string>());
    }
    tx.commit();
    return 0;
  });
}

ReportResult Store::recordReturnCollected(const std::string& kiosk_id,
                                          const std::string& request_id,
                                          const std::vector<std::string>& deposit_ids,
                                          std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(request_id)) {
    return {false, "return report: request id is not a UUID", false, 0};
  }
  for (const auto& id : deposit_ids) {
    if (!wire::isUuid(id)) {
      return {false, "return report names a deposit id that is not a UUID", false, 0};
    }
  }
  auto result = impl_->pool.run([&](pqxx::connection& c) -> ReportResult {
    pqxx::work tx(c);
    const auto opening = tx.exec_params(
        "SELECT account_id::text FROM bin_openings "
        "WHERE kiosk_id = $1 AND request_id = $2::uuid AND result = 'ok' FOR UPDATE",
        kiosk_id, request_id);
    if (opening.empty()) {
      return {false, "no operator request " + request_id + " of this kiosk was accepted", false,
              0};
    }
    const std::string account_id = opening[0][0].as<std::string>();
    const std::string now_sql = detail::pgTimestamp(now);
    std::vector<std::string> collected;
    for (const auto& id : deposit_ids) {
      const auto changed = tx.exec_params(
          "UPDATE deposits SET status = 'collected', collected_at = $3::timestamptz, "
          "collected_by = 'operator', collected_by_account = $4::bigint "
          "WHERE id = $1::uuid AND kiosk_id = $2 AND location_kind = 'slot' "
          "  AND status = 'to_return' RETURNING id",
          id, kiosk_id, now_sql, account_id);
      if (changed.empty()) {
        impl_->log->warn(
            "kiosk {}: deposit {} reported taken from its return slot, but the cloud does not "
            "record it to_return in a slot; unchanged",
            kiosk_id, id);
      } else {
        collected.push_back(id);
      }
    }
    if (collected.empty() && !deposit_ids.empty()) {
      return {true, "", true, 0};  // a repeat (or nothing the cloud knows): nothing to audit
    }
    AuditEntry entry;
    entry.actor_role = "operator";
    entry.actor_id = account_id;
    entry.action = "return.collected";
    entry.object_kind = "deposit";
    entry.object_ids = collected;
    entry.result = "ok";
    entry.detail = "kiosk " + kiosk_id + ": " + std::to_string(collected.size()) + " of " +
                   std::to_string(deposit_ids.size()) +
                   " reported cards collected for return to their issuer";
    appendAudit(tx, entry, now);
    tx.commit();
    return {true, "", false, static_cast<int>(collected.size())};
  });
  if (result.ok && !result.repeated) {
    impl_->log->info("kiosk {}: {} card(s) taken from return slots by an operator (request {})",
                     kiosk_id, result.collected, request_id);
  }
  return result;
}

void Store::setOperatorCode(const std::string& login, const std::string& code,
                            std::chrono::system_clock::time_point now) {
  const std::string digits = normalizePickupCode(code);
  if (digits.empty()) {
    throw std::invalid_argument("an operator code has 10 digits");
  }
  const std::string code_hash = hashCode(digits);  // slow: before the transaction
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto account = tx.exec_params(
        "SELECT id::text FROM accounts WHERE login = $1 AND role = 'operator'", login);
    if (account.empty()) {
      throw std::invalid_argument("no operator account '" + login + "'");
    }
    const std::string account_id = account[0][0].as<std::string>();
    tx.exec_params(
        "INSERT INTO operator_box_codes (account_id, code_hash, set_at) "
        "VALUES ($1::bigint, $2, $3::timestamptz) ON CONFLICT (account_id) DO UPDATE "
        "SET code_hash = EXCLUDED.code_hash, set_at = EXCLUDED.set_at",
        account_id, code_hash, detail::pgTimestamp(now));
    AuditEntry entry;
    entry.actor_role = "admin";
    entry.actor_id = "";
    entry.action = "account.operator_code";
    entry.object_kind = "account";
    entry.object_ids = {account_id};
    entry.result = "ok";
    appendAudit(tx, entry, now);
    tx.commit();
    return 0;
  });
}

}  // namespace lostcard::cloud
