#pragma once
// Bulk enrollment of an issuer's cards (POST /v1/issuer/enrollments): the rows that
// CardImportParser (card_import.hpp) accepted, written to the cards table batch by batch, and
// a report of what became of every row.
//
//   CardEnrollment enrollment({.conninfo = db}, hasher);
//   auto import = enrollment.begin("northwind");
//   parser.feed(piece, [&](ImportRow&& row) { import->add(std::move(row)); });  // ... each piece
//   import->finish();                 // the last batch
//   reply import->report();           // v1.EnrollmentReport
//
// Each batch (batch_rows rows, 1000 by default) is one transaction: it looks its holders up,
// inserts the cards that are new (keyed hash and last four only, card_hasher.hpp) and reads
// back who holds the others, so memory stays that of one batch whatever the body's size. A
// committed batch stays committed if a later part of the body fails; enrollment is idempotent,
// so re-sending the whole body is the way to finish it:
//   - a card new to the registry is enrolled to the row's holder for this issuer;
//   - a card enrolled already to the same holder for this issuer is "unchanged";
//   - a card enrolled to ANOTHER holder, or by another issuer, is refused, never moved
//     (a wrong holder would be told where a stranger's card waits); so is a row whose holder is
//     unknown: enrollment never creates or changes holders (their webhook is theirs to set).
// The same number twice in one body: the first row decides, the second is unchanged or refused.
//
// Thread-safe (a small connection pool); database errors are thrown (pqxx). Logs nothing of a
// row.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/card_import.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::cloud {

struct CardEnrollmentOptions {
  std::string conninfo;
  int pool_size = 2;
  std::size_t batch_rows = 1000;
  std::size_t max_listed_rejections = 1000;  // the report lists the first ones, counts all
};

namespace detail {
class ConnectionPool;
}

class CardEnrollment {
 public:
  // `hasher` must outlive this object.
  CardEnrollment(CardEnrollmentOptions options, const CardHasher& hasher);
  ~CardEnrollment();
  CardEnrollment(const CardEnrollment&) = delete;
  CardEnrollment& operator=(const CardEnrollment&) = delete;

  bool issuerExists(const std::string& issuer_id);
  // Appends to the audit log in a transaction of its own.
  void audit(const AuditEntry& entry, std::chrono::system_clock::time_point now);

  // One import into one issuer.
  class Import {
   public:
    // A row from the parser, accepted or refused, to the pending batch (written when it is
    // full; the report lists rejections in line order).
    void add(ImportRow&& row);
    // Writes the pending batch.
    void finish();
    // Drops the pending batch unwritten (the body failed before its end).
    void abandon() { batch_.clear(); }
    const v1::EnrollmentReport& report() const { return report_; }

   private:
    friend class CardEnrollment;
    Import(CardEnrollment& owner, std::string issuer_id);
    void reject(std::uint32_t line, const std::string& code, const std::string& reason,
                const std::string& last4);
    void writeBatch();

    CardEnrollment& owner_;
    std::vector<ImportRow> batch_;
    v1::EnrollmentReport report_;
  };
  std::unique_ptr<Import> begin(const std::string& issuer_id);

 private:
  CardEnrollmentOptions options_;
  const CardHasher& hasher_;
  std::unique_ptr<detail::ConnectionPool> pool_;
};

}  // namespace lostcard::cloud
