// A graceful stop of lostcard-cloud on real processes, with back-pressure: the cloud has one
// recognition place and two kiosks each send a card. One card is in hand, the other waits for
// the place. SIGTERM: the waiting session gives up (its kiosk resends later), the card in hand
// is decided and its Disposition reaches its kiosk, then the cloud exits 0. A new cloud takes
// over and every card ends decided exactly once, with at most one notice each.
//
// The card is held "in hand" deterministically: the test locks the deposits table, so the
// cloud's session blocks inside its decision until the test lets go.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <sstream>

#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using lostcard::test::countOf;
using lostcard::test::dropCard;
using lostcard::test::inSomeSlot;
using lostcard::test::nonEmptyLines;
using lostcard::test::readFile;
using lostcard::test::readLines;

// Backends of this test's database that wait for a lock.
int lockWaiters(const std::string& conninfo) {
  pqxx::connection c(conninfo);
  pqxx::read_transaction tx(c);
  return tx
      .exec1(
          "SELECT count(*) FROM pg_stat_activity "
          "WHERE datname = current_database() AND wait_event_type = 'Lock'")[0]
      .as<int>();
}

}  // namespace

TEST_CASE("a stopping cloud answers the card in hand, exits 0, and nothing is decided twice",
          "[e2e][drain]") {
  const fs::path dir = test::makeTestDir("cloud_drain_e2etest");
  const std::string bin = test::binDir();
  const std::string tools = test::sourceDir() + "/tools";
  test::PgTestDb db;

  test::runProgram({tools + "/pki", "init", (dir / "pki").string()});
  test::runProgram({tools + "/pki", "server", (dir / "pki").string(), "localhost", "127.0.0.1"});
  for (const char* k : {"kiosk-east", "kiosk-west"}) {
    test::runProgram({tools + "/pki", "kiosk", (dir / "pki").string(), k});
  }
  std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'a') << "\n";
  // Luhn-valid numbers: Marie's card and a card nobody enrolled.
  std::ofstream(dir / "cards.tsv") << "card-marie\t4556737586899855\n"
                                   << "card-unknown\t5105105105105100\n";
  test::runProgram({bin + "/lostcard-cardgen", "--seed", "11", "--numbers",
                    (dir / "cards.tsv").string(), "--out", (dir / "cards").string()});

  const int sink_port = test::freeLocalPort();
  const std::vector<std::string> admin = {bin + "/lostcard-admin", "--db", db.conninfo(),
                                          "--card-key-file", (dir / "card.key").string()};
  auto adminRun = [&](std::vector<std::string> args, const std::string& input = {}) {
    std::vector<std::string> argv = admin;
    argv.insert(argv.end(), args.begin(), args.end());
    return test::runProgram(argv, input);
  };
  adminRun({"migrate"});
  adminRun({"add-issuer", "bank", "Example Bank"});
  adminRun({"add-holder", "holder-marie", "Marie Curie",
            "http://127.0.0.1:" + std::to_string(sink_port) + "/holders/holder-marie",
            "marie-secret"});
  adminRun({"add-cards"}, "bank\tholder-marie\t4556737586899855\n");
  adminRun({"add-kiosk", "kiosk-east", "--name", "East Station", "--address",
            "1 East Road, Springfield", "--lat", "48.8584", "--lon", "2.2945", "--hours",
            "Mo-Su 06:00-23:00", "--slots", "6"});
  adminRun({"add-kiosk", "kiosk-west", "--name", "West Library", "--address",
            "9 West Street, Springfield", "--lat", "48.8606", "--lon", "2.3376", "--hours",
            "Mo-Fr 09:00-18:00", "--slots", "6"});
  std::ofstream(dir / "secrets.tsv") << "holder-marie\tmarie-secret\n";

  test::ChildProcess sink(
      {bin + "/lostcard-webhook-sink", "--listen", "127.0.0.1:" + std::to_string(sink_port),
       "--secrets", (dir / "secrets.tsv").string(), "--out", (dir / "notices.jsonl").string(),
       "--raw-log", (dir / "raw.tsv").string()},
      (dir / "phones.log").string());

  // Both clouds listen on one port, as a restarted service would.
  const std::string cloud_port = std::to_string(test::freeLocalPort());
  auto startCloud = [&](const std::string& log_name) {
    return std::make_unique<test::ChildProcess>(
        test::cloudArgv(dir, db.conninfo(),
                        {"--listen", "127.0.0.1:" + cloud_port, "--workers", "2",
                         "--max-queued-recognitions", "1", "--busy-keepalive-ms", "300",
                         // Far beyond what the test needs: the deadline must never decide this.
                         "--drain-timeout-ms", "120000"}),
        (dir / log_name).string());
  };
  auto cloud = startCloud("cloud-1.log");
  auto cloudLogHas = [&](const std::string& log_name, const std::string& text) {
    return readFile(dir / log_name).find(text) != std::string::npos;
  };
  REQUIRE(
      test::eventually([&] { return cloudLogHas("cloud-1.log", "lostcard-cloud ready"); }, 60s));

  auto startKiosk = [&](const std::string& id) {
    return std::make_unique<test::ChildProcess>(
        test::kioskArgv(dir, id, "127.0.0.1:" + cloud_port, 6), (dir / (id + ".log")).string());
  };
  auto east = startKiosk("kiosk-east");
  auto west = startKiosk("kiosk-west");
  for (const char* id : {"kiosk-east", "kiosk-west"}) {
    REQUIRE(test::eventually(
        [&] {
          return readFile(dir / (std::string(id) + ".log")).find("cloud link up") !=
                 std::string::npos;
        },
        60s));
  }

  // Hold the decision in hand: nobody may write deposits until the test lets go. Marie's card
  // goes into the west box, the unknown card into the east box; whichever session takes the
  // one recognition place blocks in its decision, the other waits for the place.
  pqxx::connection locker(db.conninfo());
  auto hold = std::make_unique<pqxx::work>(locker);
  hold->exec0("LOCK TABLE deposits IN EXCLUSIVE MODE");
  dropCard(dir / "cards/card-marie", dir / "kiosk-west");
  dropCard(dir / "cards/card-unknown", dir / "kiosk-east");
  REQUIRE(test::eventually([&] { return lockWaiters(db.conninfo()) >= 1; }, 120s));
  REQUIRE(test::eventually(
      [&] {
        return readFile(dir / "cloud-1.log").find("waits for a recognition place") !=
               std::string::npos;
      },
      120s));

  ::kill(cloud->pid(), SIGTERM);
  REQUIRE(test::eventually(
      [&] {
        return readFile(dir / "cloud-1.log")
                   .find("closed: cloud shutting down (while waiting for a recognition place)") !=
               std::string::npos;
      },
      30s));
  // Still there: the other session has a card in hand.
  CHECK(cloud->running());
  hold->abort();
  hold.reset();

  const auto status = cloud->waitFor(180s);
  REQUIRE(status.has_value());
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  const std::string first_log = readFile(dir / "cloud-1.log");
  CHECK(countOf(first_log, "drained: the message in hand was answered") == 1);
  CHECK(first_log.find("drain deadline passed") == std::string::npos);

  // The card in hand got its Disposition before the cloud went: it is sorted with no cloud
  // running (its CardStored waits in its kiosk's journal).
  auto marieSorted = [&] { return inSomeSlot(dir / "kiosk-west", "card-marie"); };
  auto unknownSorted = [&] { return fs::exists(dir / "kiosk-east/bin/card-unknown"); };
  REQUIRE(test::eventually([&] { return marieSorted() || unknownSorted(); }, 60s));

  // The next cloud takes over: the waiting card is sent again and decided, the other's
  // CardStored arrives.
  cloud = startCloud("cloud-2.log");
  REQUIRE(test::eventually([&] { return marieSorted() && unknownSorted(); }, 120s));
  REQUIRE(test::eventually([&] { return readLines(dir / "notices.jsonl").size() >= 1; }, 120s));

  // The second cloud never saw a decided card captured again: each was decided once.
  const std::string second_log = readFile(dir / "cloud-2.log");
  CHECK(second_log.find("seen again") == std::string::npos);

  // One deposit row per card, both stored where the boxes hold them.
  REQUIRE(
      test::eventually([&] { return countOf(adminRun({"deposits"}), "\tstored\t") == 2; }, 60s));
  const auto deposits = nonEmptyLines(adminRun({"deposits"}));
  REQUIRE(deposits.size() == 2);
  int in_bin = 0;
  for (const auto& row : deposits) {
    in_bin += row.find("\tbin\t") != std::string::npos ? 1 : 0;
  }
  CHECK(in_bin == 1);

  // One notice, for Marie's card, accepted once by her phone.
  CHECK(readLines(dir / "notices.jsonl").size() == 1);
  const auto notices = adminRun({"notices"});
  CHECK(countOf(notices, "holder-marie") == 1);
  std::map<std::string, int> accepted;
  for (const auto& line : readLines(dir / "raw.tsv")) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos && line.compare(tab + 1, 1, "2") == 0) {
      ++accepted[line.substr(0, tab)];
    }
  }
  CHECK(accepted.size() == 1);
  for (const auto& [key, times] : accepted) {
    INFO(key);
    CHECK(times == 1);
  }

  // A cloud with no card in hand stops at once, and cleanly, too.
  CHECK(cloud->terminate(60s) == 0);
  east->terminate();
  west->terminate();

  for (const char* log :
       {"cloud-1.log", "cloud-2.log", "kiosk-east.log", "kiosk-west.log", "phones.log"}) {
    const std::string text = readFile(dir / log);
    INFO(log);
    CHECK(text.find("4556737586899855") == std::string::npos);
    CHECK(text.find("5105105105105100") == std::string::npos);
  }
}
