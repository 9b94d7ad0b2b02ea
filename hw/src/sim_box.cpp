#include "lostcard/hw/sim_box.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "lostcard/wire/log.hpp"

namespace lostcard::hw {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxFrames = 30;
constexpr int kJpegQuality = 90;
constexpr int kMaxNameSuffix = 1000;

struct FaultEntry {
  SimFault fault;
  std::string_view name;
};
constexpr std::array<FaultEntry, 7> kFaultNames = {{
    {SimFault::kCameraFailure, "camera-failure"},
    {SimFault::kSensorStuckOn, "sensor-stuck-on"},
    {SimFault::kSensorStuckOff, "sensor-stuck-off"},
    {SimFault::kSorterJam, "sorter-jam"},
    {SimFault::kSlotSensorFailure, "slot-sensor-failure"},
    {SimFault::kHoldMidMove, "hold-mid-move"},
    {SimFault::kSlotDoorStuck, "slot-door-stuck"},
}};

// Written by a sorter holding a card mid-move (not a switch: nobody turns it on).
constexpr const char* kHeldMarker = "held";
// How often a held sorter looks whether its switch is gone.
constexpr auto kHoldPoll = std::chrono::milliseconds(10);

// Card folder names come from the card generator; should one ever carry a card number, the log
// gets only its last four digits.
std::string logName(const std::string& name) {
  std::string out;
  std::size_t i = 0;
  while (i < name.size()) {
    if (name[i] >= '0' && name[i] <= '9') {
      std::size_t j = i;
      while (j < name.size() && name[j] >= '0' && name[j] <= '9') {
        ++j;
      }
      const std::string digits = name.substr(i, j - i);
      out += digits.size() >= 8 ? wire::maskedNumber(digits) : digits;
      i = j;
    } else {
      out.push_back(name[i]);
      ++i;
    }
  }
  return out;
}

std::string slotFolderName(int index) { return fmt::format("{:02}", index); }

std::string utcTimestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

// A unique temporary name among processes and threads.
std::string tempSuffix() {
  static std::atomic<unsigned long> counter{0};
  return fmt::format(".tmp-{}-{}", ::getpid(), counter.fetch_add(1));
}

bool readFile(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// Renames without replacing an existing entry. Returns 0 or an errno value.
int renameNoReplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return 0;
  }
  const int err = errno;
  if (err != EINVAL && err != ENOSYS) {
    return err;
  }
  // A filesystem without RENAME_NOREPLACE: check, then rename (a small window, acceptable for
  // the simulator).
  std::error_code ec;
  if (fs::exists(to, ec)) {
    return EEXIST;
  }
  return std::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

}  // namespace

std::string_view simFaultName(SimFault fault) {
  for (const auto& entry : kFaultNames) {
    if (entry.fault == fault) {
      return entry.name;
    }
  }
  throw std::logic_error("simFaultName: unknown SimFault");
}

std::optional<SimFault> simFaultFromName(std::string_view name) {
  for (const auto& entry : kFaultNames) {
    if (entry.name == name) {
      return entry.fault;
    }
  }
  return std::nullopt;
}

const std::vector<SimFault>& allSimFaults() {
  static const std::vector<SimFault> faults = [] {
    std::vector<SimFault> v;
    for (const auto& entry : kFaultNames) {
      v.push_back(entry.fault);
    }
    return v;
  }();
  return faults;
}

namespace {

// The folder tree and the operations every simulated device shares. Stateless beyond the
// paths: every call reads the filesystem afresh.
class Layout {
 public:
  explicit Layout(const SimBoxOptions& options)
      : root_(options.root),
        slot_count_(options.slot_count),
        bin_capacity_(options.bin_capacity),
        log_(wire::componentLogger("hw.sim")) {}

  fs::path intake() const { return root_ / "intake"; }
  fs::path slot(int index) const { return root_ / "slots" / slotFolderName(index); }
  fs::path bin() const { return root_ / "bin"; }
  fs::path jam() const { return root_ / "jam"; }
  fs::path transit() const { return root_ / "transit"; }
  fs::path collected() const { return root_ / "collected"; }
  fs::path faults() const { return root_ / "faults"; }
  fs::path state() const { return root_ / "state"; }
  fs::path staging() const { return root_ / ".staging"; }
  fs::path keypad() const { return root_ / "keypad"; }
  fs::path binDoorOpen() const { return state() / "bin-door-open"; }
  int slotCount() const { return slot_count_; }
  int binCapacity() const { return bin_capacity_; }
  spdlog::logger& log() const { return *log_; }

