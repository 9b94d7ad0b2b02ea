// The authorization rules (pure: no database), password hashing and the audit log's masking.
#include "lostcard/cloud/authorization.hpp"

#include <catch2/catch.hpp>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/password_hash.hpp"

using namespace lostcard::cloud;

namespace {

Principal person(Role role, std::string holder_id, std::string issuer_id,
                 std::vector<std::string> kiosk_ids) {
  Principal p;
  p.account_id = 1;
  p.login = "someone";
  p.role = role;
  p.holder_id = std::move(holder_id);
  p.issuer_id = std::move(issuer_id);
  p.kiosk_ids = std::move(kiosk_ids);
  return p;
}
Principal holder(const std::string& id) { return person(Role::kHolder, id, "", {}); }
Principal operatorOf(std::vector<std::string> kiosks) {
  return person(Role::kOperator, "", "", std::move(kiosks));
}
Principal staffOf(const std::string& issuer) { return person(Role::kIssuerStaff, "", issuer, {}); }
Principal admin() { return person(Role::kAdmin, "", "", {}); }

}  // namespace

TEST_CASE("role names round-trip") {
  for (auto role : {Role::kHolder, Role::kOperator, Role::kIssuerStaff, Role::kAdmin}) {
    CHECK(roleFromName(roleName(role)) == role);
  }
  CHECK_FALSE(roleFromName("root").has_value());
  CHECK_FALSE(roleFromName("").has_value());
}

TEST_CASE("a holder lists only their own deposits") {
  CHECK(mayListHolderDeposits(holder("ada"), "ada").allowed);
  const auto other = mayListHolderDeposits(holder("ada"), "bob");
  CHECK_FALSE(other.allowed);
  CHECK(other.status == 403);
  CHECK_FALSE(other.reason.empty());
  CHECK_FALSE(mayListHolderDeposits(operatorOf({"kiosk-1"}), "ada").allowed);
  CHECK_FALSE(mayListHolderDeposits(staffOf("northwind"), "ada").allowed);
  CHECK(mayListHolderDeposits(admin(), "ada").allowed);
  // A holder account with no holder id (never stored so; the rule does not rely on it).
  CHECK_FALSE(mayListHolderDeposits(holder(""), "").allowed);
}

TEST_CASE("an operator lists only the deposits of kiosks they serve") {
  const auto op = operatorOf({"kiosk-1", "kiosk-3"});
  CHECK(mayListKioskDeposits(op, "kiosk-1").allowed);
  CHECK(mayListKioskDeposits(op, "kiosk-3").allowed);
  const auto other = mayListKioskDeposits(op, "kiosk-2");
  CHECK_FALSE(other.allowed);
  CHECK(other.status == 403);
  CHECK_FALSE(mayListKioskDeposits(operatorOf({}), "kiosk-1").allowed);
  CHECK_FALSE(mayListKioskDeposits(holder("ada"), "kiosk-1").allowed);
  CHECK_FALSE(mayListKioskDeposits(staffOf("northwind"), "kiosk-1").allowed);
  CHECK(mayListKioskDeposits(admin(), "kiosk-2").allowed);
  // Kiosk ids are compared exactly: no prefix or case games.
  CHECK_FALSE(mayListKioskDeposits(op, "kiosk-10").allowed);
  CHECK_FALSE(mayListKioskDeposits(op, "KIOSK-1").allowed);
}

TEST_CASE("issuer staff list only their issuer's cards") {
  CHECK(mayListIssuerCards(staffOf("northwind"), "northwind").allowed);
  const auto other = mayListIssuerCards(staffOf("northwind"), "contoso");
  CHECK_FALSE(other.allowed);
  CHECK(other.status == 403);
  CHECK_FALSE(mayListIssuerCards(holder("ada"), "northwind").allowed);
  CHECK_FALSE(mayListIssuerCards(operatorOf({"kiosk-1"}), "northwind").allowed);
  CHECK(mayListIssuerCards(admin(), "contoso").allowed);
}

TEST_CASE("cards are enrolled for an issuer by its staff, its API keys and admins only") {
  CHECK(mayEnrollIssuerCards(staffOf("northwind"), "northwind").allowed);
  Principal key = staffOf("northwind");  // what an issuer API key resolves to
  key.account_id = 0;
  key.api_key_id = "abcdefghijklmnop";
  CHECK(mayEnrollIssuerCards(key, "northwind").allowed);
  const auto other = mayEnrollIssuerCards(key, "contoso");
  CHECK_FALSE(other.allowed);
  CHECK(other.status == 403);
  CHECK_FALSE(mayEnrollIssuerCards(staffOf(""), "").allowed);
  CHECK_FALSE(mayEnrollIssuerCards(holder("ada"), "northwind").allowed);
  CHECK_FALSE(mayEnrollIssuerCards(operatorOf({"kiosk-1"}), "northwind").allowed);
  CHECK(mayEnrollIssuerCards(admin(), "contoso").allowed);
}

