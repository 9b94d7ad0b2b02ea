// Dead peers on real processes: PostgreSQL, lostcard-cloud, lostcard-fault-proxy and a
// lostcard-kiosk on simulated hardware talking to the cloud through the proxy.
//
// An idle but healthy link stays up (the cloud acks heartbeats). Then the proxy stalls the link
// (TCP stays open, nothing passes): the kiosk notices the silence (its peer timeout), leaves the
// connection and keeps trying; the cloud closes the silent session (its idle timeout). A card
// dropped meanwhile goes through once the stall ends: nothing lost, one notice. Last, a slow
// link (every chunk delayed) carries a card whose upload takes longer than the kiosk's peer
// timeout, and the kiosk does not give up on it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
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
using lostcard::test::readFile;
using lostcard::test::readLines;

void writeControl(const fs::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

// The cloud's record of the kiosk's last heartbeat, seconds since the epoch (0: none yet).
double lastHeartbeatS(const std::string& conninfo) {
  pqxx::connection c(conninfo);
  pqxx::read_transaction tx(c);
  const auto v = tx.exec1(
      "SELECT extract(epoch FROM last_heartbeat_at) FROM kiosks "
      "WHERE id = 'kiosk-east'")[0];
  return v.is_null() ? 0.0 : v.as<double>();
}

}  // namespace

