#pragma once
// The audit log: one append-only row (table audit_log, migration 5) for every access to card
// data, every pickup attempt and every bin opening — who (role and id), what (action), on which
// objects (kind and ids), the result, when. A database trigger refuses UPDATE, DELETE and
// TRUNCATE on the table.
//
// Append inside the transaction that does the thing recorded, so the row commits with it:
//
//   pqxx::work tx(conn);
//   ... the pickup ...
//   appendAudit(tx, {.actor_role = "kiosk", .actor_id = kiosk_id, .action = "pickup.attempt",
//                    .object_kind = "deposit", .object_ids = {deposit_id},
//                    .result = "wrong_code"}, now);
//   tx.commit();
//
// Never a card number or a pickup code: as a last defence every run of 6 or more digits (single
// spaces or dashes between them count as one run: "4000 0566 5566 5556") in actor id, action,
// result and detail, and of 8 or more in an object id that is not a UUID, is replaced by "#"
// before the row is written (deposit ids are UUIDs; card ids are database serials).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pqxx {
class transaction_base;
}  // namespace pqxx

namespace lostcard::cloud {

struct AuditEntry {
  std::string actor_role;   // "holder", "operator", "issuer_staff", "admin", "kiosk", "system"
  std::string actor_id;     // the account id, the kiosk id, or "" (system, unknown login)
  std::string action;       // "pickup.attempt", "bin.open", "deposits.read", "cards.read", ...
  std::string object_kind;  // "deposit", "kiosk", "issuer", "holder", "account" or ""
  std::vector<std::string> object_ids;
  std::string result;  // "ok", "refused", "wrong_code", ...
  std::string detail;  // free text for a reader; never a card number or a code
};

// One stored row, as read back (tests, `lostcard-admin audit`).
struct AuditRecord {
  std::int64_t id = 0;
  std::chrono::system_clock::time_point at;
  AuditEntry entry;
};

// Appends one row in the caller's transaction. Throws std::invalid_argument when actor_role,
// action or result is empty.
void appendAudit(pqxx::transaction_base& tx, const AuditEntry& entry,
                 std::chrono::system_clock::time_point at);

// The newest rows first, at most `limit`; only those of `action` when given.
std::vector<AuditRecord> readAudit(pqxx::transaction_base& tx, int limit,
                                   const std::optional<std::string>& action = std::nullopt);

// What appendAudit writes for a free-text field: each run of `min_run` or more digits (single
// spaces or dashes between digits included) becomes "#".
std::string maskDigitRuns(const std::string& text, std::size_t min_run);

}  // namespace lostcard::cloud
