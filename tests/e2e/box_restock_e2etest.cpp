// Putting a resolved card back, on real processes: PostgreSQL, lostcard-cloud with its HTTPS API
// and the lostcard-kiosk daemon on a simulated box. A difficult card goes to the bin; the
// operator empties the bin at the box; over HTTPS they resolve it by number (its holder is
// enrolled by then) and find it on the collection list with its restock number; at the box they
// type '#', that number and the number printed on the card, the cloud checks it is the deposit's
// card, and they put the card in the intake; the kiosk stores it in a slot as that deposit, the
// cloud makes the pickup code and queues the holder's notice, and the code opens that slot.
// Refused on the way: a wrong restock number, another kiosk's, a finder's card dropped in the
// operator's session without '#N' (it is taken as a new drop afterwards), and another card's
// number typed for '#1' (a mislabelled card: nothing is armed, the card is not taken).
#include <google/protobuf/util/json_util.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>

#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/hw/sim_box.hpp"
#include "lostcard/test/box_system.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/v1/api.pb.h"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int kSlots = 4;
constexpr const char* kUnknownNumber = "5105105105105100";
constexpr const char* kMarieNumber = "4556737586899855";

template <class M>
M parse(const test::HttpsReply& reply) {
  M m;
  INFO(reply.body);
  REQUIRE(google::protobuf::util::JsonStringToMessage(reply.body, &m).ok());
  return m;
}

}  // namespace

