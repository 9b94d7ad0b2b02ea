// Reconciliation on real processes: PostgreSQL, lostcard-cloud and a lostcard-kiosk daemon on
// simulated hardware. The kiosk sends the cloud its inventory (what its journal says each place
// holds); `lostcard-admin reconcile` reports agreement, then flags the disagreements made on
// purpose: the cloud's record of a card moved to another slot, and a card the kiosk's journal
// lost track of.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>

#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using lostcard::test::dropCard;
using lostcard::test::inSomeSlot;
using lostcard::test::nonEmptyLines;
using lostcard::test::readFile;

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string field; std::getline(in, field, '\t');) {
    out.push_back(field);
  }
  return out;
}

struct Outcome {
  int exit_code = -1;
  std::string output;
};

}  // namespace

TEST_CASE("lostcard-admin reconcile reports agreement, then each disagreement", "[e2e]") {
  const fs::path dir = test::makeTestDir("reconcile_e2etest");
  const std::string bin = test::binDir();
  const std::string tools = test::sourceDir() + "/tools";
  test::PgTestDb db;

  test::runProgram({tools + "/pki", "init", (dir / "pki").string()});
  test::runProgram({tools + "/pki", "server", (dir / "pki").string(), "localhost", "127.0.0.1"});
  test::runProgram({tools + "/pki", "kiosk", (dir / "pki").string(), "kiosk-1"});
  std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'c') << "\n";
  // Marie's card (enrolled: it goes to a slot) and a card nobody enrolled (it goes to the bin).
  std::ofstream(dir / "cards.tsv") << "card-marie\t4556737586899855\n"
                                   << "card-unknown\t5105105105105100\n";
  test::runProgram({bin + "/lostcard-cardgen", "--seed", "11", "--numbers",
                    (dir / "cards.tsv").string(), "--out", (dir / "cards").string()});

  const std::vector<std::string> admin = {bin + "/lostcard-admin", "--db", db.conninfo(),
                                          "--card-key-file", (dir / "card.key").string()};
  auto adminRun = [&](std::vector<std::string> args, const std::string& input = {}) {
    std::vector<std::string> argv = admin;
    argv.insert(argv.end(), args.begin(), args.end());
    return test::runProgram(argv, input);
  };
  // `reconcile` exits 3 on disagreements, which runProgram treats as a failure: run it here.
  int runs = 0;
  auto reconcile = [&]() {
    const fs::path out = dir / ("reconcile-" + std::to_string(++runs) + ".out");
    std::vector<std::string> argv = admin;
    argv.insert(argv.end(), {"reconcile", "--kiosk", "kiosk-1"});
    test::ChildProcess run(argv, out.string());
    const auto status = run.waitFor(60s);
    Outcome o;
    if (status && WIFEXITED(*status)) {
      o.exit_code = WEXITSTATUS(*status);
    }
    o.output = readFile(out);
    return o;
  };

  adminRun({"migrate"});
  adminRun({"add-issuer", "bank", "Example Bank"});
  adminRun({"add-holder", "holder-marie", "Marie Curie",
            "http://127.0.0.1:" + std::to_string(test::freeLocalPort()) + "/holders/marie",
            "marie-secret"});
  adminRun({"add-cards"}, "bank\tholder-marie\t4556737586899855\n");
  adminRun({"add-kiosk", "kiosk-1", "--name", "East Station", "--address", "1 East Road", "--lat",
            "48.8584", "--lon", "2.2945", "--slots", "6"});

  // Before the kiosk ever spoke: the cloud's records only, nothing to disagree with.
  {
    const auto o = reconcile();
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::Contains("no inventory received yet"));
    CHECK_THAT(o.output,
               Catch::Contains("reconcile: kiosk=kiosk-1 slots_used=0 bin=0 disagreements=0"));
  }

  test::ChildProcess cloud(
      test::cloudArgv(dir, db.conninfo(),
                      {"--listen", "127.0.0.1:0", "--port-file", (dir / "cloud.port").string()}),
      (dir / "cloud.log").string());
  REQUIRE(
      test::eventually([&] { return !nonEmptyLines(readFile(dir / "cloud.port")).empty(); }, 60s));
  const std::string cloud_port = nonEmptyLines(readFile(dir / "cloud.port")).front();

  const fs::path journal_path = dir / "kiosk-1.journal";
  const fs::path sim_root = dir / "kiosk-1";
  auto startKiosk = [&] {
    // clang-format off
    std::vector<std::string> argv = {
        bin + "/lostcard-kiosk", "--id", "kiosk-1", "--cloud", "127.0.0.1:" + cloud_port,
        "--server-name", "localhost", "--ca", (dir / "pki/ca.crt").string(),
        "--cert", (dir / "pki/kiosks/kiosk-1.crt").string(),
        "--key", (dir / "pki/kiosks/kiosk-1.key").string(),
        "--journal", journal_path.string(), "--hw", "sim", "--sim-root", sim_root.string(),
        "--slots", "6", "--heartbeat-ms", "500"};
    // clang-format on
    return std::make_unique<test::ChildProcess>(argv, (dir / "kiosk-1.log").string());
  };
  auto kiosk = startKiosk();

  dropCard(dir / "cards/card-marie", sim_root);
  REQUIRE(test::eventually([&] { return inSomeSlot(sim_root, "card-marie"); }, 120s));
  dropCard(dir / "cards/card-unknown", sim_root);
  REQUIRE(test::eventually([&] { return fs::exists(sim_root / "bin/card-unknown"); }, 120s));

  // The inventory sent after the last move reaches the cloud: the two sides agree.
  Outcome agreed;
  REQUIRE(test::eventually(
      [&] {
        agreed = reconcile();
        return agreed.exit_code == 0 &&
               agreed.output.find("slots_used=1 bin=1 disagreements=0") != std::string::npos;
      },
      120s));
  INFO(agreed.output);
  CHECK_THAT(agreed.output, Catch::Contains(" fresh"));
  CHECK_THAT(agreed.output,
             Catch::Contains("reconcile: kiosk=kiosk-1 slots_used=1 bin=1 disagreements=0"));
  CHECK(agreed.output.find("DISAGREE") == std::string::npos);

  // The deposits as the cloud has them: one in a slot (Marie's), one in the bin.
  std::string slot_deposit, bin_deposit, slot_place;
  for (const auto& line : nonEmptyLines(adminRun({"deposits", "--kiosk", "kiosk-1"}))) {
    const auto f = fields(line);
    REQUIRE(f.size() == 7);
    if (f[4] == "bin") {
      bin_deposit = f[0];
    } else {
      slot_deposit = f[0];
      slot_place = f[4];
    }
  }
  REQUIRE_FALSE(slot_deposit.empty());
  REQUIRE_FALSE(bin_deposit.empty());
  // Each agreed line names the deposit, both views, the last four digits the cloud has.
  CHECK_THAT(agreed.output,
             Catch::Contains("  " + slot_place + "\t" + slot_deposit + "\tkiosk=" + slot_place +
                             "\tcloud=" + slot_place + "\tlast4=9855\tstored\tok"));
  CHECK_THAT(agreed.output, Catch::Contains("  bin\t" + bin_deposit + "\tkiosk=bin\tcloud=bin"));

  // Disagreement 1: the cloud's record says Marie's card is in another slot.
  const int recorded_slot = std::stoi(slot_place.substr(std::string("slot:").size()));
  const std::string wrong_place = "slot:" + std::to_string((recorded_slot + 1) % 6);
  {
    pqxx::connection c(db.conninfo());
    pqxx::work tx(c);
    tx.exec_params("UPDATE deposits SET location_slot = $2 WHERE id = $1::uuid", slot_deposit,
                   (recorded_slot + 1) % 6);
    tx.commit();
  }
  {
    const auto o = reconcile();
    INFO(o.output);
    CHECK(o.exit_code == 3);
    CHECK_THAT(o.output,
               Catch::Contains(slot_deposit + "\tkiosk=" + slot_place + "\tcloud=" + wrong_place));
    CHECK_THAT(o.output, Catch::Contains("DISAGREE elsewhere"));
    CHECK_THAT(o.output,
               Catch::Contains("reconcile: kiosk=kiosk-1 slots_used=1 bin=1 disagreements=1"));
  }

  // Disagreement 2: the kiosk's journal loses track of the bin card (as recovery records a card
  // not found after a power cut). Restarted, the kiosk reports it as uncertain.
  REQUIRE(kiosk->terminate() == 0);
  {
    kiosk::Journal journal(journal_path);
    journal.failMove(bin_deposit, kiosk::Location::unknown(), "not found (test)", 0);
  }
  kiosk = startKiosk();
  // The cloud warns about both when the inventory arrives (ids only).
  REQUIRE(test::eventually(
      [&] {
        const auto log = readFile(dir / "cloud.log");
        return log.find("disagrees about deposit " + bin_deposit + " (uncertain)") !=
               std::string::npos;
      },
      120s));
  CHECK_THAT(readFile(dir / "cloud.log"),
             Catch::Contains("disagrees about deposit " + slot_deposit + " (elsewhere)"));
  {
    const auto o = reconcile();
    INFO(o.output);
    CHECK(o.exit_code == 3);
    CHECK_THAT(o.output, Catch::Contains(bin_deposit + "\tkiosk=unknown (uncertain)\tcloud=bin"));
    CHECK_THAT(o.output, Catch::Contains("DISAGREE uncertain"));
    CHECK_THAT(o.output,
               Catch::Contains("reconcile: kiosk=kiosk-1 slots_used=1 bin=0 disagreements=2"));
  }
  // Without --kiosk: every kiosk, the same verdict.
  CHECK_THROWS(adminRun({"reconcile"}));

  // Nothing in any log or output holds a card number.
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() == ".tsv" ||
        entry.path().filename().string().find("journal") != std::string::npos) {
      continue;
    }
    INFO(entry.path().string());
    const auto text = readFile(entry.path());
    CHECK(text.find("4556737586899855") == std::string::npos);
    CHECK(text.find("5105105105105100") == std::string::npos);
  }
}
