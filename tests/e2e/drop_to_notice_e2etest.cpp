// The whole drop path on real processes: PostgreSQL, lostcard-cloud, two lostcard-kiosk daemons
// on simulated hardware, and lostcard-webhook-sink standing for the holders' phones. A card
// dropped into one box must produce exactly one notice, to its own holder, naming that box.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using lostcard::test::dropCard;
using lostcard::test::readLines;

google::protobuf::Struct parseJson(const std::string& json) {
  google::protobuf::Struct s;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json, &s).ok());
  return s;
}

std::string field(const google::protobuf::Struct& s, const std::string& path) {
  const google::protobuf::Struct* current = &s;
  std::string rest = path;
  while (true) {
    const auto dot = rest.find('.');
    const std::string key = rest.substr(0, dot);
    const auto it = current->fields().find(key);
    if (it == current->fields().end()) {
      return "<missing " + path + ">";
    }
    if (dot == std::string::npos) {
      return it->second.string_value();
    }
    current = &it->second.struct_value();
    rest = rest.substr(dot + 1);
  }
}

bool holds(const fs::path& folder, const std::string& card) { return fs::exists(folder / card); }

}  // namespace

TEST_CASE("a dropped card becomes one notice to its holder naming the box", "[e2e]") {
  const fs::path dir = test::makeTestDir("drop_to_notice_e2etest");
  const std::string bin = test::binDir();
  const std::string tools = test::sourceDir() + "/tools";
  test::PgTestDb db;

  // Certificates, the card hash key, and photos of three cards.
  test::runProgram({tools + "/pki", "init", (dir / "pki").string()});
  test::runProgram({tools + "/pki", "server", (dir / "pki").string(), "localhost", "127.0.0.1"});
  for (const char* k : {"kiosk-east", "kiosk-west"}) {
    test::runProgram({tools + "/pki", "kiosk", (dir / "pki").string(), k});
  }
  std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'a') << "\n";
  // Luhn-valid numbers: Marie's card, a card nobody enrolled, and a card with no number.
  std::ofstream(dir / "cards.tsv") << "card-marie\t4556737586899855\n"
                                   << "card-unknown\t5105105105105100\n"
                                   << "card-blank\t-\n";
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
       "--secrets", (dir / "secrets.tsv").string(), "--out", (dir / "notices.jsonl").string()},
      (dir / "phones.log").string());
  test::ChildProcess cloud(
      test::cloudArgv(dir, db.conninfo(),
                      {"--listen", "127.0.0.1:0", "--port-file", (dir / "cloud.port").string()}),
      (dir / "cloud.log").string());
  REQUIRE(test::eventually([&] { return !readLines(dir / "cloud.port").empty(); }, 60s));
  const std::string cloud_port = readLines(dir / "cloud.port").front();

  auto startKiosk = [&](const std::string& id) {
    return std::make_unique<test::ChildProcess>(
        test::kioskArgv(dir, id, "127.0.0.1:" + cloud_port, 6), (dir / (id + ".log")).string());
  };
  auto east = startKiosk("kiosk-east");
  auto west = startKiosk("kiosk-west");

  // Marie's card goes into the west box; the two others into the east box.
  dropCard(dir / "cards/card-marie", dir / "kiosk-west");
  dropCard(dir / "cards/card-unknown", dir / "kiosk-east");
  REQUIRE(test::eventually([&] { return holds(dir / "kiosk-east/bin", "card-unknown"); }, 120s));
  dropCard(dir / "cards/card-blank", dir / "kiosk-east");

  REQUIRE(test::eventually([&] { return readLines(dir / "notices.jsonl").size() >= 1; }, 120s));
  REQUIRE(test::eventually([&] { return holds(dir / "kiosk-east/bin", "card-blank"); }, 120s));

  // Marie's card is in a slot of the west box, and her notice says so.
  bool in_slot = false;
  for (const auto& slot : fs::directory_iterator(dir / "kiosk-west/slots")) {
    in_slot = in_slot || holds(slot.path(), "card-marie");
  }
  CHECK(in_slot);
  const auto notices = readLines(dir / "notices.jsonl");
  REQUIRE(notices.size() == 1);
  const auto notice = parseJson(notices.front());
  CHECK(field(notice, "holder_id") == "holder-marie");
  CHECK(field(notice, "notice.kiosk.kioskId") == "kiosk-west");
  CHECK(field(notice, "notice.kiosk.name") == "West Library");
  CHECK(field(notice, "notice.kiosk.address") == "9 West Street, Springfield");
  CHECK(field(notice, "notice.kiosk.openingHours") == "Mo-Fr 09:00-18:00");
  CHECK(field(notice, "notice.cardLast4") == "9855");
  CHECK_FALSE(field(notice, "notice.pickupCode").empty());
  CHECK_THAT(field(notice, "notice.message"), Catch::Contains("West Library"));
  CHECK(notices.front().find("4556737586899855") == std::string::npos);

  // The cloud agrees with the boxes about where each card is.
  const auto deposits = adminRun({"deposits"});
  std::istringstream rows(deposits);
  int stored_in_bin = 0, stored_in_slot = 0;
  for (std::string line; std::getline(rows, line);) {
    if (line.find("\tstored\t") != std::string::npos) {
      (line.find("\tbin\t") != std::string::npos ? stored_in_bin : stored_in_slot)++;
    }
  }
  CHECK(stored_in_bin == 2);
  CHECK(stored_in_slot == 1);

  // Nothing in any log holds a card number.
  for (const char* log : {"cloud.log", "kiosk-east.log", "kiosk-west.log", "phones.log"}) {
    std::ifstream in(dir / log);
    std::stringstream text;
    text << in.rdbuf();
    INFO(log);
    CHECK(text.str().find("4556737586899855") == std::string::npos);
    CHECK(text.str().find("5105105105105100") == std::string::npos);
  }
}