  void createFolders() const {
    for (const auto& dir :
         {intake(), bin(), jam(), transit(), collected(), faults(), state(), staging(), keypad()}) {
      fs::create_directories(dir);
    }
    for (int i = 0; i < slot_count_; ++i) {
      fs::create_directories(slot(i));
    }
  }

  bool faultOn(SimFault fault) const {
    std::error_code ec;
    return fs::exists(faults() / std::string(simFaultName(fault)), ec);
  }

  fs::path faultFile(SimFault fault) const { return faults() / std::string(simFaultName(fault)); }
  fs::path heldMarker() const { return faults() / kHeldMarker; }

  // hold-mid-move is on: whether this move is the one to hold. The switch file may hold a count
  // N > 1: then this move goes through and the file says N-1 (rewritten atomically).
  bool holdThisMove() const {
    std::string text;
    if (!readFile(faultFile(SimFault::kHoldMidMove), text)) {
      return false;  // switched off a moment ago
    }
    long count = 1;
    try {
      if (text.find_first_not_of(" \t\r\n") != std::string::npos) {
        count = std::stol(text);
      }
    } catch (const std::exception&) {
      log().warn("fault switch hold-mid-move: '{}' is not a count; holding this move", text);
    }
    if (count <= 1) {
      return true;
    }
    if (!writeFileAtomically(faultFile(SimFault::kHoldMidMove), fmt::format("{}\n", count - 1))) {
      log().warn("fault switch hold-mid-move: cannot count it down; holding this move");
      return true;
    }
    return false;
  }

  // Writes `target` with `text` via a hidden temporary file renamed over it.
  bool writeFileAtomically(const fs::path& target, const std::string& text) const {
    const fs::path temp = target.parent_path() / ("." + target.filename().string() + tempSuffix());
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      if (!out) {
        std::error_code ec;
        fs::remove(temp, ec);
        return false;
      }
    }
    std::error_code ec;
    fs::rename(temp, target, ec);
    if (ec) {
      fs::remove(temp, ec);
      return false;
    }
    return true;
  }

  // The cards (non-hidden folders) in `dir`, sorted by name. Entries that vanish while we look
  // (another process moving a card) are skipped.
  Result<std::vector<std::string>> listCards(const fs::path& dir) const {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      return Result<std::vector<std::string>>::failure(
          fmt::format("cannot read {}: {}", dir.string(), ec.message()));
    }
    std::vector<std::string> names;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) {
        return Result<std::vector<std::string>>::failure(
            fmt::format("cannot read {}: {}", dir.string(), ec.message()));
      }
      std::string name = it->path().filename().string();
      std::error_code type_ec;
      if (name.empty() || name.front() == '.' || !it->is_directory(type_ec) || type_ec) {
        continue;
      }
      names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::vector<std::string> cardsOrEmpty(const fs::path& dir) const {
    auto cards = listCards(dir);
    return cards ? std::move(*cards) : std::vector<std::string>{};
  }

  // Moves card folder `from_dir/name` into `to_dir` with one rename, under `new_name` (by
  // default its own name) or, if that is taken, "new_name~2", "new_name~3"... Returns the name
  // it now has.
  Result<std::string> moveCard(const fs::path& from_dir, const std::string& name,
                               const fs::path& to_dir, std::string new_name = {}) const {
    if (new_name.empty()) {
      new_name = name;
    }
    for (int n = 1; n <= kMaxNameSuffix; ++n) {
      const std::string target = n == 1 ? new_name : fmt::format("{}~{}", new_name, n);
      const int err = renameNoReplace(from_dir / name, to_dir / target);
      if (err == 0) {
        return target;
      }
      if (err == ENOENT) {
        return Result<std::string>::failure("the card is no longer there");
      }
      if (err != EEXIST && err != ENOTEMPTY) {
        return Result<std::string>::failure(
            fmt::format("cannot move the card: {}", std::strerror(err)));
      }
    }
    return Result<std::string>::failure("too many cards of the same name");
  }

  // Writes state/<file> atomically (write a temporary file, rename it over).
  Status writeState(const std::string& file, const std::string& text) const {
    const fs::path target = state() / file;
    const fs::path temp = state() / ("." + file + tempSuffix());
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      if (!out) {
        std::error_code ec;
        fs::remove(temp, ec);
        return Status::failure(fmt::format("cannot write {}", target.string()));
      }
    }
    std::error_code ec;
    fs::rename(temp, target, ec);
    if (ec) {
      fs::remove(temp, ec);
      return Status::failure(fmt::format("cannot write {}: {}", target.string(), ec.message()));
    }
    return Status::success();
  }

  std::optional<std::string> readState(const std::string& file) const {
    std::string text;
    if (!readFile(state() / file, text)) {
      return std::nullopt;
    }
    return text;
  }

 private:
  fs::path root_;
  int slot_count_;
  int bin_capacity_;
  std::shared_ptr<spdlog::logger> log_;
};

