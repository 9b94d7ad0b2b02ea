#pragma once
// Small file and simulator helpers shared by the tests that run real programs: read what a
// program wrote, count lines or phrases in a log, drop a card into a simulated box.
//
//   test::dropCard(cards / "card-marie", dir / "sim-east");
//   REQUIRE(test::eventually([&] { return test::inSomeSlot(dir / "sim-east", "card-marie"); }));
//   CHECK(test::countOf(test::readFile(dir / "cloud.log"), "drained") == 1);
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace lostcard::test {

// The whole file ("" when it does not exist yet).
std::string readFile(const std::filesystem::path& path);

// The non-empty lines of `text`, and of a file.
std::vector<std::string> nonEmptyLines(const std::string& text);
std::vector<std::string> readLines(const std::filesystem::path& path);

// How many times `what` occurs in `text` (overlapping occurrences count).
std::size_t countOf(const std::string& text, const std::string& what);

// Moves a card folder (front.jpg, back.jpg) into a simulated box's intake in one rename, as a
// finder's hand drops it, so the box never sees half a card.
void dropCard(const std::filesystem::path& card, const std::filesystem::path& sim_root);

// Whether the simulated box holds the card in one of its slots.
bool inSomeSlot(const std::filesystem::path& sim_root, const std::string& card);

}  // namespace lostcard::test