TEST_CASE("a stalled link is left by the kiosk and closed by the cloud; nothing is lost",
          "[e2e][peer]") {
  const fs::path dir = test::makeTestDir("peer_stall_e2etest");
  const std::string bin = test::binDir();
  const std::string tools = test::sourceDir() + "/tools";
  test::PgTestDb db;

  test::runProgram({tools + "/pki", "init", (dir / "pki").string()});
  test::runProgram({tools + "/pki", "server", (dir / "pki").string(), "localhost", "127.0.0.1"});
  test::runProgram({tools + "/pki", "kiosk", (dir / "pki").string(), "kiosk-east"});
  std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'a') << "\n";
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
  std::ofstream(dir / "secrets.tsv") << "holder-marie\tmarie-secret\n";

  test::ChildProcess sink(
      {bin + "/lostcard-webhook-sink", "--listen", "127.0.0.1:" + std::to_string(sink_port),
       "--secrets", (dir / "secrets.tsv").string(), "--out", (dir / "notices.jsonl").string(),
       "--raw-log", (dir / "raw.tsv").string()},
      (dir / "phones.log").string());
  test::ChildProcess cloud(
      test::cloudArgv(dir, db.conninfo(),
                      {"--listen", "127.0.0.1:0", "--port-file", (dir / "cloud.port").string(),
                       // Longer than the slow upload below takes, which the cloud counts as
                       // silence.
                       "--idle-timeout-ms", "12000", "--busy-keepalive-ms", "300"}),
      (dir / "cloud.log").string());
  REQUIRE(test::eventually([&] { return !readLines(dir / "cloud.port").empty(); }, 60s));
  const std::string cloud_port = readLines(dir / "cloud.port").front();

  const fs::path control = dir / "faults.conf";
  writeControl(control, "");
  test::ChildProcess proxy({bin + "/lostcard-fault-proxy", "--listen", "127.0.0.1:0", "--port-file",
                            (dir / "proxy.port").string(), "--target", "127.0.0.1:" + cloud_port,
                            "--control", control.string(), "--poll-ms", "20"},
                           (dir / "proxy.log").string());
  REQUIRE(test::eventually([&] { return !readLines(dir / "proxy.port").empty(); }, 60s));
  const std::string proxy_port = readLines(dir / "proxy.port").front();

  const std::string peer_timeout_ms = "2500";
  test::ChildProcess kiosk({bin + "/lostcard-kiosk",
                            "--id",
                            "kiosk-east",
                            "--cloud",
                            "127.0.0.1:" + proxy_port,
                            "--server-name",
                            "localhost",
                            "--ca",
                            (dir / "pki/ca.crt").string(),
                            "--cert",
                            (dir / "pki/kiosks/kiosk-east.crt").string(),
                            "--key",
                            (dir / "pki/kiosks/kiosk-east.key").string(),
                            "--journal",
                            (dir / "kiosk-east.journal").string(),
                            "--hw",
                            "sim",
                            "--sim-root",
                            (dir / "kiosk-east").string(),
                            "--slots",
                            "6",
                            "--heartbeat-ms",
                            "500",
                            "--peer-timeout-ms",
                            peer_timeout_ms},
                           (dir / "kiosk-east.log").string());
  auto kioskLog = [&] { return readFile(dir / "kiosk-east.log"); };
  REQUIRE(test::eventually([&] { return countOf(kioskLog(), "cloud link up") == 1; }, 60s));

  // An idle, healthy link stays up: the cloud acks every heartbeat.
  REQUIRE(test::eventually([&] { return lastHeartbeatS(db.conninfo()) > 0; }, 30s));
  const double first_s = lastHeartbeatS(db.conninfo());
  // Heartbeats keep arriving over three peer timeouts (by the cloud's own clock)...
  REQUIRE(test::eventually([&] { return lastHeartbeatS(db.conninfo()) > first_s + 7.5; }, 120s));
  // ... on the one link, which the kiosk never had to leave.
  CHECK(countOf(kioskLog(), "cloud link up") == 1);
  CHECK(countOf(kioskLog(), "nothing from the cloud") == 0);
  CHECK(countOf(readFile(dir / "cloud.log"), "idle timeout") == 0);

  // A stall is detected on both ends; the card dropped meanwhile goes through once.
  writeControl(control, "stall = 1\n");
  REQUIRE(test::eventually(
      [&] {
        return countOf(kioskLog(), "nothing from the cloud for " + peer_timeout_ms + " ms") >= 1;
      },
      60s));
  REQUIRE(test::eventually(
      [&] { return countOf(readFile(dir / "cloud.log"), "closed: idle timeout") >= 1; }, 60s));

  dropCard(dir / "cards/card-marie", dir / "kiosk-east");
  REQUIRE(test::eventually([&] { return countOf(kioskLog(), " taken: ") == 1; }, 60s));
  writeControl(control, "stall = 0\n");

  REQUIRE(test::eventually([&] { return countOf(kioskLog(), "cloud link up") >= 2; }, 120s));
  REQUIRE(test::eventually([&] { return readLines(dir / "notices.jsonl").size() >= 1; }, 120s));
  CHECK(inSomeSlot(dir / "kiosk-east", "card-marie"));

  const auto deposits = adminRun({"deposits"});
  CHECK(countOf(deposits, "\n") == 1);
  CHECK(countOf(deposits, "\tstored\t") == 1);
  CHECK(readLines(dir / "notices.jsonl").size() == 1);
  std::map<std::string, int> accepted;
  for (const auto& line : readLines(dir / "raw.tsv")) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos && line.compare(tab + 1, 1, "2") == 0) {
      ++accepted[line.substr(0, tab)];
    }
  }
  REQUIRE(accepted.size() == 1);
  CHECK(accepted.begin()->second == 1);

  // A slow link: each chunk of at most 16 KiB waits 200 ms in the proxy, so the card's photos
  // take seconds to arrive, longer than the peer timeout, yet well within what the kiosk
  // allows an upload (8 KiB/s).
  const auto links_before = countOf(kioskLog(), "cloud link up");
  const auto silences_before = countOf(kioskLog(), "nothing from the cloud");
  writeControl(control, "delay_ms = 200\n");
  REQUIRE(test::eventually(
      [&] { return countOf(readFile(dir / "proxy.log"), "delay_ms=200") >= 1; }, 30s));
  dropCard(dir / "cards/card-unknown", dir / "kiosk-east");
  REQUIRE(test::eventually([&] { return fs::exists(dir / "kiosk-east/bin/card-unknown"); }, 180s));
  CHECK(countOf(kioskLog(), "cloud link up") == links_before);
  CHECK(countOf(kioskLog(), "nothing from the cloud") == silences_before);
  writeControl(control, "");

  kiosk.terminate();
  proxy.terminate();
  CHECK(cloud.terminate(60s) == 0);
  for (const char* log : {"cloud.log", "kiosk-east.log", "phones.log", "proxy.log"}) {
    INFO(log);
    CHECK(readFile(dir / log).find("4556737586899855") == std::string::npos);
    CHECK(readFile(dir / log).find("5105105105105100") == std::string::npos);
  }
}