class SimCardSensor final : public CardSensor {
 public:
  explicit SimCardSensor(const Layout& layout) : layout_(layout) {}

  Result<bool> cardPresent() override {
    if (layout_.faultOn(SimFault::kSensorStuckOn)) {
      return true;
    }
    if (layout_.faultOn(SimFault::kSensorStuckOff)) {
      return false;
    }
    auto cards = layout_.listCards(layout_.intake());
    if (!cards) {
      return Result<bool>::failure("card sensor: " + cards.error());
    }
    return !cards->empty();
  }

 private:
  const Layout& layout_;
};

class SimCamera final : public Camera {
 public:
  SimCamera(const Layout& layout, int jitter_seed) : layout_(layout), jitter_seed_(jitter_seed) {}

  Result<std::vector<CapturedFrame>> capture(Face face, int frames) override {
    using R = Result<std::vector<CapturedFrame>>;
    if (frames < 1 || frames > kMaxFrames) {
      return R::failure(fmt::format("camera: frames must be 1..{}, not {}", kMaxFrames, frames));
    }
    if (layout_.faultOn(SimFault::kCameraFailure)) {
      return R::failure("camera: device failure (fault switch camera-failure)");
    }
    auto cards = layout_.listCards(layout_.intake());
    if (!cards) {
      return R::failure("camera: " + cards.error());
    }
    if (cards->empty()) {
      return R::failure("camera: no card on the tray");
    }
    const std::string& card = cards->front();
    const char* file = face == Face::kFront ? "front.jpg" : "back.jpg";
    std::string bytes;
    if (!readFile(layout_.intake() / card / file, bytes)) {
      return R::failure(fmt::format("camera: cannot read {} of card {}", file, logName(card)));
    }
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data());
    const cv::Mat image = cv::imdecode(raw, cv::IMREAD_COLOR);
    if (image.empty()) {
      return R::failure(
          fmt::format("camera: {} of card {} is not a readable image", file, logName(card)));
    }

    std::vector<CapturedFrame> out;
    std::vector<std::tuple<int, int, int>> used;
    std::seed_seq seq{jitter_seed_, face == Face::kFront ? 0 : 1};
    std::mt19937 rng(seq);
    std::uniform_int_distribution<int> shift_px(-2, 2);
    std::uniform_int_distribution<int> brightness(-8, 8);
    for (int i = 0; i < frames; ++i) {
      // A slight shift and brightness change, never the same twice in one capture, so frames are
      // like a real camera's: close but not byte-identical.
      std::tuple<int, int, int> jitter;
      do {
        jitter = {shift_px(rng), shift_px(rng), brightness(rng)};
      } while (std::find(used.begin(), used.end(), jitter) != used.end() ||
               jitter == std::tuple<int, int, int>{0, 0, 0});
      used.push_back(jitter);
      const auto [dx, dy, beta] = jitter;

      cv::Mat shifted;
      const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, dx, 0, 1, dy);
      cv::warpAffine(image, shifted, shift, image.size(), cv::INTER_NEAREST, cv::BORDER_REPLICATE);
      shifted.convertTo(shifted, -1, 1.0, beta);
      std::vector<uchar> jpeg;
      if (!cv::imencode(".jpg", shifted, jpeg, {cv::IMWRITE_JPEG_QUALITY, kJpegQuality})) {
        return R::failure("camera: cannot encode a frame");
      }
      out.push_back({std::string(jpeg.begin(), jpeg.end()), shifted.cols, shifted.rows});
    }
    layout_.log().debug("camera: {} frame(s) of the {} of card {}", frames,
                        face == Face::kFront ? "front" : "back", logName(card));
    return out;
  }

  std::string id() const override { return "sim-camera"; }

 private:
  const Layout& layout_;
  int jitter_seed_;
};

