#include "lostcard/cloud/store.hpp"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <limits>
#include <pqxx/pqxx>
#include <stdexcept>

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

  StoreOptions options;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
};

Store::Store(StoreOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Store::~Store() = default;

void Store::migrate() {
  impl_->pool.run([&](pqxx::connection& c) { return applyMigrations(c); });
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
    tx.exec_params(
        "INSERT INTO deposits (id, kiosk_id, status, decision, card_id, last4, difficult_reason, "
        "                      detail, decided_at) "
        "VALUES ($1::uuid, $2, 'decided', $3, $4, $5, $6, $7, $8::timestamptz) "
        "ON CONFLICT (id) DO NOTHING",
        decision.deposit_id, decision.kiosk_id, decision.store ? "store" : "difficult",
        decision.card_id, nullIfEmpty(decision.last4),
        decision.store ? std::nullopt : nullIfEmpty(difficultReasonName(decision.reason)),
        decision.detail, detail::pgTimestamp(now));
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
    if (status != "decided") {
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
    tx.exec_params(
        "UPDATE deposits SET status = 'stored', location_kind = $2, location_slot = $3, "
        "stored_at = $4::timestamptz WHERE id = $1::uuid",
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
    const std::string payload = noticeToJson(buildNotice(in));

    const auto inserted = tx.exec_params(
        "INSERT INTO notice_outbox (id, deposit_id, holder_id, payload, next_attempt_at, "
        "                           created_at) "
        "VALUES ($1::uuid, $2::uuid, $3, $4::jsonb, $5::timestamptz, $5::timestamptz) "
        "ON CONFLICT (deposit_id) DO NOTHING RETURNING id",
        in.notice_id, deposit_id, holder_id, payload, now_sql);
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
    const auto rows = tx.exec_params(
        "SELECT id::text, status, location_kind, location_slot, last4 FROM deposits "
        "WHERE kiosk_id = $1 ORDER BY id",
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

}  // namespace lostcard::cloud
