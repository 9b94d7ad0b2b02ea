#pragma once
// The API's reads of card data — a holder's deposits, a kiosk's deposits, an issuer's cards —
// each checked against the caller's role and tenant (authorization.hpp) and written to the
// audit log in the same database transaction that reads the rows, so no read goes unrecorded.
// A refusal is audited too (result "refused" with the reason). Never more of a card number
// than its last four digits.
//
//   CardDataReader reader({.conninfo = db});
//   auto read = reader.kioskDeposits(principal, "kiosk-17", clock.now());
//   if (!read.access.allowed) { reply read.access.status with read.access.reason; }
//   else { reply read.value (a v1::DepositList) }
//
// Lists are newest first and hold at most options.max_rows rows (paging is for later).
// Thread-safe (a small connection pool); database errors are thrown (pqxx).
#include <chrono>
#include <memory>
#include <string>

#include "lostcard/cloud/authorization.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::cloud {

struct CardDataOptions {
  std::string conninfo;
  int pool_size = 2;
  int max_rows = 1000;
};

template <class T>
struct CardDataRead {
  Access access;  // allowed, or why not (403/404)
  T value;        // empty unless allowed
};

class CardDataReader {
 public:
  explicit CardDataReader(CardDataOptions options);
  ~CardDataReader();
  CardDataReader(const CardDataReader&) = delete;
  CardDataReader& operator=(const CardDataReader&) = delete;

  // Deposits of the cards enrolled to `holder_id`: where to collect them, status, last four.
  CardDataRead<v1::DepositList> holderDeposits(const Principal& who, const std::string& holder_id,
                                               std::chrono::system_clock::time_point now);
  // Every deposit of one kiosk, with how it was decided and where it is. 404 for an unknown
  // kiosk (only once the caller may read it: an operator of another kiosk gets 403 either way).
  CardDataRead<v1::DepositList> kioskDeposits(const Principal& who, const std::string& kiosk_id,
                                              std::chrono::system_clock::time_point now);
  // The cards one issuer enrolled: card id, holder id, last four.
  CardDataRead<v1::IssuerCardList> issuerCards(const Principal& who, const std::string& issuer_id,
                                               std::chrono::system_clock::time_point now);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cloud