TEST_CASE("one deposit by id: refusals are 404 so its existence does not leak") {
  const DepositOwnership matched{"kiosk-1", "ada", "northwind"};
  const DepositOwnership difficult{"kiosk-1", "", ""};
  CHECK(mayReadDeposit(holder("ada"), matched).allowed);
  CHECK(mayReadDeposit(operatorOf({"kiosk-1"}), matched).allowed);
  CHECK(mayReadDeposit(operatorOf({"kiosk-1"}), difficult).allowed);
  CHECK(mayReadDeposit(staffOf("northwind"), matched).allowed);
  CHECK(mayReadDeposit(admin(), difficult).allowed);
  for (const auto& refused :
       {mayReadDeposit(holder("bob"), matched), mayReadDeposit(holder("ada"), difficult),
        mayReadDeposit(operatorOf({"kiosk-2"}), matched),
        mayReadDeposit(staffOf("contoso"), matched),
        mayReadDeposit(staffOf("northwind"), difficult)}) {
    CHECK_FALSE(refused.allowed);
    CHECK(refused.status == 404);
  }
}

TEST_CASE("passwords are Argon2id hashes that verify only the right password") {
  const auto hash = hashPassword("correct horse battery staple");
  CHECK(hash.rfind("$argon2id$", 0) == 0);
  CHECK(hash.find("correct horse") == std::string::npos);
  CHECK(verifyPassword(hash, "correct horse battery staple"));
  CHECK_FALSE(verifyPassword(hash, "correct horse battery stapl"));
  CHECK_FALSE(verifyPassword(hash, ""));
  CHECK_FALSE(passwordNeedsRehash(hash));
  // Salted: the same password hashes differently each time.
  CHECK(hashPassword("correct horse battery staple") != hash);
  CHECK_FALSE(verifyPassword("plain", "plain"));
  CHECK_FALSE(verifyPassword("", ""));
}

TEST_CASE("the audit log's free text never carries a long digit run") {
  CHECK(maskDigitRuns("code 1234567890 typed", 6) == "code # typed");
  CHECK(maskDigitRuns("card 4000 0566 5566 5556 seen", 6) == "card # seen");
  CHECK(maskDigitRuns("code 12345-67890", 6) == "code #");
  CHECK(maskDigitRuns("4000056655665556", 6) == "#");
  CHECK(maskDigitRuns("12 deposits", 6) == "12 deposits");
  CHECK(maskDigitRuns("slot 12345", 6) == "slot 12345");
  CHECK(maskDigitRuns("slots 1 2 3", 6) == "slots 1 2 3");
  CHECK(maskDigitRuns("", 6).empty());
}

TEST_CASE("operations: the fleet, a kiosk's collection list and its difficult cards") {
  Principal op;
  op.role = Role::kOperator;
  op.kiosk_ids = {"k1"};
  Principal admin;
  admin.role = Role::kAdmin;
  Principal staff;
  staff.role = Role::kIssuerStaff;
  staff.issuer_id = "northwind";
  Principal holder;
  holder.role = Role::kHolder;
  holder.holder_id = "ada";

  CHECK(mayViewFleet(op).allowed);
  CHECK(mayViewFleet(admin).allowed);
  CHECK(mayViewFleet(staff).status == 403);
  CHECK(mayViewFleet(holder).status == 403);
  CHECK(servedKiosks(op) == std::optional<std::vector<std::string>>({"k1"}));
  CHECK_FALSE(servedKiosks(admin).has_value());
  CHECK(servedKiosks(staff)->empty());

  CHECK(mayServeKiosk(op, "k1").allowed);
  CHECK(mayServeKiosk(op, "k2").status == 403);
  CHECK(mayServeKiosk(admin, "k2").allowed);
  CHECK(mayServeKiosk(staff, "k1").status == 403);

  CHECK(mayReviewDifficult(op, "k1").allowed);
  CHECK(mayReviewDifficult(op, "k2").status == 404);  // a deposit id must not be probed
  CHECK(mayReviewDifficult(admin, "k2").allowed);
  CHECK(mayReviewDifficult(staff, "k1").status == 403);
  CHECK(mayReviewDifficult(holder, "k1").status == 403);
}

TEST_CASE("the holder's endpoints are for a holder's own account only") {
  CHECK(mayUseHolderApi(holder("ada")).allowed);
  for (const auto& refused : {mayUseHolderApi(holder("")), mayUseHolderApi(admin()),
                              mayUseHolderApi(operatorOf({"kiosk-1"})),
                              mayUseHolderApi(staffOf("northwind"))}) {
    CHECK_FALSE(refused.allowed);
    CHECK(refused.status == 403);
  }
}
