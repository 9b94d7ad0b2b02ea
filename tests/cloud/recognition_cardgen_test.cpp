// The lostcard-cardgen program: its files, its labels, its determinism, and that it never
// prints a card number; for the easy preset and the hard one.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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

// details.tsv: name -> {style, font, grouping, number_on, face_up, front_quarter_turns,
// jpeg_quality}.
std::map<std::string, std::vector<std::string>> readDetails(const fs::path& path) {
  std::map<std::string, std::vector<std::string>> details;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<std::string> cols;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '\t')) {
      cols.push_back(field);
    }
    REQUIRE(cols.size() == 8);
    details[cols[0]] = std::vector<std::string>(cols.begin() + 1, cols.end());
  }
  return details;
}

// "4-6-5" -> {4, 6, 5}.
std::vector<int> groupSizes(const std::string& grouping) {
  std::vector<int> sizes;
  std::istringstream in(grouping);
  std::string part;
  while (std::getline(in, part, '-')) {
    sizes.push_back(std::stoi(part));
  }
  return sizes;
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
  SECTION("an unknown preset") {
    CHECK(runCardgen({"--out", dir + "/out", "--preset", "brutal"}, dir + "/log", &log) == 2);
    CHECK(log.find("unknown preset") != std::string::npos);
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

TEST_CASE("lostcard-cardgen --preset hard draws the hard cases, labeled") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_hard");
  std::string log;
  constexpr int kCards = 20;
  REQUIRE(runCardgen({"--out", dir + "/out", "--preset", "hard", "--seed", "7", "--count",
                      std::to_string(kCards)},
                     dir + "/log", &log) == 0);
  const auto labels = readLabels(dir + "/out/labels.tsv");
  const auto details = readDetails(dir + "/out/details.tsv");
  REQUIRE(labels.size() == kCards);
  REQUIRE(details.size() == kCards);
  std::set<std::size_t> lengths;
  std::set<std::string> styles;
  std::set<std::string> groupings;
  std::set<std::string> fonts;
  std::set<std::string> number_faces;
  std::set<std::string> faces_up;
  std::set<std::string> turns;
  for (const auto& [name, number] : labels) {
    INFO(name);
    REQUIRE(details.count(name) == 1);
    const auto& d = details.at(name);
    lengths.insert(number.size());
    styles.insert(d[0]);
    fonts.insert(d[1]);
    groupings.insert(d[2]);
    number_faces.insert(d[3]);
    faces_up.insert(d[4]);
    turns.insert(d[5]);
    CHECK(lostcard::cloud::luhnValid(number));
    // The printed groups hold exactly the number's digits, in the layouts real cards use.
    const auto sizes = groupSizes(d[2]);
    int digits = 0;
    for (const int g : sizes) {
      digits += g;
    }
    CHECK(digits == static_cast<int>(number.size()));
    if (number.size() == 15) {
      CHECK(d[2] == "4-6-5");
    } else if (number.size() == 16) {
      CHECK(d[2] == "4-4-4-4");
    } else {
      CHECK(number.size() == 19);
      CHECK((d[2] == "6-13" || d[2] == "4-4-4-4-3"));
    }
    // Never on the terminal, whole or grouped as printed.
    CHECK(log.find(number) == std::string::npos);
    CHECK(log.find(number.substr(0, 4) + " " + number.substr(4, 4)) == std::string::npos);
    CHECK(log.find(number.substr(0, 6) + " ") == std::string::npos);
    for (const char* face : {"front.jpg", "back.jpg"}) {
      const auto info = lostcard::cloud::probeJpeg(slurp(fs::path(dir) / "out" / name / face));
      REQUIRE(info);
      CHECK(info->width_px == 1280);
      CHECK(info->height_px == 960);
    }
  }
  // The variation the issue asks for shows up in a run of this size (fixed seed).
  CHECK(lengths == std::set<std::size_t>{15, 16, 19});
  CHECK(styles ==
        std::set<std::string>{"flat", "embossed-plain", "embossed-silver", "embossed-gold"});
  CHECK(groupings == std::set<std::string>{"4-4-4-4", "4-6-5", "6-13", "4-4-4-4-3"});
  CHECK(fonts.count("OCRA") + fonts.count("OCRB") == 2);
  CHECK(fonts.size() >= 6);
  CHECK(number_faces == std::set<std::string>{"front", "back"});
  CHECK(faces_up == std::set<std::string>{"front", "back"});
  CHECK(turns == std::set<std::string>{"0", "1", "2", "3"});
}

TEST_CASE("lostcard-cardgen --preset hard is deterministic by seed") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_hard_seed");
  std::string log;
  for (const auto& [out, seed] :
       {std::pair{"a", "21"}, std::pair{"b", "21"}, std::pair{"c", "22"}}) {
    REQUIRE(
        runCardgen({"--out", dir + "/" + out, "--preset", "hard", "--seed", seed, "--count", "3"},
                   dir + "/log", &log) == 0);
  }
  CHECK(slurp(dir + "/a/labels.tsv") == slurp(dir + "/b/labels.tsv"));
  CHECK(slurp(dir + "/a/details.tsv") == slurp(dir + "/b/details.tsv"));
  for (const char* card : {"card-0001", "card-0002", "card-0003"}) {
    for (const char* face : {"front.jpg", "back.jpg"}) {
      INFO(card << "/" << face);
      CHECK(slurp(fs::path(dir) / "a" / card / face) == slurp(fs::path(dir) / "b" / card / face));
      CHECK(slurp(fs::path(dir) / "a" / card / face) != slurp(fs::path(dir) / "c" / card / face));
    }
  }
  CHECK(slurp(dir + "/a/labels.tsv") != slurp(dir + "/c/labels.tsv"));
}

