// Reading and checking a board file (see hw/boards/lostbox-v1.ini for the format).
#include <fmt/format.h>

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>

#include "lostcard/hw/board.hpp"

namespace lostcard::hw {

namespace {

namespace pt = boost::property_tree;

// Reads typed values out of the parsed INI tree, remembering which keys it read so anything
// left over (a typo) is reported rather than silently ignored.
class IniReader {
 public:
  IniReader(const pt::ptree& tree, std::string file) : tree_(tree), file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw BoardConfigError(fmt::format("{}: {}", file_, what));
  }

  std::optional<std::string> optionalText(const std::string& section, const std::string& key) {
    const auto sec = tree_.find(section);
    if (sec == tree_.not_found()) {
      return std::nullopt;
    }
    const auto value = sec->second.find(key);
    if (value == sec->second.not_found()) {
      return std::nullopt;
    }
    used_.insert({section, key});
    return value->second.data();
  }

  std::string text(const std::string& section, const std::string& key) {
    auto value = optionalText(section, key);
    if (!value) {
      fail(fmt::format("[{}] {} is missing", section, key));
    }
    if (value->empty()) {
      fail(fmt::format("[{}] {} is empty", section, key));
    }
    return *value;
  }

  int integer(const std::string& section, const std::string& key, int min, int max,
              std::optional<int> fallback = std::nullopt) {
    std::optional<std::string> value = optionalText(section, key);
    if (!value) {
      if (fallback) {
        return *fallback;
      }
      fail(fmt::format("[{}] {} is missing", section, key));
    }
    int out = 0;
    const char* begin = value->data();
    const char* end = begin + value->size();
    const auto [ptr, ec] = std::from_chars(begin, end, out);
    if (value->empty() || ec == std::errc::invalid_argument || ptr != end) {
      fail(fmt::format("[{}] {}: '{}' is not a whole number", section, key, *value));
    }
    if (ec == std::errc::result_out_of_range || out < min || out > max) {
      fail(fmt::format("[{}] {}: {} is out of range ({}..{})", section, key, *value, min, max));
    }
    return out;
  }