class SimSorter final : public Sorter {
 public:
  explicit SimSorter(const Layout& layout) : layout_(layout) {}

  Status moveTo(const Destination& to) override {
    const bool to_slot = to.kind == Destination::Kind::kSlot;
    if (to_slot && (to.slot < 0 || to.slot >= layout_.slotCount())) {
      return Status::failure(
          fmt::format("sorter: slot {} out of range ({} slots)", to.slot, layout_.slotCount()));
    }
    auto cards = layout_.listCards(layout_.intake());
    if (!cards) {
      return Status::failure("sorter: " + cards.error());
    }
    if (cards->empty()) {
      return Status::failure("sorter: no card on the tray");
    }
    const std::string card = cards->front();

    // Like the board's sorter, look at the destination before carrying the card there.
    if (to_slot) {
      auto occupied = slotOccupied(to.slot);
      if (!occupied) {
        return Status::failure(occupied.error());
      }
      if (*occupied) {
        return Status::failure(fmt::format("sorter: slot {} is occupied", to.slot));
      }
    } else {
      auto in_bin = layout_.listCards(layout_.bin());
      if (!in_bin) {
        return Status::failure("sorter: " + in_bin.error());
      }
      if (static_cast<int>(in_bin->size()) >= layout_.binCapacity()) {
        return Status::failure(
            fmt::format("sorter: the bin is full ({} cards)", layout_.binCapacity()));
      }
    }

    if (layout_.faultOn(SimFault::kSorterJam)) {
      auto moved = layout_.moveCard(layout_.intake(), card, layout_.jam());
      if (moved) {
        layout_.log().warn("sorter: jammed with card {}", logName(*moved));
      }
      return Status::failure("sorter jammed");
    }

    const fs::path dest_dir = to_slot ? layout_.slot(to.slot) : layout_.bin();
    fs::path from_dir = layout_.intake();
    std::string from_name = card;
    if (layout_.faultOn(SimFault::kHoldMidMove) && layout_.holdThisMove()) {
      auto in_transit = holdMidMove(card, to);
      if (!in_transit) {
        return Status::failure(in_transit.error());
      }
      from_dir = layout_.transit();
      from_name = *in_transit;
    }
    auto moved = layout_.moveCard(from_dir, from_name, dest_dir);
    if (!moved) {
      return Status::failure(fmt::format("sorter: {} ({})", moved.error(), logName(card)));
    }
    // The destination's sensor confirms the arrival.
    std::error_code ec;
    if (!fs::is_directory(dest_dir / *moved, ec)) {
      return Status::failure(fmt::format("sorter: card {} did not arrive", logName(*moved)));
    }
    layout_.log().info("sorter: card {} -> {}", logName(*moved),
                       to_slot ? fmt::format("slot {}", to.slot) : std::string("bin"));
    return Status::success();
  }

  Status home() override {
    // The carriage goes back to the tray with any card it was carrying (a move cut short). A
    // jammed card stays in ROOT/jam/ until an operator clears it.
    auto carried = layout_.listCards(layout_.transit());
    if (!carried) {
      return Status::failure("sorter: " + carried.error());
    }
    for (const auto& card : *carried) {
      auto back = layout_.moveCard(layout_.transit(), card, layout_.intake());
      if (!back) {
        return Status::failure(
            fmt::format("sorter: cannot bring card {} back: {}", logName(card), back.error()));
      }
      layout_.log().warn("sorter: homing brought card {} back to the tray", logName(*back));
    }
    std::error_code ec;
    fs::remove(layout_.heldMarker(), ec);  // left by a sorter killed while held
    layout_.log().info("sorter: homed");
    return Status::success();
  }

  Result<bool> slotOccupied(int index) override {
    if (index < 0 || index >= layout_.slotCount()) {
      return Result<bool>::failure(
          fmt::format("slot sensor: slot {} out of range ({} slots)", index, layout_.slotCount()));
    }
    if (layout_.faultOn(SimFault::kSlotSensorFailure)) {
      return Result<bool>::failure(
          fmt::format("slot sensor {}: no response (fault switch slot-sensor-failure)", index));
    }
    auto cards = layout_.listCards(layout_.slot(index));
    if (!cards) {
      return Result<bool>::failure(fmt::format("slot sensor {}: {}", index, cards.error()));
    }
    return !cards->empty();
  }

