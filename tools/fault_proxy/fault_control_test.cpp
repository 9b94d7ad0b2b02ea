#include "lostcard/fault_proxy/fault_control.hpp"

#include <catch2/catch.hpp>

using lostcard::fault_proxy::FaultControl;
using lostcard::fault_proxy::parseFaultControl;

TEST_CASE("an empty control file means no fault") {
  const auto parsed = parseFaultControl("");
  CHECK(parsed.control == FaultControl{});
  CHECK(parsed.problems.empty());
}

TEST_CASE("every key is read, with comments and blanks") {
  const auto parsed = parseFaultControl(
      "# chaos step 3\n delay_ms = 250 \nstall=1\nrefuse = 0 # not now\n\ncut = 4\n");
  CHECK(parsed.control.delay_ms == 250);
  CHECK(parsed.control.stall);
  CHECK_FALSE(parsed.control.refuse);
  CHECK(parsed.control.cut_generation == 4);
  CHECK(parsed.problems.empty());
}

TEST_CASE("bad lines are reported and skipped, good ones still count") {
  const auto parsed = parseFaultControl("delay_ms = lots\nwobble = 1\nstall = -1\nrefuse = 1");
  CHECK(parsed.control.delay_ms == 0);
  CHECK_FALSE(parsed.control.stall);
  CHECK(parsed.control.refuse);
  REQUIRE(parsed.problems.size() == 3);
  CHECK(parsed.problems[1].find("wobble") != std::string::npos);
}

TEST_CASE("a half-written last line without newline is read") {
  CHECK(parseFaultControl("cut = 12").control.cut_generation == 12);
}
