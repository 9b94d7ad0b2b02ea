// lostcard-simbox, the outside view of a simulated box: it reports where cards are and acts as
// finder, cardholder, operator and fault injector on a box another process (here, this test)
// drives.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/test/child_process.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using lostcard::hw::Destination;
using lostcard::hw::SimBox;
using lostcard::hw::SimBoxOptions;
using lostcard::hw::SimFault;
using namespace std::chrono_literals;

namespace {

struct Run {
  int exit_code = -1;
  std::string output;
};

// Runs lostcard-simbox to completion and returns its exit code and output.
Run simbox(const fs::path& dir, const std::vector<std::string>& args) {
  static int runs = 0;
  const fs::path log = dir / ("run-" + std::to_string(++runs) + ".log");
  std::vector<std::string> argv{lostcard::test::binDir() + "/lostcard-simbox"};
  argv.insert(argv.end(), args.begin(), args.end());
  lostcard::test::ChildProcess child(argv, log.string());
  const auto status = child.waitFor(60s);
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {WEXITSTATUS(*status), text.str()};
}

// A card folder with two files; the CLI only moves folders, so any bytes do.
fs::path makeCard(const fs::path& dir, const std::string& name) {
  fs::create_directories(dir / name);
  std::ofstream(dir / name / "front.jpg") << "front";
  std::ofstream(dir / name / "back.jpg") << "back";
  return dir / name;
}

}  // namespace

TEST_CASE("lostcard-simbox reports and changes a box another process drives", "[sim]") {
  const fs::path dir = lostcard::test::makeTestDir("simbox_cli_simtest");
  const fs::path root = dir / "box";
  const std::string root_arg = "--root=" + root.string();
  SimBox box(SimBoxOptions{root, 4, 10, 0});
  auto devices = box.devices();

  // The finder, through the tool.
  Run drop = simbox(dir, {root_arg, "drop", makeCard(dir / "cards", "card-a").string(),
                          makeCard(dir / "cards", "card-b").string()});
  REQUIRE(drop.exit_code == 0);
  CHECK(drop.output == "card-a\ncard-b\n");
  CHECK(box.cardsInIntake() == std::vector<std::string>{"card-a", "card-b"});
  CHECK_FALSE(fs::exists(root / "slots/04"));  // the tool kept the box's 4 slots

  REQUIRE(devices.sorter->moveTo(Destination::toSlot(2)));
  REQUIRE(devices.sorter->moveTo(Destination::toBin()));
  REQUIRE(devices.shutter->open());
  devices.display->show("Thank you\nfor your card");

  // The fault injector.
  REQUIRE(simbox(dir, {root_arg, "fault", "sorter-jam", "on"}).exit_code == 0);
  CHECK(box.faultOn(SimFault::kSorterJam));

  Run status = simbox(dir, {root_arg, "status"});
  REQUIRE(status.exit_code == 0);
  CHECK(status.output ==
        "slot\t02\tcard-a\n"
        "bin\tcard-b\n"
        "shutter\topen\n"
        "display\tThank you\\nfor your card\n"
        "fault\tsorter-jam\n");

  REQUIRE(simbox(dir, {root_arg, "fault", "sorter-jam", "off"}).exit_code == 0);
  CHECK_FALSE(box.faultOn(SimFault::kSorterJam));

  // The cardholder and the operator.
  Run collect = simbox(dir, {root_arg, "collect", "2"});
  REQUIRE(collect.exit_code == 0);
  CHECK(collect.output == "card-a\n");
  CHECK_FALSE(box.cardInSlot(2));
  Run again = simbox(dir, {root_arg, "collect", "2"});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.output, Contains("slot 2 holds no card"));
  Run empty = simbox(dir, {root_arg, "empty-bin"});
  REQUIRE(empty.exit_code == 0);
  CHECK(empty.output == "card-b\n");
  CHECK(box.cardsInBin().empty());
  CHECK(box.cardsCollected() == std::vector<std::string>{"card-a", "card-b"});

  // The operator puts a card they took out back into the intake (to restock it).
  Run put_back = simbox(dir, {root_arg, "put-back", "card-b"});
  REQUIRE(put_back.exit_code == 0);
  CHECK(put_back.output == "card-b\n");
  CHECK(box.cardsInIntake() == std::vector<std::string>{"card-b"});
  CHECK(box.cardsCollected() == std::vector<std::string>{"card-a"});
  Run not_out = simbox(dir, {root_arg, "put-back", "card-b"});
  CHECK(not_out.exit_code == 1);
  CHECK_THAT(not_out.output, Contains("no card 'card-b' was taken out"));
  REQUIRE(simbox(dir, {root_arg, "type", "#3"}).exit_code == 0);
  CHECK(box.keypadEntriesWaiting() == 1);
}

TEST_CASE("lostcard-simbox refuses bad commands", "[sim]") {
  const fs::path dir = lostcard::test::makeTestDir("simbox_cli_simtest_bad");
  const std::string root_arg = "--root=" + (dir / "box").string();
  Run no_command = simbox(dir, {root_arg});
  CHECK(no_command.exit_code == 2);
  CHECK_THAT(no_command.output, Contains("usage: lostcard-simbox"));
  Run bad_fault = simbox(dir, {root_arg, "fault", "gremlins", "on"});
  CHECK(bad_fault.exit_code == 2);
  CHECK_THAT(bad_fault.output, Contains("unknown fault 'gremlins'"));
  Run bad_slot = simbox(dir, {root_arg, "collect", "three"});
  CHECK(bad_slot.exit_code == 2);
  CHECK_THAT(bad_slot.output, Contains("'three' is not a slot number"));
  Run no_root = simbox(dir, {"status"});
  CHECK(no_root.exit_code == 2);
  CHECK_THAT(no_root.output, Contains("root"));
  Run missing_card = simbox(dir, {root_arg, "drop", (dir / "no-such-card").string()});
  CHECK(missing_card.exit_code == 1);
  CHECK_THAT(missing_card.output, Contains("not a card folder"));
}
