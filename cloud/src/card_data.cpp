#include "lostcard/cloud/card_data.hpp"

#include <pqxx/pqxx>

#include "lostcard/cloud/accounts.hpp"
#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/notice.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

// RFC 3339 UTC text of a timestamptz column, NULL as "".
std::string rfc3339Sql(const std::string& column) {
  return "coalesce(to_char(" + column +
         " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')";
}

std::string text(const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); }

// The deposit columns both views read, in this order (see fillDeposit).
std::string depositColumns() {
  return "d.id::text, d.kiosk_id, k.name, k.address, d.status, coalesce(d.last4, ''), " +
         rfc3339Sql("d.decided_at") + ", " + rfc3339Sql("d.stored_at") + ", " +
         rfc3339Sql("d.collected_at") +
         ", d.decision, coalesce(d.difficult_reason, ''), "
         "CASE d.location_kind WHEN 'slot' THEN 'slot:' || d.location_slot "
         "                     WHEN 'bin' THEN 'bin' ELSE '' END, "
         "k.latitude, k.longitude, k.opening_hours";
}

void fillDeposit(const pqxx::row& r, bool operator_view, v1::Deposit* d) {
  d->set_deposit_id(r[0].as<std::string>());
  d->set_kiosk_id(r[1].as<std::string>());
  d->set_kiosk_name(r[2].as<std::string>());
  d->set_kiosk_address(r[3].as<std::string>());
  d->set_status(r[4].as<std::string>());
  d->set_last4(r[5].as<std::string>());
  d->set_decided_at(r[6].as<std::string>());
  d->set_stored_at(r[7].as<std::string>());
  d->set_collected_at(r[8].as<std::string>());
  auto* kiosk = d->mutable_kiosk();
  kiosk->set_kiosk_id(d->kiosk_id());
  kiosk->set_name(d->kiosk_name());
  kiosk->set_address(d->kiosk_address());
  kiosk->set_latitude(r[12].as<double>());
  kiosk->set_longitude(r[13].as<double>());
  kiosk->set_opening_hours(r[14].as<std::string>());
  kiosk->set_map_url(mapUrl(kiosk->latitude(), kiosk->longitude()));
  if (operator_view) {
    d->set_decision(r[9].as<std::string>());
    d->set_difficult_reason(text(r[10]));
    d->set_location(text(r[11]));
  }
}

AuditEntry readEntry(const Principal& who, const std::string& action, const std::string& kind,
                     const std::string& id) {
  AuditEntry entry = auditBy(who);
  entry.action = action;
  entry.object_kind = kind;
  entry.object_ids = {id};
  return entry;
}

}  // namespace

struct CardDataReader::Impl {
  explicit Impl(CardDataOptions o)
      : options(std::move(o)), pool(options.conninfo, options.pool_size) {}

  // Runs `read(tx)` when `access` allows, auditing the outcome in the same transaction.
  template <class T, class Read>
  CardDataRead<T> audited(const Access& access, AuditEntry entry,
                          std::chrono::system_clock::time_point now, Read&& read) {
    return pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      CardDataRead<T> result;
      result.access = access;
      if (access.allowed) {
        result.access = read(tx, result.value);
      }
      entry.result = result.access.allowed ? "ok" : "refused";
      entry.detail = result.access.allowed ? "" : result.access.reason;
      if (result.access.allowed) {
        if constexpr (std::is_same_v<T, v1::DepositList>) {
          entry.detail = std::to_string(result.value.deposits_size()) + " deposits";
        } else {
          entry.detail = std::to_string(result.value.cards_size()) + " cards";
        }
      }
      appendAudit(tx, entry, now);
      tx.commit();
      if (!result.access.allowed) {
        result.value.Clear();
      }
      return result;
    });
  }

  CardDataOptions options;
  detail::ConnectionPool pool;
};

CardDataReader::CardDataReader(CardDataOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

CardDataReader::~CardDataReader() = default;

CardDataRead<v1::DepositList> CardDataReader::holderDeposits(
    const Principal& who, const std::string& holder_id, std::chrono::system_clock::time_point now) {
  return impl_->audited<v1::DepositList>(
      mayListHolderDeposits(who, holder_id), readEntry(who, "deposits.read", "holder", holder_id),
      now, [&](pqxx::transaction_base& tx, v1::DepositList& out) {
        const auto rows =
            tx.exec_params("SELECT " + depositColumns() +
                               " FROM deposits d JOIN cards c ON c.id = d.card_id "
                               "JOIN kiosks k ON k.id = d.kiosk_id "
                               "WHERE c.holder_id = $1 ORDER BY d.decided_at DESC, d.id LIMIT $2",
                           holder_id, impl_->options.max_rows);
        for (const auto& r : rows) {
          fillDeposit(r, false, out.add_deposits());
        }
        return Access::allow();
      });
}

CardDataRead<v1::DepositList> CardDataReader::kioskDeposits(
    const Principal& who, const std::string& kiosk_id, std::chrono::system_clock::time_point now) {
  return impl_->audited<v1::DepositList>(
      mayListKioskDeposits(who, kiosk_id), readEntry(who, "deposits.read", "kiosk", kiosk_id), now,
      [&](pqxx::transaction_base& tx, v1::DepositList& out) {
        if (tx.exec_params("SELECT 1 FROM kiosks WHERE id = $1", kiosk_id).empty()) {
          return Access{false, 404, "no such kiosk"};
        }
        const auto rows =
            tx.exec_params("SELECT " + depositColumns() +
                               " FROM deposits d JOIN kiosks k ON k.id = d.kiosk_id "
                               "WHERE d.kiosk_id = $1 ORDER BY d.decided_at DESC, d.id LIMIT $2",
                           kiosk_id, impl_->options.max_rows);
        for (const auto& r : rows) {
          fillDeposit(r, true, out.add_deposits());
        }
        return Access::allow();
      });
}

CardDataRead<v1::IssuerCardList> CardDataReader::issuerCards(
    const Principal& who, const std::string& issuer_id, std::chrono::system_clock::time_point now) {
  return impl_->audited<v1::IssuerCardList>(
      mayListIssuerCards(who, issuer_id), readEntry(who, "cards.read", "issuer", issuer_id), now,
      [&](pqxx::transaction_base& tx, v1::IssuerCardList& out) {
        if (tx.exec_params("SELECT 1 FROM issuers WHERE id = $1", issuer_id).empty()) {
          return Access{false, 404, "no such issuer"};
        }
        out.set_issuer_id(issuer_id);
        const auto rows = tx.exec_params(
            "SELECT id, holder_id, last4, " + rfc3339Sql("enrolled_at") +
                " FROM cards WHERE issuer_id = $1 ORDER BY enrolled_at DESC, id LIMIT $2",
            issuer_id, impl_->options.max_rows);
        for (const auto& r : rows) {
          auto* card = out.add_cards();
          card->set_card_id(r[0].as<std::int64_t>());
          card->set_holder_id(r[1].as<std::string>());
          card->set_last4(r[2].as<std::string>());
          card->set_enrolled_at(r[3].as<std::string>());
        }
        return Access::allow();
      });
}

}  // namespace lostcard::cloud
