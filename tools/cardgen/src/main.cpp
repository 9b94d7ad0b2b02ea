// lostcard-cardgen: writes labeled synthetic photos of lost cards for tests, demos and
// benchmarks of the recognition.
//
//   lostcard-cardgen --out DIR [--seed S] [--count N] [--preset easy|hard] [--stroke-fonts]
//                    [--numbers FILE]
//
// DIR/<name>/front.jpg and back.jpg per card (what the box's front and back cameras see), and
// DIR/labels.tsv with "<name>\t<number>" lines (the number empty for a card generated
// unreadable). --numbers FILE takes the same format ("-" or no number asks for an unreadable
// card). DIR/details.tsv says how each card was drawn (number style, font, grouping, which face
// is up, orientation, JPEG quality) so benchmarks can break their figures down; it never holds
// the number. Card numbers go only into labels.tsv, never to the terminal.
//
// --preset easy: clear flat print on the front (the demo's and the first tests' cards; its
// pixels do not change). --preset hard: embossing, many fonts and groupings, busy faces, the
// number on the back only, any orientation, either face up, blur, noise, glare, compression.
// --stroke-fonts (hard preset): numbers also in the embossers' digits (Farrington 7B's shapes)
// and a squared print face, drawn from strokes (stroke_font.hpp); without it the hard preset
// draws the cards its benchmark sets were made with.
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
using lostcard::cardgen::Preset;

namespace {

// Reads "<name>\t<number>" lines; throws std::runtime_error naming the bad line (never its
// number).
std::vector<CardSpec> readNumbersFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read " + path);
  }
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]*");
  // "-" or nothing: an unreadable card (so a labels.tsv is a numbers file too).
  static const std::regex kNumber("[0-9]{12,19}|-|");
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
          fmt::format("{}:{}: the number must be 12-19 digits, '-' or nothing", path, line_no));
    }
    cards.push_back(CardSpec{name, number == "-" ? "" : number});
  }
  return cards;
}

void writeJpeg(const fs::path& path, const cv::Mat& image, int quality) {
  if (!cv::imwrite(path.string(), image, {cv::IMWRITE_JPEG_QUALITY, quality})) {
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
  bool stroke_fonts = false;
  po::options_description options("lostcard-cardgen: synthetic photos of lost cards");
  options.add_options()("help,h", "show this help")("out", po::value(&out_dir)->required(),
                                                    "output folder (created if missing)")(
      "seed", po::value(&seed)->default_value(1), "random seed; same seed, same pictures")(
      "count", po::value(&count)->default_value(10), "number of random cards (card-0001...)")(
      "preset", po::value(&preset)->default_value("easy"), "easy | hard")(
      "stroke-fonts", po::bool_switch(&stroke_fonts),
      "hard preset: numbers also in the embossers' digits and a squared print face")(
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
    lostcard::cardgen::keepFreedMemory();
    if (preset != "easy" && preset != "hard") {
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

    const bool hard = preset == "hard";
    std::vector<CardSpec> cards;
    if (!numbers_file.empty()) {
      cards = readNumbersFile(numbers_file);
    } else {
      lostcard::cardgen::Rng rng(seed);
      for (int i = 1; i <= count; ++i) {
        cards.push_back(CardSpec{fmt::format("card-{:04d}", i),
                                 hard ? lostcard::cardgen::randomHardCardNumber(rng)
                                      : lostcard::cardgen::randomCardNumber(rng)});
      }
    }

    lostcard::cardgen::RendererOptions render_options;
    render_options.preset = hard ? Preset::kHard : Preset::kEasy;
    render_options.stroke_fonts = stroke_fonts;
    lostcard::cardgen::CardRenderer renderer(render_options);
    fs::create_directories(out_dir);
    std::ofstream labels(fs::path(out_dir) / "labels.tsv", std::ios::trunc);
    std::ofstream details(fs::path(out_dir) / "details.tsv", std::ios::trunc);
    if (!labels || !details) {
      throw std::runtime_error("cannot write " + (fs::path(out_dir) / "labels.tsv").string());
    }
    details << "# name\tstyle\tfont\tgrouping\tnumber_on\tface_up\tfront_quarter_turns"
               "\tjpeg_quality\n";
    for (const auto& card : cards) {
      const auto photos = renderer.render(card, lostcard::cardgen::cardSeed(seed, card.name));
      const fs::path dir = fs::path(out_dir) / card.name;
      fs::create_directories(dir);
      writeJpeg(dir / "front.jpg", photos.front, photos.jpeg_quality);
      writeJpeg(dir / "back.jpg", photos.back, photos.jpeg_quality);
      labels << card.name << '\t' << card.number << '\n';
      const auto& t = photos.traits;
      details << card.name << '\t' << t.number_style << '\t' << (t.font.empty() ? "-" : t.font)
              << '\t' << (t.grouping.empty() ? "-" : t.grouping) << '\t'
              << (t.number_style == "none" ? "-"
                  : t.number_on_back       ? "back"
                                           : "front")
              << '\t' << (t.back_up ? "back" : "front") << '\t' << t.front_quarter_turns << '\t'
              << photos.jpeg_quality << '\n';
    }
    labels.close();
    details.close();
    if (!labels || !details) {
      throw std::runtime_error("cannot write labels.tsv or details.tsv");
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
