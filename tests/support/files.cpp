#include "lostcard/test/files.hpp"

#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace lostcard::test {

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> nonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

std::vector<std::string> readLines(const fs::path& path) { return nonEmptyLines(readFile(path)); }

std::size_t countOf(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

void dropCard(const fs::path& card, const fs::path& sim_root) {
  const fs::path staging = sim_root.parent_path() / ("staging-" + card.filename().string());
  fs::copy(card, staging, fs::copy_options::recursive);
  fs::create_directories(sim_root / "intake");
  fs::rename(staging, sim_root / "intake" / card.filename());
}

bool inSomeSlot(const fs::path& sim_root, const std::string& card) {
  if (!fs::exists(sim_root / "slots")) {
    return false;
  }
  for (const auto& slot : fs::directory_iterator(sim_root / "slots")) {
    if (fs::exists(slot.path() / card)) {
      return true;
    }
  }
  return false;
}

}  // namespace lostcard::test
