#pragma once
// Who may see what: authorization by role and tenant, as pure functions (no database, no I/O),
// so every rule is tested on its own (tests/cloud/authorization_test.cpp).
//
//   holder        only their own deposits (those of cards enrolled to their holder id)
//   operator      only the kiosks assigned to them (table operator_kiosks)
//   issuer_staff  only their issuer's cards
//   admin         everything (every read is audited all the same)
//
//   const Access access = mayListKioskDeposits(principal, kiosk_id);
//   if (!access.allowed) { return errorReply(access.status, "forbidden", access.reason); }
//
// 403 or 404? A refusal is 403 with a reason when the request names something whose existence
// is no secret to the caller, or when the rule is decided from the caller alone before any
// lookup (a holder asking for another holder id learns nothing about whether it exists; kiosk
// ids are public, they are printed on the boxes and in notices). It is 404, the same answer as
// for a thing that does not exist, when the request names an object only its owner should know
// of, such as a deposit by its id: then a refusal must not confirm it exists.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lostcard::cloud {

enum class Role { kHolder, kOperator, kIssuerStaff, kAdmin };

// "holder", "operator", "issuer_staff", "admin".
std::string roleName(Role role);
std::optional<Role> roleFromName(std::string_view name);

// An authenticated person, as their token resolves (accounts.hpp), or an issuer's system as its
// API key resolves (issuer_keys.hpp: role issuer_staff, account_id 0, api_key_id set).
struct Principal {
  std::int64_t account_id = 0;  // 0 for an API key
  std::string api_key_id;       // the issuer API key's id; "" for a person's token
  std::string login;
  Role role = Role::kHolder;
  std::string holder_id;               // holders only
  std::string issuer_id;               // issuer staff only
  std::vector<std::string> kiosk_ids;  // operators only
};

struct Access {
  bool allowed = false;
  int status = 403;    // HTTP status of a refusal: 403, or 404 where existence must not leak
  std::string reason;  // for the person refused, and the audit log

  static Access allow() { return {true, 200, ""}; }
  static Access forbid(std::string why) { return {false, 403, std::move(why)}; }
  static Access hide() { return {false, 404, "no such object"}; }
};

// Deposits of cards enrolled to `holder_id`.
Access mayListHolderDeposits(const Principal& who, const std::string& holder_id);
// Every deposit of one kiosk (with how it was decided and where it is).
Access mayListKioskDeposits(const Principal& who, const std::string& kiosk_id);
// The cards one issuer enrolled (last four digits and holder ids).
Access mayListIssuerCards(const Principal& who, const std::string& issuer_id);
// Enrolling cards for one issuer (bulk enrollment): its staff and its API keys, and admins.
Access mayEnrollIssuerCards(const Principal& who, const std::string& issuer_id);

// Whose one deposit is: its kiosk, and the holder and issuer of its card when it was matched.
struct DepositOwnership {
  std::string kiosk_id;
  std::string holder_id;  // "" for a difficult card
  std::string issuer_id;  // "" for a difficult card
};
// One deposit named by its id: refusals are 404 (a deposit id is known only to its holder, its
// box's operators and its issuer).
Access mayReadDeposit(const Principal& who, const DepositOwnership& deposit);

// Operations (issue 6). The fleet and its alerts: operators (their own kiosks only, which the
// caller filters with servedKiosks) and admins; 403 for others.
Access mayViewFleet(const Principal& who);
// One kiosk's collection list (what to take out of it): its operators and admins; 403 for an
// operator of other kiosks (kiosk ids are public).
Access mayServeKiosk(const Principal& who, const std::string& kiosk_id);
// Reviewing one difficult card (its photos, resolving it): operators of its kiosk and admins.
// 403 for holders and issuer staff (decided from the role alone); 404 for an operator of another
// kiosk (deposit ids must not be probed).
Access mayReviewDifficult(const Principal& who, const std::string& deposit_kiosk_id);
// Acknowledging one alert a kiosk raised (kiosk_alerts): operators of that kiosk and admins; 403
// for holders and issuer staff; 404 for an operator of another kiosk (alert ids are counted).
Access mayAcknowledgeAlert(const Principal& who, const std::string& alert_kiosk_id);
// The kiosks whose state `who` may see: nullopt for every kiosk (admins), else the list.
std::optional<std::vector<std::string>> servedKiosks(const Principal& who);
// The holder's own endpoints (/v1/holder/cards, card-queries, notices, new-code): a holder
// account, acting on its own holder id only (nobody acts there for a holder, admins neither).
Access mayUseHolderApi(const Principal& who);

}  // namespace lostcard::cloud