  int slotCount() const override { return layout_.slotCount(); }

 private:
  // The card leaves the tray and stops in ROOT/transit/; ROOT/faults/held says so, and the
  // sorter waits until the hold-mid-move switch is off. Returns the card's name in transit/.
  Result<std::string> holdMidMove(const std::string& card, const Destination& to) {
    auto moved = layout_.moveCard(layout_.intake(), card, layout_.transit());
    if (!moved) {
      return Result<std::string>::failure(
          fmt::format("sorter: {} ({})", moved.error(), logName(card)));
    }
    const std::string where =
        to.kind == Destination::Kind::kSlot ? fmt::format("slot:{}", to.slot) : "bin";
    if (!layout_.writeFileAtomically(
            layout_.heldMarker(),
            fmt::format("card={} to={} pid={}\n", logName(*moved), where, ::getpid()))) {
      layout_.log().error("sorter: cannot write {}", layout_.heldMarker().string());
    }
    layout_.log().warn("sorter: held mid-move with card {} on its way to {} (fault switch {})",
                       logName(*moved), where, simFaultName(SimFault::kHoldMidMove));
    while (layout_.faultOn(SimFault::kHoldMidMove)) {
      std::this_thread::sleep_for(kHoldPoll);
    }
    std::error_code ec;
    fs::remove(layout_.heldMarker(), ec);
    layout_.log().info("sorter: released, card {} goes on to {}", logName(*moved), where);
    return *moved;
  }

  const Layout& layout_;
};

class SimShutter final : public IntakeShutter {
 public:
  explicit SimShutter(const Layout& layout) : layout_(layout) {}

  Status open() override { return set("open"); }
  Status close() override { return set("closed"); }

 private:
  Status set(const std::string& state) {
    Status s = layout_.writeState("shutter", state);
    if (!s) {
      return Status::failure("shutter: " + s.error());
    }
    layout_.log().debug("shutter: {}", state);
    return Status::success();
  }

  const Layout& layout_;
};

class SimLocks final : public Locks {
 public:
  explicit SimLocks(const Layout& layout) : layout_(layout) {}

  Status unlockSlot(int index, std::chrono::milliseconds hold) override {
    if (index < 0 || index >= layout_.slotCount()) {
      return Status::failure(
          fmt::format("locks: slot {} out of range ({} slots)", index, layout_.slotCount()));
    }
    if (layout_.faultOn(SimFault::kSlotDoorStuck)) {
      return Status::failure(fmt::format(
          "locks: slot {} latch did not release (fault switch slot-door-stuck)", index));
    }
    return unlock("unlocked-slot-" + slotFolderName(index), fmt::format("slot {}", index), hold);
  }

  Status unlockBin(std::chrono::milliseconds hold) override {
    return unlock("unlocked-bin", "bin", hold);
  }

 private:
  Status unlock(const std::string& file, const std::string& door, std::chrono::milliseconds hold) {
    if (hold.count() < 0) {
      return Status::failure(fmt::format("locks: negative hold for the {} door", door));
    }
    Status s =
        layout_.writeState(file, fmt::format("{} hold_ms={}\n", utcTimestamp(), hold.count()));
    if (!s) {
      return Status::failure("locks: " + s.error());
    }
    layout_.log().info("locks: {} door unlocked for {} ms", door, hold.count());
    return Status::success();
  }

  const Layout& layout_;
};

// Entries are files in ROOT/keypad/, named so that name order is typing order; each is read
// once and removed. Their text is never logged: it holds codes.
class SimKeypad final : public Keypad {
 public:
  explicit SimKeypad(const Layout& layout) : layout_(layout) {}

  Result<std::vector<std::string>> entries() override {
    using R = Result<std::vector<std::string>>;
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(layout_.keypad(), ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name.front() != '.') {
        files.push_back(it->path());
      }
    }
    if (ec) {
      return R::failure("keypad: " + ec.message());
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (const auto& file : files) {
      std::string text;
      if (readFile(file, text)) {
        out.push_back(std::move(text));
      }
      fs::remove(file, ec);
    }
    return out;
  }

 private:
  const Layout& layout_;
};

