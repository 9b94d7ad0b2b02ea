// lostcard-admin: enrollment and inspection of the cloud registry.
//
//   lostcard-admin --db CONNINFO [--card-key-file FILE] COMMAND ...
//     migrate
//     add-issuer ID NAME
//     add-holder ID NAME WEBHOOK_URL WEBHOOK_SECRET
//     add-kiosk ID --name N --address A --lat X --lon Y --hours H --slots S
//     add-cards            TSV lines "issuer_id<TAB>holder_id<TAB>number" on stdin
//     deposits [--kiosk ID]
//     notices
//     reconcile [--kiosk ID]   each kiosk's latest inventory against the cloud's records; exits 3
//                              when they disagree
//
// --db defaults to $LOSTCARD_DB; the card key comes from --card-key-file or $LOSTCARD_CARD_KEY.
// Card numbers are read from stdin only, never from the command line (where `ps` and shell
// history would keep them), and never printed.
#include <boost/program_options.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/wire/log.hpp"

namespace po = boost::program_options;
using lostcard::cloud::CardHasher;
using lostcard::cloud::Store;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDisagreement = 3;

constexpr const char* kUsage =
    "usage: lostcard-admin --db CONNINFO [--card-key-file FILE] COMMAND ...\n"
    "commands:\n"
    "  migrate\n"
    "  add-issuer ID NAME\n"
    "  add-holder ID NAME WEBHOOK_URL WEBHOOK_SECRET\n"
    "  add-kiosk ID --name N --address A --lat X --lon Y --hours H --slots S\n"
    "  add-cards              reads issuer_id<TAB>holder_id<TAB>number lines from stdin\n"
    "  deposits [--kiosk ID]  deposit_id kiosk_id status decision location last4 reason\n"
    "  notices                notice_id deposit_id holder_id attempts delivered\n"
    "  reconcile [--kiosk ID] per kiosk: place deposit_id kiosk=VIEW cloud=VIEW last4 status\n"
    "                         verdict, then 'reconcile: kiosk=ID slots_used=N bin=N\n"
    "                         disagreements=N'; exits 3 when any kiosk disagrees\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses a command's own options and positional arguments (all of them required).
po::variables_map parseCommand(const std::string& command, const std::vector<std::string>& args,
                               const po::options_description& options,
                               const std::vector<std::string>& positional_names) {
  po::options_description all(options);
  po::positional_options_description positional;
  for (const auto& name : positional_names) {
    all.add_options()(name.c_str(), po::value<std::string>(), "");
    positional.add(name.c_str(), 1);
  }
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
  for (const auto& name : positional_names) {
    if (vm.count(name) == 0) {
      std::string upper;
      for (char c : name) {
        upper.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
      }
      throw UsageError(command + ": missing " + upper);
    }
  }
  po::notify(vm);
  return vm;
}

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const auto tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) {
      return fields;
    }
    start = tab + 1;
  }
}

CardHasher loadHasher(const std::string& key_file) {
  return key_file.empty() ? CardHasher::fromEnv() : CardHasher::fromFile(key_file);
}

int addCards(Store& store, const CardHasher& hasher) {
  int enrolled = 0;
  int skipped = 0;
  int line_number = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto fields = splitTabs(line);
    // Errors name the line, never its content: it holds a card number.
    if (fields.size() != 3 || fields[0].empty() || fields[1].empty()) {
      std::cerr << "line " << line_number << ": expected issuer_id<TAB>holder_id<TAB>number\n";
      ++skipped;
      continue;
    }
    try {
      store.enrollCard(hasher, fields[0], fields[1], fields[2]);
      ++enrolled;
    } catch (const pqxx::foreign_key_violation&) {
      std::cerr << "line " << line_number << ": unknown issuer or holder\n";
      ++skipped;
    } catch (const std::invalid_argument&) {
      std::cerr << "line " << line_number << ": not a card number (8 to 19 digits)\n";
      ++skipped;
    }
  }
  std::cout << "enrolled " << enrolled << " cards\n";
  if (skipped > 0) {
    std::cerr << "skipped " << skipped << " line(s)\n";
    return kExitFailed;
  }
  return kExitOk;
}

