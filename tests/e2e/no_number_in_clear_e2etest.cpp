// Card numbers never in clear: runs the whole demo (`tools/demo.py --keep DIR`: a private
// PostgreSQL, lostcard-cloud, two kiosks on simulated hardware, the holders' phones), then
// searches the raw bytes of every file the run left in DIR (database files, WAL, logs, journals,
// simulated boxes, keys) for every card number it used: the ones the finder dropped
// (DIR/dropped.tsv, the only file allowed to hold them; the worn card's too, which the operator
// types to resolve it) and every one the issuers enrolled (through the API or lostcard-admin). A
// number counts as found as contiguous digits, or with spaces or dashes between its digits (any
// grouping, so the card's own too), in ASCII/UTF-8 and in UTF-16LE. A failure names the file and
// the offset.
//
// Photos: no file outside the simulated boxes (where the cards themselves lie) may hold a JPEG
// or PNG in clear; the photos the cloud kept of difficult cards must be there, sealed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace test = lostcard::test;

namespace {

struct Finding {
  std::string what;  // which number (last four only) or which image signature, and how
  std::uintmax_t offset = 0;
};

bool isSeparator(unsigned char c) { return c == ' ' || c == '-'; }
bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }

// Every place in `bytes` where one of `numbers` is written with at most spaces and dashes
// between its digits, as one-byte characters (stride 1) or UTF-16LE (stride 2: each character
// followed by a zero byte, searched at both alignments).
std::vector<Finding> findNumbers(const std::string& bytes, const std::set<std::string>& numbers) {
  std::vector<Finding> found;
  std::size_t shortest = 99;
  for (const auto& n : numbers) {
    shortest = std::min(shortest, n.size());
  }
  const auto scan = [&](std::size_t start, std::size_t stride, const char* encoding) {
    std::string digits;
    std::vector<std::size_t> at;  // offset of each digit in `bytes`
    const auto endRun = [&] {
      if (digits.size() >= shortest) {
        for (const auto& n : numbers) {
          for (auto pos = digits.find(n); pos != std::string::npos; pos = digits.find(n, pos + 1)) {
            found.push_back({"number ending " + n.substr(n.size() - 4) + " (" + encoding + ")",
                             at[pos]});
          }
        }
      }
      digits.clear();
      at.clear();
    };
    for (std::size_t i = start; i + stride <= bytes.size(); i += stride) {
      const auto c = static_cast<unsigned char>(bytes[i]);
      const bool wide_ok = stride == 1 || bytes[i + 1] == '\0';
      if (wide_ok && isDigit(c)) {
        digits.push_back(static_cast<char>(c));
        at.push_back(i);
      } else if (!(wide_ok && isSeparator(c) && !digits.empty())) {
        endRun();
      }
    }
    endRun();
  };
  scan(0, 1, "ASCII");
  scan(0, 2, "UTF-16LE");
  scan(1, 2, "UTF-16LE");
  return found;
}

// JPEG (JFIF or Exif) and PNG signatures: long enough not to occur by chance in ciphertext.
std::vector<Finding> findImages(const std::string& bytes) {
  static const std::vector<std::pair<std::string, std::string>> kSignatures = {
      {"JPEG/JFIF", std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00", 11)},
      {"PNG", std::string("\x89PNG\r\n\x1a\n", 8)},
  };
  std::vector<Finding> found;
  for (const auto& [name, signature] : kSignatures) {
    for (auto pos = bytes.find(signature); pos != std::string::npos;
         pos = bytes.find(signature, pos + 1)) {
      found.push_back({name + " image in clear", pos});
    }
  }
  // Exif JPEG: FF D8 FF E1, a length, "Exif\0\0".
  for (auto pos = bytes.find("Exif\0\0", 0, 6); pos != std::string::npos;
       pos = bytes.find("Exif\0\0", pos + 1, 6)) {
    if (pos >= 6 && bytes.compare(pos - 6, 4, "\xff\xd8\xff\xe1", 4) == 0) {
      found.push_back({"JPEG/Exif image in clear", pos - 6});
    }
  }
  return found;
}

// "1234567890123456" -> "1234 5678 9012 3456" style, for the scanner's own check.
std::string grouped(const std::string& digits, char separator) {
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && i % 4 == 0) {
      out.push_back(separator);
    }
    out.push_back(digits[i]);
  }
  return out;
}

std::string utf16le(const std::string& ascii) {
  std::string out;
  for (char c : ascii) {
    out.push_back(c);
    out.push_back('\0');
  }
  return out;
}

std::set<std::string> numbersInColumn(const fs::path& tsv, std::size_t column) {
  std::set<std::string> numbers;
  for (const auto& line : test::readLines(tsv)) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (auto tab = line.find('\t');; tab = line.find('\t', start)) {
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) {
        break;
      }
      start = tab + 1;
    }
    REQUIRE(fields.size() > column);
    if (fields[column] != "-") {
      numbers.insert(fields[column]);
    }
  }
  return numbers;
}