TEST_CASE("a resolved card is put back at the box and its holder collects it", "[e2e]") {
  test::PgTestDb db;
  test::BoxSystem sys(test::makeTestDir("box_restock_e2etest"), db.conninfo());
  sys.makePki({"kiosk-1"});
  sys.makeCards({{"card-marie", kMarieNumber}, {"card-unknown", kUnknownNumber}});
  sys.addPeople(kSlots);

  pqxx::connection pg(db.conninfo());
  auto q = [&](const std::string& sql) {
    pqxx::read_transaction tx(pg);
    const auto rows = tx.exec(sql);
    return rows.empty() || rows[0][0].is_null() ? std::string() : rows[0][0].as<std::string>();
  };

  auto cloud = sys.startCloud(/*http=*/true);
  // A bin door left shut is given up after --bin-open-ms, so the keypad serves holders again.
  test::ChildProcess kiosk(
      sys.kioskArgv("kiosk-1", kSlots,
                    {"--pickup-unlock-ms", "100", "--pickup-take-ms", "60000", "--bin-open-ms",
                     "5000", "--operator-session-ms", "600000"}),
      (sys.dir / "kiosk-1.log").string());
  const fs::path sim_root = sys.simRoot("kiosk-1");
  hw::SimBox box({.root = sim_root, .slot_count = kSlots});
  auto operatorAt = [&](const std::string& api, const std::string& token, const std::string& target,
                        const std::string& body = "") {
    return test::httpsRequest(sys.httpPort(), sys.caFile(), api, target, token, body);
  };
  const auto login = parse<v1::LoginResponse>(operatorAt(
      "POST", "", "/v1/auth/login", R"({"login": "op-east", "password": "east-password"})"));
  const std::string token = login.token();
  auto collection = [&] {
    return parse<v1::CollectionList>(
        operatorAt("GET", token, "/v1/operator/kiosks/kiosk-1/collection"));
  };
  auto displayIs = [&](const std::string& text) {
    return test::eventually([&] { return box.displayText() == text; }, 60s);
  };
  auto binOpenings = [&] { return q("SELECT count(*) FROM audit_log WHERE action = 'bin.open'"); };
  // Types `entry` again while the kiosk refuses it as busy (a bin door it still waits for, given
  // up after --bin-open-ms), until `done`.
  auto typeUntil = [&](const std::string& entry, const auto& done) {
    return test::eventually(
        [&] {
          box.type(entry);
          return test::eventually([&] { return box.keypadEntriesWaiting() == 0; }, 30s) &&
                 test::eventually(done, 3s);
        },
        60s);
  };
  auto startSession = [&](const std::string& openings) {
    REQUIRE(typeUntil("* 1357924680", [&] { return binOpenings() == openings; }));
    REQUIRE(test::eventually(
        [&] { return box.displayText().find("restock number") != std::string::npos; }, 60s));
  };

  // 1. Nobody holds the card's number yet: a difficult card, in the bin.
  const std::string card = box.dropCard(sys.dir / "cards/card-unknown");
  REQUIRE(test::eventually([&] { return box.cardsInBin().size() == 1; }, 120s));
  std::string deposit;
  REQUIRE(test::eventually(
      [&] {
        deposit =
            q("SELECT id::text FROM deposits WHERE status = 'stored' AND "
              "location_kind = 'bin'");
        return !deposit.empty();
      },
      60s));
  auto status = [&] { return q("SELECT status FROM deposits WHERE id = '" + deposit + "'"); };

  // 2. The operator empties the bin at the box, then finishes.
  REQUIRE(test::eventually([&] { return box.displayText() == "Please insert a found card"; }, 60s));
  startSession("1");
  REQUIRE(fs::exists(sim_root / "state/unlocked-bin"));
  box.setBinDoorOpen(true);
  REQUIRE(box.emptyBin() == std::vector<std::string>{card});
  REQUIRE(test::eventually(
      [&] { return box.displayText().find("Bin door open") != std::string::npos; }, 60s));
  box.setBinDoorOpen(false);
  REQUIRE(test::eventually([&] { return status() == "collected"; }, 60s));
  box.type("*");
  REQUIRE(displayIs("Please insert a found card"));

  // 3. The card's holder is enrolled now; the operator resolves it by number over HTTPS.
  sys.admin({"add-cards"}, std::string("bank\tholder-marie\t") + kUnknownNumber + "\n");
  const auto resolved = operatorAt("POST", token, "/v1/operator/difficult/" + deposit + "/resolve",
                                   std::string(R"({"number": ")") + kUnknownNumber + R"("})");
  REQUIRE(resolved.status == 200);
  const auto resolved_deposit = parse<v1::Deposit>(resolved);
  CHECK(resolved_deposit.status() == "awaiting_restock");
  REQUIRE(resolved_deposit.restock_number() == 1);
  // Out of the bin, in the operator's hands: still on the list, without a place.
  {
    const auto list = collection();
    REQUIRE(list.items_size() == 1);
    CHECK(list.items(0).deposit_id() == deposit);
    CHECK(list.items(0).action() == "restock");
    CHECK(list.items(0).location().empty());
    CHECK(list.items(0).restock_number() == 1);
  }
  // Reconciliation takes it for what it is: with the operator, nothing wrong.
  REQUIRE(test::eventually(
      [&] {
        test::ChildProcess run(sys.adminArgv({"reconcile", "--kiosk", "kiosk-1"}),
                               (sys.dir / "reconcile.out").string());
        const auto st = run.waitFor(60s);
        return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0 &&
               test::readFile(sys.dir / "reconcile.out").find("disagreements=0") !=
                   std::string::npos;
      },
      60s));
  // Another kiosk's card waiting to be restocked, with number 2.
  {
    pqxx::work tx(pg);
    tx.exec(
        "INSERT INTO deposits (id, kiosk_id, status, decision, card_id, last4, location_kind, "
        "decided_at, stored_at, collected_at, restock_number) SELECT "
        "'99999999-0000-4000-8000-000000000009', 'kiosk-2', 'awaiting_restock', 'store', id, "
        "last4, 'bin', now(), now(), now(), 2 FROM cards WHERE last4 = '9855'");
    tx.commit();
  }

  // 4. At the box: a wrong number and the other kiosk's arm nothing; a finder's card dropped in
  // the session is not taken for the operator's.
  startSession("2");
  CHECK(box.shutterState() == "closed");
  box.type("#7 5105 1051 0510 5100");
  REQUIRE(displayIs("No card to put back has number #7 at this box."));
  box.type("#2 5105 1051 0510 5100");
  REQUIRE(displayIs("No card to put back has number #2 at this box."));
  CHECK(box.shutterState() == "closed");
  const std::string finder = box.dropCard(sys.dir / "cards/card-marie");
  box.type("#1 5105 1051 0510 5100");
  REQUIRE(
      displayIs("A card is in the intake: finish with * so the box takes it, then start "
                "again."));
  CHECK(box.cardsInIntake() == std::vector<std::string>{finder});
  CHECK(status() == "awaiting_restock");
  box.type("*");
  // The finder's card is a new deposit, recognized and stored like any other.
  REQUIRE(test::eventually([&] { return test::inSomeSlot(sim_root, finder); }, 120s));
  REQUIRE(test::eventually(
      [&] { return q("SELECT count(*) FROM deposits WHERE kiosk_id = 'kiosk-1'") == "2"; }, 60s));
  CHECK(status() == "awaiting_restock");

  // 5. The restock. Another card's number for '#1' (the finder's card, enrolled, mislabelled
  // #1): refused by the cloud, nothing armed, the deposit unchanged.
  REQUIRE(test::eventually([&] { return box.displayText() == "Please insert a found card"; }, 60s));
  startSession("3");
  box.type(std::string("#1 ") + kMarieNumber);
  REQUIRE(displayIs("That card is not #1: check its label and number."));
  CHECK(box.shutterState() == "closed");
  CHECK(status() == "awaiting_restock");
  CHECK(q("SELECT count(*) FROM audit_log WHERE action = 'restock.check' AND "
          "result = 'mismatch'") == "1");
  // The card's own number, as printed on it: checked, and the intake takes it.
  box.type("#1 5105 1051 0510 5100");
  REQUIRE(displayIs("Put card #1 in the intake."));
  CHECK(box.shutterState() == "open");
  REQUIRE(box.putBack(card) == std::optional<std::string>(card));
  REQUIRE(test::eventually([&] { return status() == "stored"; }, 60s));
  int slot = -1;
  for (int i = 0; i < kSlots; ++i) {
    if (box.cardInSlot(i) == std::optional<std::string>(card)) {
      slot = i;
    }
  }
  REQUIRE(slot >= 0);
  CHECK(q("SELECT location_kind || ':' || location_slot FROM deposits WHERE id = '" + deposit +
          "'") == "slot:" + std::to_string(slot));
  CHECK(q("SELECT collected_at FROM deposits WHERE id = '" + deposit + "'").empty());
  // The holder's notice is queued with the new pickup code (only its hash is kept).
  CHECK(q("SELECT count(*) FROM notice_outbox WHERE deposit_id = '" + deposit + "'") == "1");
  CHECK(q("SELECT count(*) FROM pickup_codes WHERE deposit_id = '" + deposit + "'") == "1");
  CHECK(collection().items_size() == 0);
  box.type("*");
  REQUIRE(displayIs("Please insert a found card"));

  // 6. The holder's code opens that slot, and only it.
  {
    pqxx::work tx(pg);
    tx.exec_params("UPDATE pickup_codes SET code_hash = $2 WHERE deposit_id = $1::uuid", deposit,
                   cloud::hashCode("4445556667", 1000));
    tx.commit();
  }
  // The bin door of the last session was never opened: the kiosk gives it up, then serves holders.
  REQUIRE(
      typeUntil(std::to_string(slot + 1) + " 4445556667", [&] { return status() == "releasing"; }));
  char unlocked[32];
  std::snprintf(unlocked, sizeof unlocked, "unlocked-slot-%02d", slot);
  // "releasing" is the cloud's answer; the kiosk unlocks the slot once that answer arrives.
  REQUIRE(test::eventually([&] { return fs::exists(sim_root / "state" / unlocked); }, 60s));
  REQUIRE(box.collectFromSlot(slot) == std::optional<std::string>(card));
  REQUIRE(test::eventually([&] { return status() == "collected"; }, 60s));
  CHECK(q("SELECT collected_by FROM deposits WHERE id = '" + deposit + "'") == "pickup");

  // No code typed ever reaches a log; the card number neither.
  for (const auto& entry : fs::directory_iterator(sys.dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".log") {
      const auto text = test::readFile(entry.path());
      INFO(entry.path().string());
      CHECK(text.find("1357924680") == std::string::npos);
      CHECK(text.find("4445556667") == std::string::npos);
      CHECK(text.find(kUnknownNumber) == std::string::npos);
      CHECK(text.find("5105 1051 0510 5100") == std::string::npos);
      CHECK(text.find(kMarieNumber) == std::string::npos);
    }
  }
}