class SimBinDoor final : public BinDoor {
 public:
  explicit SimBinDoor(const Layout& layout) : layout_(layout) {}

  Result<bool> closed() override {
    std::error_code ec;
    const bool open = fs::exists(layout_.binDoorOpen(), ec);
    if (ec) {
      return Result<bool>::failure("bin door switch: " + ec.message());
    }
    return !open;
  }

 private:
  const Layout& layout_;
};

class SimDisplay final : public Display {
 public:
  explicit SimDisplay(const Layout& layout) : layout_(layout) {}

  void show(const std::string& text) override {
    Status s = layout_.writeState("display", text);
    if (!s) {
      layout_.log().warn("display: {}", s.error());
    }
    layout_.log().info("display: \"{}\"", text);
  }

 private:
  const Layout& layout_;
};

}  // namespace

struct SimBox::Parts {
  explicit Parts(const SimBoxOptions& options)
      : layout(options),
        sensor(layout),
        camera(layout, options.frame_jitter_seed),
        sorter(layout),
        shutter(layout),
        locks(layout),
        display(layout),
        keypad(layout),
        bin_door(layout) {}

  Layout layout;
  SimCardSensor sensor;
  SimCamera camera;
  SimSorter sorter;
  SimShutter shutter;
  SimLocks locks;
  SimDisplay display;
  SimKeypad keypad;
  SimBinDoor bin_door;
};

SimBox::SimBox(SimBoxOptions options) : options_(std::move(options)) {
  if (options_.root.empty()) {
    throw std::invalid_argument("SimBox: root must be set");
  }
  if (options_.slot_count < 1 || options_.bin_capacity < 1) {
    throw std::invalid_argument("SimBox: slot_count and bin_capacity must be positive");
  }
  parts_ = std::make_unique<Parts>(options_);
  parts_->layout.createFolders();
}

SimBox::~SimBox() = default;

Devices SimBox::devices() {
  return Devices{&parts_->camera, &parts_->sensor,  &parts_->sorter, &parts_->shutter,
                 &parts_->locks,  &parts_->display, &parts_->keypad, &parts_->bin_door};
}

void SimBox::setFault(SimFault fault, bool on) {
  const fs::path file = parts_->layout.faults() / std::string(simFaultName(fault));
  if (on) {
    std::ofstream out(file, std::ios::app);
    if (!out) {
      throw std::runtime_error("SimBox: cannot create " + file.string());
    }
  } else {
    fs::remove(file);
  }
  parts_->layout.log().info("fault {} {}", simFaultName(fault), on ? "on" : "off");
}

bool SimBox::faultOn(SimFault fault) const { return parts_->layout.faultOn(fault); }

void SimBox::holdMidMove(int nth_move) {
  if (nth_move < 1) {
    throw std::invalid_argument("SimBox::holdMidMove: nth_move must be at least 1");
  }
  const fs::path file = parts_->layout.faultFile(SimFault::kHoldMidMove);
  if (!parts_->layout.writeFileAtomically(file, fmt::format("{}\n", nth_move))) {
    throw std::runtime_error("SimBox: cannot write " + file.string());
  }
  parts_->layout.log().info("fault {} on (move {} from now)", simFaultName(SimFault::kHoldMidMove),
                            nth_move);
}

bool SimBox::moveHeld() const {
  std::error_code ec;
  return fs::exists(parts_->layout.heldMarker(), ec);
}

std::vector<std::string> SimBox::cardsInIntake() const {
  return parts_->layout.cardsOrEmpty(parts_->layout.intake());
}

std::optional<std::string> SimBox::cardInSlot(int index) const {
  if (index < 0 || index >= options_.slot_count) {
    return std::nullopt;
  }
  auto cards = parts_->layout.cardsOrEmpty(parts_->layout.slot(index));
  if (cards.empty()) {
    return std::nullopt;
  }
  return cards.front();
}

std::vector<std::string> SimBox::cardsInBin() const {
  return parts_->layout.cardsOrEmpty(parts_->layout.bin());
}

std::vector<std::string> SimBox::cardsJammed() const {
  return parts_->layout.cardsOrEmpty(parts_->layout.jam());
}

std::vector<std::string> SimBox::cardsInTransit() const {
  return parts_->layout.cardsOrEmpty(parts_->layout.transit());
}

