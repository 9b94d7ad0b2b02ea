#include "lostcard/cloud/card_enrollment.hpp"

#include <algorithm>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <utility>

#include "registry_hex.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

CardEnrollment::CardEnrollment(CardEnrollmentOptions options, const CardHasher& hasher)
    : options_(std::move(options)),
      hasher_(hasher),
      pool_(std::make_unique<detail::ConnectionPool>(options_.conninfo, options_.pool_size)) {}

CardEnrollment::~CardEnrollment() = default;

bool CardEnrollment::issuerExists(const std::string& issuer_id) {
  return pool_->run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return !tx.exec_params("SELECT 1 FROM issuers WHERE id = $1", issuer_id).empty();
  });
}

void CardEnrollment::audit(const AuditEntry& entry, std::chrono::system_clock::time_point now) {
  pool_->run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    appendAudit(tx, entry, now);
    tx.commit();
  });
}

std::unique_ptr<CardEnrollment::Import> CardEnrollment::begin(const std::string& issuer_id) {
  return std::unique_ptr<Import>(new Import(*this, issuer_id));
}

CardEnrollment::Import::Import(CardEnrollment& owner, std::string issuer_id) : owner_(owner) {
  report_.set_issuer_id(std::move(issuer_id));
  batch_.reserve(owner_.options_.batch_rows);
}

void CardEnrollment::Import::reject(std::uint32_t line, const std::string& code,
                                    const std::string& reason, const std::string& last4) {
  report_.set_rejected(report_.rejected() + 1);
  if (static_cast<std::size_t>(report_.rejections_size()) >=
      owner_.options_.max_listed_rejections) {
    report_.set_rejections_truncated(true);
    return;
  }
  auto* rejection = report_.add_rejections();
  rejection->set_line(line);
  rejection->set_code(code);
  rejection->set_reason(reason);
  rejection->set_last4(last4);
}

void CardEnrollment::Import::add(ImportRow&& row) {
  report_.set_rows(report_.rows() + 1);
  // Refused rows wait in the batch too, so that the report lists rejections in line order.
  batch_.push_back(std::move(row));
  if (batch_.size() >= owner_.options_.batch_rows) {
    writeBatch();
  }
}

void CardEnrollment::Import::finish() { writeBatch(); }

void CardEnrollment::Import::writeBatch() {
  if (batch_.empty()) {
    return;
  }
  const std::string& issuer = report_.issuer_id();
  const std::string& key_id = owner_.hasher_.keyId();
  // Each row's keyed hash (hex); the digits are dropped as soon as they are hashed.
  std::vector<std::string> hashes;
  hashes.reserve(batch_.size());
  std::set<std::string> holder_set;
  for (auto& row : batch_) {
    if (!row.ok()) {
      hashes.emplace_back();
      continue;
    }
    hashes.push_back(detail::toHex(owner_.hasher_.hash(row.digits)));
    std::fill(row.digits.begin(), row.digits.end(), '\0');
    row.digits.clear();
    holder_set.insert(row.holder_id);
  }
  const std::vector<std::string> holders(holder_set.begin(), holder_set.end());
  if (holders.empty()) {  // nothing but refused rows: no need for the database
    for (const auto& row : batch_) {
      reject(row.line, row.code, row.reason, row.last4);
    }
    batch_.clear();
    return;
  }

  struct Outcome {
    std::set<std::string> known_holders;
    std::set<std::string> inserted;                                    // hashes
    std::map<std::string, std::pair<std::string, std::string>> owner;  // hash -> (issuer, holder)
  };
  const auto outcome = owner_.pool_->run([&](pqxx::connection& c) {
    Outcome out;
    pqxx::work tx(c, "enroll");
    for (const auto& r : tx.exec_params("SELECT id FROM holders WHERE id = ANY($1::text[])",
                                        detail::textArrayLiteral(holders))) {
      out.known_holders.insert(r[0].as<std::string>());
    }
    // The first row of each card whose holder exists, in the body's order.
    std::vector<std::string> new_holders, new_hashes, new_last4;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      if (batch_[i].ok() && out.known_holders.count(batch_[i].holder_id) != 0 &&
          seen.insert(hashes[i]).second) {
        new_holders.push_back(batch_[i].holder_id);
        new_hashes.push_back(hashes[i]);
        new_last4.push_back(batch_[i].last4);
      }
    }
    if (!new_hashes.empty()) {
      for (const auto& r : tx.exec_params(
               "INSERT INTO cards (issuer_id, holder_id, number_key_id, number_hmac, last4) "
               "SELECT $1, t.h, $2, decode(t.m, 'hex'), t.l "
               "FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(h, m, l, n) "
               "ORDER BY t.n "
               "ON CONFLICT (number_key_id, number_hmac) DO NOTHING "
               "RETURNING encode(number_hmac, 'hex')",
               issuer, key_id, detail::textArrayLiteral(new_holders),
               detail::textArrayLiteral(new_hashes), detail::textArrayLiteral(new_last4))) {
        out.inserted.insert(r[0].as<std::string>());
      }
      for (const auto& r :
           tx.exec_params("SELECT encode(number_hmac, 'hex'), issuer_id, holder_id FROM cards "
                          "WHERE number_key_id = $1 AND number_hmac IN "
                          "  (SELECT decode(m, 'hex') FROM unnest($2::text[]) AS m)",
                          key_id, detail::textArrayLiteral(new_hashes))) {
        out.owner[r[0].as<std::string>()] = {r[1].as<std::string>(), r[2].as<std::string>()};
      }
    }
    tx.commit();
    return out;
  });

  std::set<std::string> claimed;  // cards this batch enrolled, once counted
  for (std::size_t i = 0; i < batch_.size(); ++i) {
    const auto& row = batch_[i];
    const auto& hash = hashes[i];
    if (!row.ok()) {
      reject(row.line, row.code, row.reason, row.last4);
      continue;
    }
    if (outcome.known_holders.count(row.holder_id) == 0) {
      reject(row.line, "unknown_holder", "no holder with this id is registered", row.last4);
      continue;
    }
    if (outcome.inserted.count(hash) != 0 && claimed.insert(hash).second) {
      report_.set_enrolled(report_.enrolled() + 1);
      continue;
    }
    const auto found = outcome.owner.find(hash);
    if (found == outcome.owner.end()) {
      // Deleted between the insert and the read: cannot happen within one transaction.
      throw std::logic_error("an enrolled card vanished within its transaction");
    }
    if (found->second.first != issuer) {
      reject(row.line, "enrolled_by_another_issuer", "the card is enrolled by another issuer",
             row.last4);
    } else if (found->second.second != row.holder_id) {
      reject(row.line, "enrolled_to_another_holder",
             "the card is enrolled to another holder; it is not moved by an import", row.last4);
    } else {
      report_.set_unchanged(report_.unchanged() + 1);
    }
  }
  batch_.clear();
}

}  // namespace lostcard::cloud
