// lostcard-cardgen: writes labeled synthetic photos of lost cards for tests, demos and
// benchmarks of the recognition.
//
//   lostcard-cardgen --out DIR [--seed S] [--count N] [--preset easy|hard] [--numbers FILE]
//
// DIR/<name>/front.jpg and back.jpg per card, and DIR/labels.tsv with "<name>\t<number>" lines
// (the number empty for a card generated unreadable). --numbers FILE takes the same format
// ("-" as the number asks for an unreadable card). Card numbers go only into labels.tsv, never to
// the terminal.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <string>
#include <vector>

#include "lostcard/cardgen/card_renderer.hpp"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using lostcard::cardgen::CardSpec;

namespace {

constexpr int kJpegQuality = 90;

// Reads "<name>\t<number>" lines; throws std::runtime_error naming the bad line (never its
// number).
std::vector<CardSpec> readNumbersFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read " + path);
  }
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]*");
  static const std::regex kNumber("[0-9]{12,19}|-");
  std::vector<CardSpec> cards;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto tab = line.find('\t');
    const std::string name = line.substr(0, tab);
    const std::string number = tab == std::string::npos ? "" : line.substr(tab + 1);
    if (!std::regex_match(name, kName) || name == "labels.tsv") {
      throw std::runtime_error(fmt::format("{}:{}: bad card name", path, line_no));
    }
    if (!std::regex_match(number, kNumber)) {
      throw std::runtime_error(
          fmt::format("{}:{}: the number must be 12-19 digits or '-'", path, line_no));
    }
    cards.push_back(CardSpec{name, number == "-" ? "" : number});
  }
  return cards;
}

void writeJpeg(const fs::path& path, const cv::Mat& image) {
  if (!cv::imwrite(path.string(), image, {cv::IMWRITE_JPEG_QUALITY, kJpegQuality})) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir;
  std::uint64_t seed = 1;
  int count = 10;
  std::string preset;
  std::string numbers_file;
  po::options_description options("lostcard-cardgen: synthetic photos of lost cards");
  options.add_options()("help,h", "show this help")("out", po::value(&out_dir)->required(),
                                                    "output folder (created if missing)")(
      "seed", po::value(&seed)->default_value(1), "random seed; same seed, same pictures")(
      "count", po::value(&count)->default_value(10), "number of random cards (card-0001...)")(
      "preset", po::value(&preset)->default_value("easy"), "easy | hard")(
      "numbers", po::value(&numbers_file),
      "file of '<name>\\t<number>' lines to render instead of random cards ('-' = unreadable)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    if (vm.count("help") != 0) {
      std::cout << options << "\n";
      return 0;
    }
    po::notify(vm);
    if (preset == "hard") {
      std::cerr << "lostcard-cardgen: --preset hard is not yet available\n";
      return 2;
    }
    if (preset != "easy") {
      std::cerr << "lostcard-cardgen: unknown preset '" << preset << "' (easy | hard)\n";
      return 2;
    }
    if (!vm["count"].defaulted() && !numbers_file.empty()) {
      std::cerr << "lostcard-cardgen: give --count or --numbers, not both\n";
      return 2;
    }
    if (count < 0) {
      std::cerr << "lostcard-cardgen: --count must not be negative\n";
      return 2;
    }

    std::vector<CardSpec> cards;
    if (!numbers_file.empty()) {
      cards = readNumbersFile(numbers_file);
    } else {
      lostcard::cardgen::Rng rng(seed);
      for (int i = 1; i <= count; ++i) {
        cards.push_back(
            CardSpec{fmt::format("card-{:04d}", i), lostcard::cardgen::randomCardNumber(rng)});
      }
    }

    lostcard::cardgen::CardRenderer renderer;
    fs::create_directories(out_dir);
    std::ofstream labels(fs::path(out_dir) / "labels.tsv", std::ios::trunc);
    if (!labels) {
      throw std::runtime_error("cannot write " + (fs::path(out_dir) / "labels.tsv").string());
    }
    for (const auto& card : cards) {
      const auto photos = renderer.render(card, lostcard::cardgen::cardSeed(seed, card.name));
      const fs::path dir = fs::path(out_dir) / card.name;
      fs::create_directories(dir);
      writeJpeg(dir / "front.jpg", photos.front);
      writeJpeg(dir / "back.jpg", photos.back);
      labels << card.name << '\t' << card.number << '\n';
    }
    labels.close();
    if (!labels) {
      throw std::runtime_error("cannot write labels.tsv");
    }
    std::cout << "wrote " << cards.size() << " cards to " << out_dir << "\n";
    return 0;
  } catch (const po::error& e) {
    std::cerr << "lostcard-cardgen: " << e.what() << "\n" << options << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lostcard-cardgen: " << e.what() << "\n";
    return 1;
  }
}
