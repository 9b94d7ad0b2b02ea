// The lostcard-cardgen program: its files, its labels, its determinism, and that it never
// prints a card number.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lostcard/cloud/jpeg_probe.hpp"
#include "lostcard/cloud/luhn.hpp"
#include "lostcard/test/child_process.hpp"

namespace fs = std::filesystem;
using lostcard::test::ChildProcess;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs lostcard-cardgen with `args`; returns its exit code, its output in *log.
int runCardgen(const std::vector<std::string>& args, const std::string& log_path,
               std::string* log) {
  std::vector<std::string> argv = {lostcard::test::binDir() + "/lostcard-cardgen"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess child(argv, log_path);
  const auto status = child.waitFor(std::chrono::seconds(120));
  REQUIRE(status);
  *log = slurp(log_path);
  REQUIRE(WIFEXITED(*status));
  return WEXITSTATUS(*status);
}

std::map<std::string, std::string> readLabels(const fs::path& path) {
  std::map<std::string, std::string> labels;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    labels[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return labels;
}

}  // namespace

TEST_CASE("lostcard-cardgen writes labeled photos of random cards") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_random");
  std::string log;
  REQUIRE(runCardgen({"--out", dir + "/out", "--seed", "11", "--count", "3"}, dir + "/log", &log) ==
          0);
  const auto labels = readLabels(dir + "/out/labels.tsv");
  REQUIRE(labels.size() == 3);
  for (const char* name : {"card-0001", "card-0002", "card-0003"}) {
    INFO(name);
    REQUIRE(labels.count(name) == 1);
    const std::string& number = labels.at(name);
    CHECK(number.size() == 16);
    CHECK(lostcard::cloud::luhnValid(number));
    CHECK((number[0] == '4' || number[0] == '5'));
    CHECK(log.find(number) == std::string::npos);
    CHECK(log.find(number.substr(0, 4) + " " + number.substr(4, 4)) == std::string::npos);
    for (const char* face : {"front.jpg", "back.jpg"}) {
      const auto info = lostcard::cloud::probeJpeg(slurp(fs::path(dir) / "out" / name / face));
      REQUIRE(info);
      CHECK(info->width_px == 1280);
      CHECK(info->height_px == 960);
    }
  }
}

TEST_CASE("lostcard-cardgen is deterministic by seed") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_seed");
  std::string log;
  REQUIRE(runCardgen({"--out", dir + "/a", "--seed", "5", "--count", "2"}, dir + "/log", &log) ==
          0);
  REQUIRE(runCardgen({"--out", dir + "/b", "--seed", "5", "--count", "2"}, dir + "/log", &log) ==
          0);
  REQUIRE(runCardgen({"--out", dir + "/c", "--seed", "6", "--count", "2"}, dir + "/log", &log) ==
          0);
  CHECK(slurp(dir + "/a/labels.tsv") == slurp(dir + "/b/labels.tsv"));
  CHECK(slurp(dir + "/a/card-0002/front.jpg") == slurp(dir + "/b/card-0002/front.jpg"));
  CHECK(slurp(dir + "/a/card-0002/back.jpg") == slurp(dir + "/b/card-0002/back.jpg"));
  CHECK(slurp(dir + "/a/labels.tsv") != slurp(dir + "/c/labels.tsv"));
}

TEST_CASE("lostcard-cardgen renders the cards of a numbers file") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_numbers");
  {
    std::ofstream numbers(dir + "/numbers.tsv");
    numbers << "# demo cards\n"
            << "alice\t4556737586899855\n"
            << "lost-and-worn\t-\n"
            << "amex.1\t378282246310005\n";
  }
  std::string log;
  REQUIRE(runCardgen({"--out", dir + "/out", "--numbers", dir + "/numbers.tsv"}, dir + "/log",
                     &log) == 0);
  CHECK(slurp(dir + "/out/labels.tsv") ==
        "alice\t4556737586899855\nlost-and-worn\t\namex.1\t378282246310005\n");
  for (const char* name : {"alice", "lost-and-worn", "amex.1"}) {
    CHECK(fs::is_regular_file(fs::path(dir) / "out" / name / "front.jpg"));
    CHECK(fs::is_regular_file(fs::path(dir) / "out" / name / "back.jpg"));
  }
  CHECK(log.find("4556737586899855") == std::string::npos);
}

TEST_CASE("lostcard-cardgen refuses bad input without echoing numbers") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_errors");
  std::string log;
  SECTION("the hard preset is not there yet") {
    CHECK(runCardgen({"--out", dir + "/out", "--preset", "hard"}, dir + "/log", &log) == 2);
    CHECK(log.find("not yet available") != std::string::npos);
  }
  SECTION("a bad line in the numbers file") {
    std::ofstream(dir + "/numbers.tsv") << "ok\t4556737586899855\n../escape\t4111111111111111\n";
    CHECK(runCardgen({"--out", dir + "/out", "--numbers", dir + "/numbers.tsv"}, dir + "/log",
                     &log) == 1);
    CHECK(log.find("numbers.tsv:2: bad card name") != std::string::npos);
    CHECK(log.find("4111111111111111") == std::string::npos);
  }
  SECTION("a bad number") {
    std::ofstream(dir + "/numbers.tsv") << "x\t4111-1111-1111-1111\n";
    CHECK(runCardgen({"--out", dir + "/out", "--numbers", dir + "/numbers.tsv"}, dir + "/log",
                     &log) == 1);
    CHECK(log.find("numbers.tsv:1:") != std::string::npos);
    CHECK(log.find("4111-1111") == std::string::npos);
  }
  SECTION("no output folder") { CHECK(runCardgen({"--count", "1"}, dir + "/log", &log) == 2); }
}