// A file in a simulated box (a card lying in a slot, the bin or the tray) or in the finder's
// hand: the cards themselves, photographed as they are.
bool isPhysicalCard(const fs::path& relative) {
  const auto parts = std::vector<fs::path>(relative.begin(), relative.end());
  return (parts.size() >= 3 && parts[1] == "box") || (!parts.empty() && parts[0] == "finder");
}

}  // namespace

TEST_CASE("the scanner finds numbers however they are written") {
  const std::set<std::string> numbers = {"4111111111111111", "371449635398431"};
  CHECK(findNumbers("x4111111111111111y", numbers).size() == 1);
  CHECK(findNumbers("card " + grouped("4111111111111111", ' ') + ".", numbers).size() == 1);
  CHECK(findNumbers("3714-496353-98431", numbers).size() == 1);
  CHECK(findNumbers("\x01" + utf16le("4111 1111 1111 1111"), numbers).size() == 1);
  CHECK(findNumbers(utf16le("371449635398431"), numbers).size() == 1);
  const auto at = findNumbers("abc4111111111111111", numbers);
  REQUIRE(at.size() == 1);
  CHECK(at[0].offset == 3);
  CHECK(at[0].what == "number ending 1111 (ASCII)");
  CHECK(findNumbers("411111111111111", numbers).empty());  // one digit short
  CHECK(findNumbers("4111111111111112", numbers).empty());
  CHECK(findNumbers("4111 1111\n1111 1111", numbers).empty());
  CHECK(findImages(std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00", 11)).size() == 1);
  CHECK(findImages("random bytes").empty());
}

TEST_CASE("tools/demo --keep leaves no card number and no photo in clear") {
  const fs::path dir = test::makeTestDir("no_number_in_clear_e2etest");
  const fs::path keep = dir / "run";
  const fs::path issuer_list = dir / "issuer-list.tsv";
  const fs::path demo_out = dir / "demo.out";
  {
    test::ChildProcess demo({"/usr/bin/env", "python3", test::sourceDir() + "/tools/demo.py",
                             "--keep", keep.string(), "--issuer-list", issuer_list.string()},
                            demo_out.string());
    const auto status = demo.waitFor(900s);
    INFO(test::readFile(demo_out));
    REQUIRE(status.has_value());
    REQUIRE(WIFEXITED(*status));
    REQUIRE(WEXITSTATUS(*status) == 0);
  }
  {
    const std::string output = test::readFile(demo_out);
    INFO(output);
    CHECK(output.find("demo: dropped=7 notified=5 difficult=3 picked_up=1 lost=0") !=
          std::string::npos);
    // The three difficult cards kept their photos, sealed (so the search below covers them).
    std::smatch kept;
    REQUIRE(std::regex_search(output, kept,
                              std::regex(R"(demo: (\d+) photos of difficult cards kept, sealed)")));
    CHECK(std::stoi(kept[1]) >= 3);
  }

  // The finder's list: a deposit id and a number (or "-" for the card with none) per card.
  const fs::path dropped_file = keep / "dropped.tsv";
  const auto dropped_lines = test::readLines(dropped_file);
  REQUIRE(dropped_lines.size() == 7);
  for (const auto& line : dropped_lines) {
    CHECK(std::regex_match(line, std::regex(R"([0-9a-f-]{36}\t([0-9]{13,19}|-))")));
  }
  const auto dropped = numbersInColumn(dropped_file, 1);
  const auto enrolled = numbersInColumn(issuer_list, 1);
  CHECK(dropped.size() == 6);
  CHECK(enrolled.size() >= 24);
  std::set<std::string> numbers = dropped;
  numbers.insert(enrolled.begin(), enrolled.end());

  // The scanner sees numbers in the one file allowed to hold them.
  CHECK(findNumbers(test::readFile(dropped_file), dropped).size() == dropped.size());

  std::map<std::string, std::vector<Finding>> leaks;
  std::size_t files = 0;
  std::uintmax_t bytes = 0;
  bool saw_pg_data = false, saw_journal = false, saw_cloud_log = false;
  for (auto it = fs::recursive_directory_iterator(
           keep, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || it->path() == dropped_file) {
      continue;
    }
    const fs::path relative = fs::relative(it->path(), keep);
    const std::string content = test::readFile(it->path());
    ++files;
    bytes += content.size();
    saw_pg_data = saw_pg_data || it->path().filename() == "PG_VERSION";
    saw_journal = saw_journal || it->path().filename() == "journal.sqlite";
    saw_cloud_log = saw_cloud_log || relative == "cloud.log";
    auto found = findNumbers(content, numbers);
    if (!isPhysicalCard(relative)) {
      const auto images = findImages(content);
      found.insert(found.end(), images.begin(), images.end());
    }
    if (!found.empty()) {
      leaks[relative.string()] = std::move(found);
    }
  }
  // The run's files are there to be searched: the database, the journals, the logs.
  CHECK(saw_pg_data);
  CHECK(saw_journal);
  CHECK(saw_cloud_log);
  CHECK(files > 100);
  CHECK(bytes > 10 * 1024 * 1024);
  for (const auto& [file, found] : leaks) {
    for (const auto& f : found) {
      UNSCOPED_INFO(file << " at offset " << f.offset << ": " << f.what);
    }
  }
  CHECK(leaks.empty());
}