// "2024-05-01T12:00:00.123Z" (UTC).
std::string isoTime(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &parts);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", date, static_cast<int>(ms % 1000));
  return out;
}

// Prints one kiosk's reconciliation: a header, one line per deposit, the summary line.
void printReconciliation(const lostcard::cloud::Reconciliation& r) {
  using lostcard::cloud::isDisagreement;
  using lostcard::cloud::verdictName;
  std::cout << "kiosk " << r.kiosk_id << ": ";
  if (!r.has_inventory) {
    std::cout << "no inventory received yet; the cloud's records only\n";
  } else {
    std::cout << "inventory journal_seq=" << r.journal_seq
              << " received_at=" << isoTime(r.received_at) << " slots_total=" << r.slots_total
              << " bin_capacity=" << r.bin_capacity;
    if (r.stale) {
      std::cout << " STALE: the cloud recorded deposits of this kiosk after it arrived"
                << (r.latest_record_at ? " (at " + isoTime(*r.latest_record_at) + ")" : "")
                << "; differences are not counted until the next inventory\n";
    } else {
      std::cout << " fresh\n";
    }
  }
  for (const auto& row : r.rows) {
    std::string kiosk_view = row.kiosk_view;
    if (row.pending || row.flagged) {
      kiosk_view += row.pending && row.flagged ? " (pending, flagged)"
                    : row.pending              ? " (pending)"
                                               : " (flagged)";
    }
    std::cout << "  " << row.place << '\t' << row.deposit_id << "\tkiosk=" << kiosk_view
              << "\tcloud=" << row.cloud_view << "\tlast4=" << (row.last4.empty() ? "-" : row.last4)
              << '\t' << row.status << '\t';
    if (isDisagreement(row.verdict)) {
      std::cout << (r.stale ? "differs (stale) " : "DISAGREE ") << verdictName(row.verdict) << ": "
                << row.note;
    } else {
      std::cout << verdictName(row.verdict);
      if (row.verdict != lostcard::cloud::Verdict::kAgree && !row.note.empty()) {
        std::cout << ": " << row.note;
      }
    }
    std::cout << '\n';
  }
  std::cout << "reconcile: kiosk=" << r.kiosk_id << " slots_used=" << r.slots_used
            << " bin=" << r.bin_count << " disagreements=" << r.disagreements << '\n';
}