std::vector<std::string> SimBox::cardsCollected() const {
  return parts_->layout.cardsOrEmpty(parts_->layout.collected());
}

std::string SimBox::shutterState() const {
  return parts_->layout.readState("shutter").value_or("closed");
}

std::string SimBox::displayText() const { return parts_->layout.readState("display").value_or(""); }

std::string SimBox::dropCard(const fs::path& card_folder) {
  const Layout& layout = parts_->layout;
  std::string name = card_folder.filename().string();
  if (name.empty()) {
    name = card_folder.parent_path().filename().string();  // "cards/x/" names "x"
  }
  if (name.empty() || name.front() == '.') {
    throw std::invalid_argument("SimBox::dropCard: not a card folder: " + card_folder.string());
  }
  if (!fs::is_directory(card_folder)) {
    throw std::invalid_argument("SimBox::dropCard: not a card folder: " + card_folder.string());
  }
  // Copy under a hidden name first, so no one ever sees a half-copied card on the tray.
  const std::string staged = "." + name + tempSuffix();
  fs::copy(card_folder, layout.staging() / staged, fs::copy_options::recursive);
  auto moved = layout.moveCard(layout.staging(), staged, layout.intake(), name);
  if (!moved) {
    fs::remove_all(layout.staging() / staged);
    throw std::runtime_error("SimBox::dropCard: " + moved.error());
  }
  return *moved;
}

std::optional<std::string> SimBox::collectFromSlot(int index) {
  auto card = cardInSlot(index);
  if (!card) {
    return std::nullopt;
  }
  auto moved =
      parts_->layout.moveCard(parts_->layout.slot(index), *card, parts_->layout.collected());
  if (!moved) {
    return std::nullopt;
  }
  return *moved;
}

std::vector<std::string> SimBox::emptyBin() {
  std::vector<std::string> taken;
  for (const auto& card : cardsInBin()) {
    auto moved = parts_->layout.moveCard(parts_->layout.bin(), card, parts_->layout.collected());
    if (moved) {
      taken.push_back(*moved);
    }
  }
  return taken;
}

std::vector<std::string> SimBox::clearJams() {
  std::vector<std::string> taken;
  for (const auto& card : cardsJammed()) {
    auto moved = parts_->layout.moveCard(parts_->layout.jam(), card, parts_->layout.collected());
    if (moved) {
      taken.push_back(*moved);
    }
  }
  return taken;
}

std::optional<std::string> SimBox::putBack(const std::string& card) {
  if (card.empty() || card.front() == '.' || card.find('/') != std::string::npos) {
    return std::nullopt;
  }
  auto moved = parts_->layout.moveCard(parts_->layout.collected(), card, parts_->layout.intake());
  if (!moved) {
    return std::nullopt;
  }
  return *moved;
}

void SimBox::type(const std::string& entry) {
  if (entry.find_first_not_of("0123456789*# ") != std::string::npos) {
    throw std::invalid_argument("SimBox::type: a keypad has only digits, '*', '#' and ' '");
  }
  const Layout& layout = parts_->layout;
  // Nanoseconds since the epoch, zero-padded, then the process and a counter: name order is
  // typing order, across processes too.
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  static std::atomic<unsigned long> counter{0};
  const std::string name = fmt::format("{:020}-{:08}-{:06}", ns, ::getpid(), counter.fetch_add(1));
  if (!layout.writeFileAtomically(layout.keypad() / name, entry)) {
    throw std::runtime_error("SimBox::type: cannot write " + (layout.keypad() / name).string());
  }
  layout.log().info("keypad: an entry of {} characters typed", entry.size());
}

int SimBox::keypadEntriesWaiting() const {
  int count = 0;
  std::error_code ec;
  for (fs::directory_iterator it(parts_->layout.keypad(), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    count += !name.empty() && name.front() != '.' ? 1 : 0;
  }
  return count;
}

void SimBox::setBinDoorOpen(bool open) {
  const Layout& layout = parts_->layout;
  if (open) {
    if (!layout.writeFileAtomically(layout.binDoorOpen(), utcTimestamp() + "\n")) {
      throw std::runtime_error("SimBox: cannot write " + layout.binDoorOpen().string());
    }
  } else {
    fs::remove(layout.binDoorOpen());
  }
  layout.log().info("bin door {}", open ? "opened" : "shut");
}

}  // namespace lostcard::hw
