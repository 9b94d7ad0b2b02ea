// Cards going back to their issuer, on real processes: PostgreSQL, lostcard-cloud and the
// lostcard-kiosk daemon on a simulated box. Two holders' cards lie unclaimed in slots; the
// unclaimed sweep marks them for return (the issuer's event is queued); the operator's box code
// opens a session in which only those two slots unlock; she takes one card and leaves the other;
// when she ends the session with '*' the kiosk reports the card taken, which the cloud marks
// collected by her, while the one left in its slot stays to return and its slot opens again in
// her next session.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <pqxx/pqxx>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/test/box_system.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int kSlots = 4;

fs::path unlockedSlot(const fs::path& sim_root, int slot) {
  char name[32];
  std::snprintf(name, sizeof name, "unlocked-slot-%02d", slot);
  return sim_root / "state" / name;
}

}  // namespace

TEST_CASE("unclaimed cards are taken from their slots by an operator for their issuer", "[e2e]") {
  test::PgTestDb db;
  test::BoxSystem sys(test::makeTestDir("box_return_e2etest"), db.conninfo());
  sys.makePki({"kiosk-1"});
  sys.makeCards({{"card-marie", "4556737586899855"}, {"card-alan", "4000056655665556"}});
  sys.addPeople(kSlots);
  sys.admin({"add-cards"}, "bank\tholder-marie\t4000056655665556\n");

  pqxx::connection pg(db.conninfo());
  auto q = [&](const std::string& sql) {
    pqxx::read_transaction tx(pg);
    const auto rows = tx.exec(sql);
    return rows.empty() || rows[0][0].is_null() ? std::string() : rows[0][0].as<std::string>();
  };

  auto cloud = sys.startCloud(/*http=*/false);
  test::ChildProcess kiosk(sys.kioskArgv("kiosk-1", kSlots,
                                         {"--bin-open-ms", "5000", "--operator-session-ms",
                                          "600000"}),
                           (sys.dir / "kiosk-1.log").string());
  const fs::path sim_root = sys.simRoot("kiosk-1");
  hw::SimBox box({.root = sim_root, .slot_count = kSlots});
  auto slotOf = [&](const std::string& card) {
    for (int i = 0; i < kSlots; ++i) {
      if (box.cardInSlot(i) == std::optional<std::string>(card)) {
        return i;
      }
    }
    return -1;
  };
  auto depositOf = [&](const std::string& last4) {
    return q("SELECT id::text FROM deposits WHERE last4 = '" + last4 + "'");
  };
  auto status = [&](const std::string& deposit) {
    return q("SELECT status FROM deposits WHERE id = '" + deposit + "'");
  };
  auto idle = [&] {
    return test::eventually([&] { return box.displayText() == "Please insert a found card"; },
                            60s);
  };
  auto binOpenings = [&] { return q("SELECT count(*) FROM audit_log WHERE action = 'bin.open'"); };
  // Types the operator's code until the cloud has opened `openings` sessions (the kiosk may
  // still wait for the last session's bin door, given up after --bin-open-ms).
  auto startSession = [&](const std::string& openings) {
    REQUIRE(test::eventually(
        [&] {
          box.type("* 1357924680");
          return test::eventually([&] { return box.keypadEntriesWaiting() == 0; }, 30s) &&
                 test::eventually([&] { return binOpenings() == openings; }, 3s);
        },
        60s));
  };

  // 1. Two holders' cards are dropped and stored in slots; nobody collects them.
  const std::string marie = box.dropCard(sys.dir / "cards/card-marie");
  REQUIRE(test::eventually([&] { return test::inSomeSlot(sim_root, marie); }, 120s));
  REQUIRE(idle());
  const std::string alan = box.dropCard(sys.dir / "cards/card-alan");
  REQUIRE(test::eventually([&] { return test::inSomeSlot(sim_root, alan); }, 120s));
  REQUIRE(idle());
  const std::string marie_deposit = depositOf("9855");
  const std::string alan_deposit = depositOf("5556");
  REQUIRE(test::eventually([&] { return status(marie_deposit) == "stored"; }, 60s));
  REQUIRE(test::eventually([&] { return status(alan_deposit) == "stored"; }, 60s));
  const int marie_slot = slotOf(marie);
  const int alan_slot = slotOf(alan);
  REQUIRE(marie_slot >= 0);
  REQUIRE(alan_slot >= 0);

  // 2. Forty days later they are unclaimed: the sweep marks both for return to their issuer.
  {
    pqxx::work tx(pg);
    tx.exec("UPDATE deposits SET stored_at = stored_at - interval '40 days', "
            "decided_at = decided_at - interval '40 days'");
    tx.commit();
  }
  const auto swept = sys.admin({"sweep-unclaimed", "--days", "30"});
  INFO(swept);
  CHECK(status(marie_deposit) == "to_return");
  CHECK(status(alan_deposit) == "to_return");
  CHECK(q("SELECT count(*) FROM issuer_event_outbox WHERE kind = 'returned_to_issuer'") == "2");

  // 3. The operator's session unlocks those two slots, and no other.
  startSession("1");
  REQUIRE(test::eventually([&] { return fs::exists(unlockedSlot(sim_root, marie_slot)); }, 60s));
  REQUIRE(test::eventually([&] { return fs::exists(unlockedSlot(sim_root, alan_slot)); }, 60s));
  for (int i = 0; i < kSlots; ++i) {
    if (i != marie_slot && i != alan_slot) {
      CHECK_FALSE(fs::exists(unlockedSlot(sim_root, i)));
    }
  }
  // She takes Marie's card and leaves Alan's, then ends the session.
  REQUIRE(box.collectFromSlot(marie_slot) == std::optional<std::string>(marie));
  box.type("*");
  REQUIRE(test::eventually([&] { return status(marie_deposit) == "collected"; }, 60s));
  CHECK(q("SELECT collected_by FROM deposits WHERE id = '" + marie_deposit + "'") == "operator");
  CHECK(q("SELECT count(*) FROM audit_log WHERE action = 'return.collected'") == "1");
  CHECK(status(alan_deposit) == "to_return");
  CHECK(box.cardInSlot(alan_slot) == std::optional<std::string>(alan));

  // 4. Her next session opens Alan's slot again, and only it; this time she takes the card. (The
  // simulator records each unlock in a file: clear the first session's records.)
  fs::remove(unlockedSlot(sim_root, marie_slot));
  fs::remove(unlockedSlot(sim_root, alan_slot));
  REQUIRE(idle());
  startSession("2");
  REQUIRE(test::eventually([&] { return fs::exists(unlockedSlot(sim_root, alan_slot)); }, 60s));
  for (int i = 0; i < kSlots; ++i) {
    if (i != alan_slot) {
      CHECK_FALSE(fs::exists(unlockedSlot(sim_root, i)));
    }
  }
  REQUIRE(box.collectFromSlot(alan_slot) == std::optional<std::string>(alan));
  box.type("*");
  REQUIRE(test::eventually([&] { return status(alan_deposit) == "collected"; }, 60s));
  CHECK(q("SELECT count(*) FROM audit_log WHERE action = 'return.collected'") == "2");
  CHECK(q("SELECT count(*) FROM deposits WHERE status <> 'collected'") == "0");
}
