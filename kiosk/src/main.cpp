// lostcard-kiosk: the box's firmware daemon. Takes found cards, journals them, reports them to
// the cloud over mutual TLS and puts each where the cloud decides.
//
//   lostcard-kiosk --id kiosk-001 --cloud cloud.example:7443 --ca ca.crt --cert kiosk.crt
//       --key kiosk.key --journal /var/lib/lostcard/journal.sqlite --hw board --board box.ini
//   lostcard-kiosk --config /etc/lostcard/kiosk.conf        (the same options, key = value)
//   lostcard-kiosk --journal journal.sqlite --print-journal (one line per deposit, then exit)
//
// Runs on one io_context thread. SIGINT/SIGTERM: the current move finishes (moves are never
// interrupted), the shutter closes, exit 0.
// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "lostcard/hw/board.hpp"
#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/controller.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/kiosk/uplink.hpp"
#include "lostcard/wire/log.hpp"
#include "lostcard/wire/tls.hpp"

namespace asio = boost::asio;
namespace po = boost::program_options;
namespace hw = lostcard::hw;
namespace kiosk = lostcard::kiosk;

namespace {

struct Options {
  std::string id;
  std::string cloud;
  std::string server_name;
  std::string ca;
  std::string cert;
  std::string key;
  std::string journal;
  std::string hw_kind;
  std::string sim_root;
  int slots = 24;
  int bin_capacity = 100;
  std::string board;
  int frames = 2;
  int poll_ms = 50;
  int heartbeat_ms = 5000;
  std::int64_t peer_timeout_ms = 0;
  std::int64_t offline_timeout_ms = 60'000;
  std::int64_t pickup_unlock_ms = 3000;
  std::int64_t pickup_take_ms = 60'000;
  std::int64_t answer_timeout_ms = 20'000;
  std::int64_t bin_open_ms = 300'000;
  std::int64_t operator_session_ms = 600'000;
  std::string log_level = "info";
  bool print_journal = false;
};

std::int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Returns nullopt after printing help or an error; `exit_code` says which.
std::optional<Options> parseOptions(int argc, char** argv, int& exit_code) {
  Options o;
  std::string config_file;
  po::options_description desc("lostcard-kiosk options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("config", po::value(&config_file), "read options from FILE (key = value lines)")
      ("id", po::value(&o.id), "this kiosk's id (as in its certificate)")
      ("cloud", po::value(&o.cloud), "the cloud's HOST:PORT")
      ("server-name", po::value(&o.server_name),
       "name the cloud's certificate must carry (default: HOST of --cloud)")
      ("ca", po::value(&o.ca), "fleet CA certificate (PEM)")
      ("cert", po::value(&o.cert), "this kiosk's certificate (PEM)")
      ("key", po::value(&o.key), "this kiosk's private key (PEM)")
      ("journal", po::value(&o.journal), "the journal (SQLite file)")
      ("hw", po::value(&o.hw_kind), "hardware: sim or board")
      ("sim-root", po::value(&o.sim_root), "simulated box folder (--hw sim)")
      ("slots", po::value(&o.slots)->default_value(24), "slot count (--hw sim)")
      ("bin-capacity", po::value(&o.bin_capacity)->default_value(100),
       "cards the difficult-card bin holds")
      ("board", po::value(&o.board), "board file (--hw board)")
      ("frames", po::value(&o.frames)->default_value(2), "frames per face")
      ("poll-ms", po::value(&o.poll_ms)->default_value(50), "card sensor poll interval")
      ("heartbeat-ms", po::value(&o.heartbeat_ms)->default_value(5000), "heartbeat interval")
      ("peer-timeout-ms", po::value(&o.peer_timeout_ms)->default_value(0),
       "silence from the cloud after which the kiosk reconnects, while something it sent is "
       "unanswered (0: 3 x --heartbeat-ms; -1: never)")
      ("offline-timeout-ms", po::value(&o.offline_timeout_ms)->default_value(60'000),
       "a card with no answer from the cloud after this long goes to a slot as pending "
       "(0: it waits on the tray)")
      ("pickup-unlock-ms", po::value(&o.pickup_unlock_ms)->default_value(3000),
       "how long a slot's or the bin's latch is held released")
      ("pickup-take-ms", po::value(&o.pickup_take_ms)->default_value(60'000),
       "how long the card may stay in its open slot before the pickup counts as not taken")
      ("answer-timeout-ms", po::value(&o.answer_timeout_ms)->default_value(20'000),
       "how long a person at the keypad waits for the cloud's answer")
      ("bin-open-ms", po::value(&o.bin_open_ms)->default_value(300'000),
       "how long an operator may take to open the unlocked bin door")
      ("operator-session-ms", po::value(&o.operator_session_ms)->default_value(600'000),
       "how long an operator's session at the box lasts unless they end it with '*'")
      ("log-level", po::value(&o.log_level)->default_value("info"),
       "trace, debug, info, warn, error, off")
      ("print-journal", po::bool_switch(&o.print_journal),
       "print deposit_id, state, location, last4, reason per deposit and exit");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("config") != 0) {
      const auto path = vm["config"].as<std::string>();
      po::store(po::parse_config_file<char>(path.c_str(), desc), vm);
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "lostcard-kiosk: " << e.what() << "\n" << desc << "\n";
    exit_code = 2;
    return std::nullopt;
  }
  if (vm.count("help") != 0) {
    std::cout << desc << "\n";
    exit_code = 0;
    return std::nullopt;
  }
  auto fail = [&](const std::string& why) -> std::optional<Options> {
    std::cerr << "lostcard-kiosk: " << why << "\n";
    exit_code = 2;
    return std::nullopt;
  };
  if (o.journal.empty()) {
    return fail("--journal is required");
  }
  if (o.print_journal) {
    return o;
  }
  for (const auto& [name, value] : {std::pair{"--id", &o.id},
                                    {"--cloud", &o.cloud},
                                    {"--ca", &o.ca},
                                    {"--cert", &o.cert},
                                    {"--key", &o.key},
                                    {"--hw", &o.hw_kind}}) {
    if (value->empty()) {
      return fail(std::string(name) + " is required");
    }
  }
  if (o.hw_kind != "sim" && o.hw_kind != "board") {
    return fail("--hw must be sim or board");
  }
  if (o.hw_kind == "sim" && o.sim_root.empty()) {
    return fail("--hw sim needs --sim-root");
  }
  if (o.hw_kind == "board" && o.board.empty()) {
    return fail("--hw board needs --board");
  }
  if (o.cloud.rfind(':') == std::string::npos) {
    return fail("--cloud must be HOST:PORT");
  }
  if (o.slots < 1 || o.bin_capacity < 0 || o.frames < 1 || o.poll_ms < 1 || o.heartbeat_ms < 1 ||
      o.offline_timeout_ms < 0 || o.pickup_unlock_ms < 0 || o.pickup_take_ms < 0 ||
      o.answer_timeout_ms < 1 || o.bin_open_ms < 0 || o.operator_session_ms < 1) {
    return fail("--slots, --frames, --poll-ms and --heartbeat-ms must be positive");
  }
  return o;
}

// One line per deposit: deposit_id, state, location, last4, reason, tab-separated.
int printJournal(const std::string& path) {
  kiosk::Journal journal(path, kiosk::Journal::Mode::kReadOnly);
  auto clean = [](std::string text) {
    for (char& c : text) {
      if (c == '\t' || c == '\n' || c == '\r') {
        c = ' ';
      }
    }
    return text;
  };
  for (const auto& d : journal.deposits()) {
    const std::string last4 = d.decision && d.decision->isStore() ? d.decision->last4 : "";
    std::cout << d.deposit_id << '\t' << kiosk::stateName(d.state) << '\t' << d.location.text()
              << '\t' << last4 << '\t' << clean(d.reason) << '\n';
  }
  return 0;
}

// Rethrows what a coroutine threw (a JournalError) out of io.run(), instead of losing it.
void rethrow(std::exception_ptr e) {
  if (e) {
    std::rethrow_exception(e);
  }
}

int runDaemon(const Options& o) {
  lostcard::wire::setLogLevel(o.log_level);
  auto log = lostcard::wire::componentLogger("kiosk.main");

  std::unique_ptr<hw::SimBox> sim;
  std::unique_ptr<hw::BoardDevices> board;
  hw::Devices devices;
  if (o.hw_kind == "sim") {
    sim = std::make_unique<hw::SimBox>(hw::SimBoxOptions{
        .root = o.sim_root, .slot_count = o.slots, .bin_capacity = o.bin_capacity});
    devices = sim->devices();
  } else {
    board = std::make_unique<hw::BoardDevices>(hw::BoardConfig::load(o.board));
    for (const auto& problem : board->problems()) {
      log->error("board: {}", problem);
    }
    devices = board->devices();
  }

  const auto journal_path = std::filesystem::path(o.journal);
  if (journal_path.has_parent_path()) {
    std::filesystem::create_directories(journal_path.parent_path());
  }
  kiosk::Journal journal(journal_path);

  const auto colon = o.cloud.rfind(':');
  kiosk::TlsEndpoint endpoint{o.cloud.substr(0, colon), o.cloud.substr(colon + 1),
                              o.server_name.empty() ? o.cloud.substr(0, colon) : o.server_name};
  auto tls = lostcard::wire::makeClientContext({o.ca, o.cert, o.key});

  asio::io_context io;
  // The cloud acks each heartbeat, so a healthy link is never silent for 3 heartbeat intervals.
  const std::chrono::milliseconds peer_timeout(
      o.peer_timeout_ms == 0 ? 3 * std::int64_t{o.heartbeat_ms}
                             : std::max<std::int64_t>(o.peer_timeout_ms, 0));
  std::optional<kiosk::Controller> controller;
  kiosk::Uplink<kiosk::TlsStream> uplink(
      io.get_executor(), kiosk::makeTlsConnector(io.get_executor(), tls, endpoint),
      kiosk::UplinkOptions{.kiosk_id = o.id, .peer_timeout = peer_timeout},
      kiosk::UplinkHandlers{
          .backlog = [&] { return controller->backlog(); },
          .on_message = [&](const lostcard::v1::Envelope& env) { controller->onMessage(env); },
          // After the backlog: the cloud compares this snapshot with what it just recorded.
          .on_link =
              [&](bool up) {
                if (up) {
                  uplink.send(controller->inventory());
                }
              },
          .clock_ms = wallClockMs});
  controller.emplace(devices, journal,
                     kiosk::IntakeConfig{.bin_capacity = o.bin_capacity,
                                         .frames_per_face = o.frames,
                                         .offline_timeout_ms = o.offline_timeout_ms},
                     wallClockMs, [&](const lostcard::v1::Envelope& env) { uplink.send(env); });
  controller->setBoxOptions(kiosk::BoxOptions{.unlock_ms = o.pickup_unlock_ms,
                                              .take_ms = o.pickup_take_ms,
                                              .answer_timeout_ms = o.answer_timeout_ms,
                                              .bin_open_ms = o.bin_open_ms,
                                              .operator_session_ms = o.operator_session_ms});
  controller->start();
  // No intake yet when the disk was too full for recovery: the controller waits for room.
  log->info("kiosk {} up: {} slots, cloud {} ({}), hardware {}{}", o.id,
            devices.sorter->slotCount(), o.cloud, endpoint.server_name, o.hw_kind,
            controller->outOfService() ? "; out of service until the journal has room" : "");

  bool stopping = false;
  asio::steady_timer poll_timer(io);
  asio::steady_timer heartbeat_timer(io);
  auto every = [&](asio::steady_timer& timer, std::chrono::milliseconds period,
                   std::function<void()> fn) -> asio::awaitable<void> {
    while (!stopping) {
      timer.expires_after(period);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopping) {
        break;
      }
      fn();
    }
  };
  asio::co_spawn(io, uplink.run(), rethrow);
  asio::co_spawn(
      io, every(poll_timer, std::chrono::milliseconds(o.poll_ms), [&] { controller->poll(); }),
      rethrow);
  asio::co_spawn(io,
                 every(heartbeat_timer, std::chrono::milliseconds(o.heartbeat_ms),
                       [&] { uplink.send(controller->heartbeat()); }),
                 rethrow);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) {
      return;
    }
    log->info("signal {}: stopping", signal);
    stopping = true;
    controller->shutdown();
    uplink.stop();
    poll_timer.cancel();
    heartbeat_timer.cancel();
    io.stop();
  });
  io.run();
  log->info("kiosk {} stopped", o.id);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto options = parseOptions(argc, argv, exit_code);
  if (!options) {
    return exit_code;
  }
  try {
    if (options->print_journal) {
      return printJournal(options->journal);
    }
    return runDaemon(*options);
  } catch (const std::exception& e) {
    lostcard::wire::componentLogger("kiosk.main")->critical("{}", e.what());
    return 1;
  }
}