int runCommand(const std::string& db, const std::string& key_file, const std::string& command,
               const std::vector<std::string>& args) {
  po::options_description none;
  if (command == "migrate") {
    parseCommand(command, args, none, {});
    Store store({.conninfo = db});
    store.migrate();
    std::cout << "schema up to date\n";
    return kExitOk;
  }
  if (command == "add-issuer") {
    auto vm = parseCommand(command, args, none, {"id", "name"});
    Store store({.conninfo = db});
    store.upsertIssuer(vm["id"].as<std::string>(), vm["name"].as<std::string>());
    return kExitOk;
  }
  if (command == "add-holder") {
    auto vm = parseCommand(command, args, none, {"id", "name", "webhook-url", "webhook-secret"});
    Store store({.conninfo = db});
    store.upsertHolder(vm["id"].as<std::string>(), vm["name"].as<std::string>(),
                       vm["webhook-url"].as<std::string>(), vm["webhook-secret"].as<std::string>());
    return kExitOk;
  }
  if (command == "add-kiosk") {
    lostcard::cloud::KioskRecord kiosk;
    po::options_description options("add-kiosk options");
    // clang-format off
    options.add_options()
        ("name", po::value(&kiosk.name)->required(), "the box's name")
        ("address", po::value(&kiosk.address)->required(), "street address")
        ("lat", po::value(&kiosk.latitude)->required(), "latitude, degrees")
        ("lon", po::value(&kiosk.longitude)->required(), "longitude, degrees")
        ("hours", po::value(&kiosk.opening_hours)->default_value(""), "opening hours")
        ("slots", po::value(&kiosk.slot_count)->required(), "number of storage slots");
    // clang-format on
    auto vm = parseCommand(command, args, options, {"id"});
    kiosk.id = vm["id"].as<std::string>();
    Store store({.conninfo = db});
    store.upsertKiosk(kiosk);
    return kExitOk;
  }
  if (command == "add-cards") {
    parseCommand(command, args, none, {});
    const CardHasher hasher = loadHasher(key_file);
    Store store({.conninfo = db});
    return addCards(store, hasher);
  }
  if (command == "deposits") {
    std::string kiosk;
    po::options_description options("deposits options");
    options.add_options()("kiosk", po::value(&kiosk), "only this kiosk's deposits");
    parseCommand(command, args, options, {});
    Store store({.conninfo = db});
    for (const auto& d :
         store.listDeposits(kiosk.empty() ? std::nullopt : std::optional<std::string>(kiosk))) {
      std::cout << d.id << '\t' << d.kiosk_id << '\t' << d.status << '\t' << d.decision << '\t'
                << d.location << '\t' << (d.last4.empty() ? "-" : d.last4) << '\t'
                << (d.reason.empty() ? "-" : d.reason) << '\n';
    }
    return kExitOk;
  }
  if (command == "notices") {
    parseCommand(command, args, none, {});
    Store store({.conninfo = db});
    for (const auto& n : store.listNotices()) {
      std::cout << n.id << '\t' << n.deposit_id << '\t' << n.holder_id << '\t' << n.attempts << '\t'
                << (n.delivered ? "yes" : "no") << '\n';
    }
    return kExitOk;
  }
  if (command == "reconcile") {
    std::string kiosk;
    po::options_description options("reconcile options");
    options.add_options()("kiosk", po::value(&kiosk), "only this kiosk");
    parseCommand(command, args, options, {});
    Store store({.conninfo = db});
    std::vector<std::string> kiosks;
    if (kiosk.empty()) {
      kiosks = store.listKioskIds();
    } else if (store.findKiosk(kiosk)) {
      kiosks.push_back(kiosk);
    } else {
      std::cerr << "lostcard-admin: reconcile: unknown kiosk '" << kiosk << "'\n";
      return kExitFailed;
    }
    bool disagreement = false;
    for (const auto& id : kiosks) {
      const auto r = store.reconcile(id);
      printReconciliation(r);
      disagreement = disagreement || r.disagreements > 0;
    }
    return disagreement ? kExitDisagreement : kExitOk;
  }
  throw UsageError("unknown command '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::string db;
  std::string key_file;
  std::string command;
  po::options_description global("options");
  // clang-format off
  global.add_options()
      ("help,h", "show this help")
      ("db", po::value(&db), "libpq conninfo of the registry (default: $LOSTCARD_DB)")
      ("card-key-file", po::value(&key_file), "card hash key file (default: $LOSTCARD_CARD_KEY)")
      ("log-level", po::value<std::string>()->default_value("warn"), "trace ... off");
  po::options_description hidden;
  hidden.add_options()
      ("command", po::value(&command))
      ("args", po::value<std::vector<std::string>>());
  // clang-format on
  po::options_description all;
  all.add(global).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);

  try {
    // Everything after COMMAND belongs to the command, options included.
    auto parsed = po::command_line_parser(argc, argv)
                      .options(all)
                      .positional(positional)
                      .allow_unregistered()
                      .run();
    po::variables_map vm;
    po::store(parsed, vm);
    po::notify(vm);
    if (vm.count("help") || command.empty()) {
      std::cout << kUsage << global;
      return vm.count("help") ? kExitOk : kExitUsage;
    }
    lostcard::wire::setLogLevel(vm["log-level"].as<std::string>());
    if (db.empty()) {
      if (const char* env = std::getenv("LOSTCARD_DB")) {
        db = env;
      }
    }
    if (db.empty()) {
      throw UsageError("--db CONNINFO (or $LOSTCARD_DB) is required");
    }
    auto args = po::collect_unrecognized(parsed.options, po::include_positional);
    // collect_unrecognized also returns the command itself, first.
    if (!args.empty() && args.front() == command) {
      args.erase(args.begin());
    }
    return runCommand(db, key_file, command, args);
  } catch (const UsageError& e) {
    std::cerr << "lostcard-admin: " << e.what() << " (see lostcard-admin --help)\n";
    return kExitUsage;
  } catch (const po::error& e) {
    std::cerr << "lostcard-admin: " << e.what() << " (see lostcard-admin --help)\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "lostcard-admin: " << e.what() << "\n";
    return kExitFailed;
  }
}