TEST_CASE(
    "lostcard-cardgen --stroke-fonts adds the embossers' digits, leaving the rest as it was") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_stroke_fonts");
  std::string log;
  constexpr int kCards = 24;
  for (const char* out : {"plain", "stroke"}) {
    std::vector<std::string> args = {
        "--out",   dir + "/" + out,       "--preset", "hard", "--seed", "5",
        "--count", std::to_string(kCards)};
    if (std::string(out) == "stroke") {
      args.push_back("--stroke-fonts");
    }
    REQUIRE(runCardgen(args, dir + "/log", &log) == 0);
  }
  // The same numbers, drawn the same way but for the font.
  CHECK(slurp(dir + "/plain/labels.tsv") == slurp(dir + "/stroke/labels.tsv"));
  const auto plain = readDetails(dir + "/plain/details.tsv");
  const auto stroke = readDetails(dir + "/stroke/details.tsv");
  REQUIRE(plain.size() == kCards);
  REQUIRE(stroke.size() == kCards);
  std::set<std::string> plain_fonts;
  std::map<std::string, std::set<std::string>> stroke_fonts_by_style;
  int same_font = 0;
  for (const auto& [name, d] : stroke) {
    INFO(name);
    CHECK(d[0] == plain.at(name)[0]);  // number style
    CHECK(d[2] == plain.at(name)[2]);  // grouping
    plain_fonts.insert(plain.at(name)[1]);
    stroke_fonts_by_style[d[0] == "flat" ? "flat" : "embossed"].insert(d[1]);
    if (d[1] == plain.at(name)[1]) {  // the same font drawn: the very same photos
      ++same_font;
      for (const char* face : {"front.jpg", "back.jpg"}) {
        CHECK(slurp(fs::path(dir) / "plain" / name / face) ==
              slurp(fs::path(dir) / "stroke" / name / face));
      }
    }
  }
  CHECK(same_font >= 3);  // 5 of the 24 with this seed
  for (const char* font : {"Farrington", "Farrington-Footed", "Square"}) {
    CHECK(plain_fonts.count(font) == 0);
  }
  CHECK(stroke_fonts_by_style["embossed"].count("Farrington") == 1);
  CHECK(stroke_fonts_by_style["flat"].count("Square") == 1);
  CHECK(stroke_fonts_by_style["embossed"].count("Square") == 0);
}

TEST_CASE("lostcard-cardgen --preset hard renders a numbers file, blank cards included") {
  const std::string dir = lostcard::test::makeTestDir("cardgen_hard_numbers");
  {
    std::ofstream numbers(dir + "/numbers.tsv");
    numbers << "amex\t378282246310005\n"
            << "unionpay\t6212345678901234569\n"
            << "blank\t-\n"
            << "blank2\t\n";
  }
  std::string log;
  REQUIRE(runCardgen({"--out", dir + "/out", "--preset", "hard", "--numbers", dir + "/numbers.tsv"},
                     dir + "/log", &log) == 0);
  CHECK(slurp(dir + "/out/labels.tsv") ==
        "amex\t378282246310005\nunionpay\t6212345678901234569\nblank\t\nblank2\t\n");
  const auto details = readDetails(dir + "/out/details.tsv");
  CHECK(details.at("amex")[2] == "4-6-5");
  CHECK(details.at("blank")[0] == "none");
  CHECK(details.at("blank2")[0] == "none");
  CHECK(log.find("378282246310005") == std::string::npos);
  CHECK(log.find("6212345678901234569") == std::string::npos);
  // labels.tsv is a numbers file too: rendering it again gives the same pictures.
  REQUIRE(runCardgen(
              {"--out", dir + "/again", "--preset", "hard", "--numbers", dir + "/out/labels.tsv"},
              dir + "/log", &log) == 0);
  for (const char* card : {"amex", "unionpay", "blank", "blank2"}) {
    INFO(card);
    CHECK(slurp(fs::path(dir) / "out" / card / "front.jpg") ==
          slurp(fs::path(dir) / "again" / card / "front.jpg"));
  }
}