  bool flag(const std::string& section, const std::string& key, bool fallback) {
    std::optional<std::string> value = optionalText(section, key);
    if (!value) {
      return fallback;
    }
    std::string v;
    for (char c : *value) {
      v.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (v == "true" || v == "yes" || v == "1") {
      return true;
    }
    if (v == "false" || v == "no" || v == "0") {
      return false;
    }
    fail(fmt::format("[{}] {}: '{}' is not true or false", section, key, *value));
  }

  // A line name under `key`, and its optional `key_active_low` flag.
  GpioLineSpec line(const std::string& section, const std::string& key) {
    GpioLineSpec spec{text(section, key), flag(section, key + "_active_low", false)};
    checkLineName(section, key, spec.name, /*pattern=*/false);
    return spec;
  }

  // A per-slot line: the name holds "{}" for the two-digit slot index.
  std::vector<GpioLineSpec> slotLines(const std::string& section, const std::string& key,
                                      int count) {
    const std::string pattern = text(section, key);
    const bool active_low = flag(section, key + "_active_low", false);
    checkLineName(section, key, pattern, /*pattern=*/true);
    std::vector<GpioLineSpec> lines;
    const std::size_t at = pattern.find("{}");
    for (int i = 0; i < count; ++i) {
      std::string name = pattern;
      name.replace(at, 2, fmt::format("{:02}", i));
      lines.push_back({name, active_low});
    }
    return lines;
  }

  void checkLineName(const std::string& section, const std::string& key, const std::string& name,
                     bool pattern) const {
    for (char c : name) {
      if (std::isspace(static_cast<unsigned char>(c)) || c == '#' || c == ';') {
        fail(fmt::format("[{}] {}: '{}' is not a line name (comments go on their own line)",
                         section, key, name));
      }
    }
    const std::size_t first = name.find("{}");
    if (pattern &&
        (first == std::string::npos || name.find("{}", first + 1) != std::string::npos)) {
      fail(fmt::format("[{}] {}: '{}' needs exactly one {{}} for the slot index", section, key,
                       name));
    }
    if (!pattern && (first != std::string::npos)) {
      fail(fmt::format("[{}] {}: '{}': {{}} is only for per-slot lines", section, key, name));
    }
  }

  void rejectUnknownKeys() const {
    for (const auto& [section, keys] : tree_) {
      if (keys.empty()) {
        fail(fmt::format("'{}' is outside any [section]", section));
      }
      for (const auto& [key, value] : keys) {
        if (used_.count({section, key}) == 0) {
          fail(fmt::format("[{}] {}: unknown key", section, key));
        }
      }
    }
  }

 private:
  const pt::ptree& tree_;
  std::string file_;
  std::set<std::pair<std::string, std::string>> used_;
};

BoardConfig parse(const pt::ptree& tree, const std::string& file) {
  IniReader ini(tree, file);
  constexpr int kMaxInt = std::numeric_limits<int>::max();
  BoardConfig c;

  c.name = ini.text("board", "name");
  c.gpiochip = ini.text("board", "gpiochip");
  if (auto consumer = ini.optionalText("board", "consumer"); consumer && !consumer->empty()) {
    c.consumer = *consumer;
  }

  c.card_sensor = ini.line("intake", "card_sensor");
  c.shutter = ini.line("intake", "shutter");

  SorterConfig& s = c.sorter;
  s.step = ini.line("sorter", "step");
  s.dir = ini.line("sorter", "dir");
  s.enable = ini.line("sorter", "enable");
  s.home_switch = ini.line("sorter", "home_switch");
  s.push = ini.line("sorter", "push");
  s.push_ms = ini.integer("sorter", "push_ms", 1, 10'000);
  s.step_delay_us = ini.integer("sorter", "step_delay_us", 1, 1'000'000);
  s.first_slot_steps = ini.integer("sorter", "first_slot_steps", 0, kMaxInt);
  s.steps_per_slot = ini.integer("sorter", "steps_per_slot", 1, kMaxInt);
  s.bin_steps = ini.integer("sorter", "bin_steps", 0, kMaxInt);
  s.max_home_steps = ini.integer("sorter", "max_home_steps", 1, kMaxInt);
  s.confirm_timeout_ms = ini.integer("sorter", "confirm_timeout_ms", 0, 60'000, 500);

  const int slots = ini.integer("slots", "count", 1, 999);
  c.slot_sensors = ini.slotLines("slots", "sensor", slots);
  c.slot_locks = ini.slotLines("slots", "lock", slots);
  c.bin_lock = ini.line("bin", "lock");
  if (ini.optionalText("bin", "door_switch")) {
    c.bin_door = ini.line("bin", "door_switch");
  }
  c.keypad_device = ini.optionalText("keypad", "device").value_or("");

  CameraConfig& cam = c.cameras;
  cam.front_device = ini.text("cameras", "front_device");
  cam.back_device = ini.text("cameras", "back_device");
  cam.width_px = ini.integer("cameras", "width_px", 1, 16'384);
  cam.height_px = ini.integer("cameras", "height_px", 1, 16'384);
  cam.jpeg_quality = ini.integer("cameras", "jpeg_quality", 1, 100, 92);
  cam.warmup_frames = ini.integer("cameras", "warmup_frames", 0, 100, 5);

  ini.rejectUnknownKeys();

  // Checks across keys.
  const long long last_slot = static_cast<long long>(s.first_slot_steps) +
                              static_cast<long long>(slots - 1) * s.steps_per_slot;
  if (last_slot > kMaxInt) {
    ini.fail("[sorter] the last slot's position does not fit in an int");
  }
  if (s.bin_steps >= s.first_slot_steps && s.bin_steps <= last_slot &&
      (s.bin_steps - s.first_slot_steps) % s.steps_per_slot == 0) {
    ini.fail(fmt::format("[sorter] bin_steps {} is the position of slot {}", s.bin_steps,
                         (s.bin_steps - s.first_slot_steps) / s.steps_per_slot));
  }
  const long long furthest = std::max<long long>(last_slot, s.bin_steps);
  if (s.max_home_steps < furthest) {
    ini.fail(
        fmt::format("[sorter] max_home_steps {} is shorter than the carriage travel ({} steps)",
                    s.max_home_steps, furthest));
  }

  // A line can do only one thing.
  std::map<std::string, std::string> owner;
  auto claim = [&](const GpioLineSpec& line, const std::string& what) {
    auto [it, inserted] = owner.emplace(line.name, what);
    if (!inserted) {
      ini.fail(fmt::format("line '{}' is used twice: {} and {}", line.name, it->second, what));
    }
  };
  claim(c.card_sensor, "[intake] card_sensor");
  claim(c.shutter, "[intake] shutter");
  claim(s.step, "[sorter] step");
  claim(s.dir, "[sorter] dir");
  claim(s.enable, "[sorter] enable");
  claim(s.home_switch, "[sorter] home_switch");
  claim(s.push, "[sorter] push");
  for (int i = 0; i < slots; ++i) {
    claim(c.slot_sensors[i], fmt::format("[slots] sensor of slot {}", i));
    claim(c.slot_locks[i], fmt::format("[slots] lock of slot {}", i));
  }
  claim(c.bin_lock, "[bin] lock");
  if (!c.bin_door.name.empty()) {
    claim(c.bin_door, "[bin] door_switch");
  }
  return c;
}

}  // namespace

BoardConfig BoardConfig::load(const std::filesystem::path& ini) {
  const std::string file = ini.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(ini, ec)) {
    throw BoardConfigError(fmt::format("{}: no such board file", file));
  }
  pt::ptree tree;
  try {
    pt::ini_parser::read_ini(file, tree);
  } catch (const pt::ini_parser_error& e) {
    throw BoardConfigError(fmt::format("{}: line {}: {}", file, e.line(), e.message()));
  }
  return parse(tree, file);
}

Result<BoardConfig> BoardConfig::tryLoad(const std::filesystem::path& ini) {
  try {
    return load(ini);
  } catch (const BoardConfigError& e) {
    return Result<BoardConfig>::failure(e.what());
  }
}

}  // namespace lostcard::hw
