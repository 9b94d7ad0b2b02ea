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
//     difficult-images [--deposit ID]    the sealed photos kept of difficult cards
//     difficult-image DEPOSIT_ID --out FILE [--face front|back] [--frame N]
//                              decrypts one kept photo (JPEG, mode 0600) for an operator
//     purge-images [--retention-days N]  deletes photos kept longer than N days (default 30)
//     add-account LOGIN --role holder|operator|issuer_staff|admin [--holder ID] [--issuer ID]
//                 [--kiosk ID]...   a person's account for the API; the password is the first
//                              line of stdin (never an argument: `ps` would show it)
//     audit [--limit N] [--action A]   the newest audit log rows
//     add-issuer-key ISSUER_ID    a new API key for the issuer's systems, printed once (only its
//                              SHA-256 is stored: issuer_keys.hpp)
//     revoke-issuer-key KEY_ID    ends a key at once
//     issuer-keys [--issuer ID]   key_id issuer_id created_at revoked_at (never the key)
//     set-issuer-webhook ISSUER_ID URL [--secret-stdin]   where the issuer's events go; the
//                              signing secret is made and printed once, or read from stdin
//     sweep-unclaimed [--days N]  marks cards waiting in a slot N days (default 30) for return
//     issuer-proof-key ISSUER_ID  the key the issuer signs card proofs with (card_proof.hpp)
//
// --db defaults to $LOSTCARD_DB; the card key comes from --card-key-file or $LOSTCARD_CARD_KEY,
// the image key (difficult-image) from --image-key-file or $LOSTCARD_IMAGE_KEY.
// Card numbers are read from stdin only, never from the command line (where `ps` and shell
// history would keep them), and never printed.
#include <openssl/crypto.h>

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

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lostcard/cloud/accounts.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/card_proof.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/issuer_events.hpp"
#include "lostcard/cloud/unclaimed.hpp"
#include "lostcard/cloud/issuer_keys.hpp"
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
    "                         disagreements=N'; exits 3 when any kiosk disagrees\n"
    "  difficult-images [--deposit ID]\n"
    "                         deposit_id face frame key_id bytes created_at straightened\n"
    "                         blacked_out, of the photos kept of difficult cards\n"
    "  difficult-image DEPOSIT_ID --out FILE [--face front|back] [--frame N]\n"
    "                         decrypts one kept photo into FILE (default: the first kept)\n"
    "  purge-images [--retention-days N]\n"
    "                         deletes the photos kept longer than N days (default 30)\n"
    "  add-account LOGIN --role holder|operator|issuer_staff|admin [--holder ID]\n"
    "              [--issuer ID] [--kiosk ID]...\n"
    "                         creates or replaces a person's account; password: first line of\n"
    "                         stdin\n"
    "  audit [--limit N] [--action A]\n"
    "                         id at actor_role actor_id action object_kind object_ids result\n"
    "                         detail, newest first\n"
    "  add-issuer-key ISSUER_ID\n"
    "                         prints a new API key for the issuer (shown once: keep it)\n"
    "  revoke-issuer-key KEY_ID\n"
    "                         revokes a key; exits 1 when no such key is in force\n"
    "  issuer-keys [--issuer ID]\n"
    "                         key_id issuer_id created_at revoked_at (- when in force)\n"
    "  set-operator-code LOGIN\n"
    "                         gives an operator their box code (10 digits, first line of\n"
    "                         stdin), typed after the operator key to open a box's bin\n"
    "  set-issuer-webhook ISSUER_ID URL [--secret-stdin]\n"
    "                         the issuer's webhook for card.found/card.returned events; prints\n"
    "                         a new signing secret once (or reads it from stdin's first line)\n"
    "  sweep-unclaimed [--days N]\n"
    "                         marks cards waiting in a slot N days (default 30) for return to\n"
    "                         their issuer, as lostcard-cloud does hourly\n"
    "  issuer-proof-key ISSUER_ID\n"
    "                         prints the issuer's card-proof key (64 hex; needs the card key)\n";

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

// How long difficult cards' photos are kept by default (as lostcard-cloud's
// --image-retention-days).
constexpr int kImageRetentionDays = 30;

// difficult-image DEPOSIT_ID --out FILE [--face front|back] [--frame N]: one kept photo,
// decrypted, into FILE (created with mode 0600; the photo shows the card).
int decryptDifficultImage(const std::string& db, const std::string& image_key_file,
                          const std::string& command, const std::vector<std::string>& args) {
  std::string out, face;
  int frame = 0;
  po::options_description options("difficult-image options");
  // clang-format off
  options.add_options()
      ("out", po::value(&out)->required(), "write the JPEG here")
      ("face", po::value(&face), "front or back (default: the first kept photo)")
      ("frame", po::value(&frame)->default_value(1), "the frame of that face, from 1");
  // clang-format on
  auto vm = parseCommand(command, args, options, {"deposit-id"});
  const std::string deposit = vm["deposit-id"].as<std::string>();
  if (!face.empty() && face != "front" && face != "back") {
    throw UsageError("difficult-image: --face is front or back");
  }
  const auto vault = image_key_file.empty() ? lostcard::cloud::ImageVault::fromEnv()
                                            : lostcard::cloud::ImageVault::fromFile(image_key_file);
  Store store({.conninfo = db});
  // Handing out a card's photo is an access to card data: audited with the Unix login.
  const char* login = std::getenv("SUDO_USER") != nullptr ? std::getenv("SUDO_USER")
                                                          : std::getenv("USER");
  lostcard::cloud::AuditEntry access;
  access.actor_role = "admin";
  access.actor_id = login != nullptr ? login : "";
  access.action = "difficult_images.read";
  access.result = "ok";
  const auto images = store.difficultImages(deposit, &access, std::chrono::system_clock::now());
  const lostcard::cloud::DifficultImage* chosen = nullptr;
  for (const auto& image : images) {
    if (chosen == nullptr && (face.empty() || (image.face == face && image.frame + 1 == frame))) {
      chosen = &image;
    }
  }
  if (chosen == nullptr) {
    std::cerr << "lostcard-admin: difficult-image: no kept photo of deposit " << deposit
              << (face.empty() ? "" : " " + face + " frame " + std::to_string(frame)) << " ("
              << images.size() << " kept; see difficult-images)\n";
    return kExitFailed;
  }
  std::string why;
  const auto jpeg = vault.open({chosen->key_id, chosen->nonce, chosen->ciphertext}, deposit, &why);
  if (!jpeg) {
    std::cerr << "lostcard-admin: difficult-image: cannot decrypt: " << why << "\n";
    return kExitFailed;
  }
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::fchmod(fd, 0600) != 0 ||
      ::write(fd, jpeg->data(), jpeg->size()) != static_cast<ssize_t>(jpeg->size()) ||
      ::close(fd) != 0) {
    std::cerr << "lostcard-admin: difficult-image: cannot write " << out << "\n";
    return kExitFailed;
  }
  std::cout << "wrote " << out << ": deposit " << deposit << " " << chosen->face << " frame "
            << chosen->frame + 1 << ", " << jpeg->size() << " bytes"
            << (chosen->blacked_out ? ", signature band blacked out" : "") << "\n";
  return kExitOk;
}

// add-account LOGIN --role R [--holder ID] [--issuer ID] [--kiosk ID]...: the password is the
// first line of stdin.
int addAccount(const std::string& db, const std::string& command,
               const std::vector<std::string>& args) {
  std::string role;
  lostcard::cloud::AccountSpec spec;
  po::options_description options("add-account options");
  // clang-format off
  options.add_options()
      ("role", po::value(&role)->required(), "holder, operator, issuer_staff or admin")
      ("holder", po::value(&spec.holder_id), "the holder id (role holder)")
      ("issuer", po::value(&spec.issuer_id), "the issuer id (role issuer_staff)")
      ("kiosk", po::value(&spec.kiosk_ids)->composing(), "a kiosk the operator serves (repeat)");
  // clang-format on
  auto vm = parseCommand(command, args, options, {"login"});
  spec.login = vm["login"].as<std::string>();
  const auto parsed_role = lostcard::cloud::roleFromName(role);
  if (!parsed_role) {
    throw UsageError("add-account: --role is holder, operator, issuer_staff or admin");
  }
  spec.role = *parsed_role;
  std::string password;
  std::getline(std::cin, password);
  if (!password.empty() && password.back() == '\r') {
    password.pop_back();
  }
  if (password.empty()) {
    throw UsageError("add-account: give the password as the first line of stdin");
  }
  lostcard::cloud::AccountStore accounts({.conninfo = db});
  try {
    const auto id = accounts.upsertAccount(spec, password, std::chrono::system_clock::now());
    std::cout << "account " << id << " " << spec.login << " (" << role << ")\n";
  } catch (const pqxx::foreign_key_violation&) {
    std::cerr << "lostcard-admin: add-account: unknown holder, issuer or kiosk\n";
    return kExitFailed;
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("add-account: ") + e.what());
  }
  return kExitOk;
}

// audit [--limit N] [--action A]: the newest audit rows, tab-separated.
int printAudit(const std::string& db, const std::string& command,
               const std::vector<std::string>& args) {
  int limit = 0;
  std::string action;
  po::options_description options("audit options");
  options.add_options()("limit", po::value(&limit)->default_value(50), "rows at most")(
      "action", po::value(&action), "only this action (e.g. deposits.read)");
  parseCommand(command, args, options, {});
  lostcard::cloud::AccountStore accounts({.conninfo = db});
  for (const auto& row : accounts.recentAudit(
           limit, action.empty() ? std::nullopt : std::optional<std::string>(action))) {
    std::string ids;
    for (const auto& id : row.entry.object_ids) {
      ids += (ids.empty() ? "" : ",") + id;
    }
    std::cout << row.id << '\t' << isoTime(row.at) << '\t' << row.entry.actor_role << '\t'
              << (row.entry.actor_id.empty() ? "-" : row.entry.actor_id) << '\t'
              << row.entry.action << '\t' << (row.entry.object_kind.empty() ? "-" : row.entry.object_kind)
              << '\t' << (ids.empty() ? "-" : ids) << '\t' << row.entry.result << '\t'
              << row.entry.detail << '\n';
  }
  return kExitOk;
}

int runCommand(const std::string& db, const std::string& key_file,
               const std::string& image_key_file, const std::string& command,
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
  if (command == "difficult-images") {
    std::string deposit;
    po::options_description options("difficult-images options");
    options.add_options()("deposit", po::value(&deposit), "only this deposit's photos");
    parseCommand(command, args, options, {});
    Store store({.conninfo = db});
    for (const auto& image : store.listDifficultImages(
             deposit.empty() ? std::nullopt : std::optional<std::string>(deposit))) {
      std::cout << image.deposit_id << '\t' << image.face << '\t' << image.frame + 1 << '\t'
                << image.key_id << '\t' << image.ciphertext_bytes << '\t'
                << isoTime(image.created_at) << '\t'
                << (image.straightened ? "straightened" : "as-received") << '\t'
                << (image.blacked_out ? "blacked-out" : "whole") << '\n';
    }
    return kExitOk;
  }
  if (command == "difficult-image") {
    return decryptDifficultImage(db, image_key_file, command, args);
  }
  if (command == "purge-images") {
    int retention_days = 0;
    po::options_description options("purge-images options");
    options.add_options()("retention-days",
                          po::value(&retention_days)->default_value(kImageRetentionDays),
                          "keep photos this many days");
    parseCommand(command, args, options, {});
    if (retention_days < 0) {
      throw UsageError("purge-images: --retention-days must not be negative");
    }
    Store store({.conninfo = db});
    const int purged = store.purgeDifficultImages(std::chrono::system_clock::now(),
                                                  std::chrono::hours(24 * retention_days));
    std::cout << "purged " << purged << " photo(s) kept longer than " << retention_days
              << " days\n";
    return kExitOk;
  }
  if (command == "add-account") {
    return addAccount(db, command, args);
  }
  if (command == "audit") {
    return printAudit(db, command, args);
  }
  if (command == "set-operator-code") {
    auto vm = parseCommand(command, args, none, {"login"});
    std::string code;
    std::getline(std::cin, code);
    if (!code.empty() && code.back() == '\r') {
      code.pop_back();
    }
    Store store({.conninfo = db});
    try {
      store.setOperatorCode(vm["login"].as<std::string>(), code, std::chrono::system_clock::now());
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("set-operator-code: ") + e.what());
    }
    std::cout << "operator code set for " << vm["login"].as<std::string>() << "\n";
    return kExitOk;
  }
  if (command == "add-issuer-key") {
    auto vm = parseCommand(command, args, none, {"issuer-id"});
    lostcard::cloud::IssuerKeyStore keys({.conninfo = db});
    try {
      const auto made =
          keys.createKey(vm["issuer-id"].as<std::string>(), std::chrono::system_clock::now());
      std::cerr << "key " << made.key_id << " for issuer " << vm["issuer-id"].as<std::string>()
                << ": shown once, only its hash is kept\n";
      std::cout << made.key << "\n";
    } catch (const pqxx::foreign_key_violation&) {
      std::cerr << "lostcard-admin: add-issuer-key: unknown issuer\n";
      return kExitFailed;
    }
    return kExitOk;
  }
  if (command == "issuer-proof-key") {
    // The key an issuer signs its holders' card proofs with (card_proof.hpp); derived, not kept.
    auto vm = parseCommand(command, args, none, {"issuer-id"});
    const CardHasher hasher = loadHasher(key_file);
    std::string key = lostcard::cloud::issuerProofKey(hasher, vm["issuer-id"].as<std::string>());
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned char c : key) {
      std::cout << kHex[c >> 4] << kHex[c & 15];
    }
    std::cout << "\n";
    OPENSSL_cleanse(key.data(), key.size());
    return kExitOk;
  }
  if (command == "revoke-issuer-key") {
    auto vm = parseCommand(command, args, none, {"key-id"});
    lostcard::cloud::IssuerKeyStore keys({.conninfo = db});
    if (!keys.revokeKey(vm["key-id"].as<std::string>(), std::chrono::system_clock::now())) {
      std::cerr << "lostcard-admin: revoke-issuer-key: no such key in force\n";
      return kExitFailed;
    }
    std::cout << "key " << vm["key-id"].as<std::string>() << " revoked\n";
    return kExitOk;
  }
  if (command == "issuer-keys") {
    std::string issuer;
    po::options_description options("issuer-keys options");
    options.add_options()("issuer", po::value(&issuer), "only this issuer's keys");
    parseCommand(command, args, options, {});
    lostcard::cloud::IssuerKeyStore keys({.conninfo = db});
    for (const auto& k :
         keys.listKeys(issuer.empty() ? std::nullopt : std::optional<std::string>(issuer))) {
      std::cout << k.key_id << '\t' << k.issuer_id << '\t' << isoTime(k.created_at) << '\t'
                << (k.revoked_at ? isoTime(*k.revoked_at) : "-") << '\n';
    }
    return kExitOk;
  }
  if (command == "set-issuer-webhook") {
    bool secret_stdin = false;
    po::options_description options("set-issuer-webhook options");
    options.add_options()("secret-stdin", po::bool_switch(&secret_stdin),
                          "read the signing secret from stdin's first line");
    auto vm = parseCommand(command, args, options, {"issuer-id", "url"});
    std::string secret;
    if (secret_stdin) {
      std::getline(std::cin, secret);
    } else {
      secret = lostcard::cloud::newWebhookSecret();
    }
    try {
      if (!lostcard::cloud::setIssuerWebhook(db, vm["issuer-id"].as<std::string>(),
                                             vm["url"].as<std::string>(), secret)) {
        std::cerr << "lostcard-admin: set-issuer-webhook: unknown issuer\n";
        return kExitFailed;
      }
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("set-issuer-webhook: ") + e.what());
    }
    if (!secret_stdin) {
      std::cerr << "webhook secret for issuer " << vm["issuer-id"].as<std::string>()
                << ": shown once, keep it\n";
      std::cout << secret << "\n";
    }
    return kExitOk;
  }
  if (command == "sweep-unclaimed") {
    int days = 0;
    po::options_description options("sweep-unclaimed options");
    options.add_options()("days", po::value(&days)->default_value(30),
                          "cards waiting in a slot this many days");
    parseCommand(command, args, options, {});
    if (days < 0) {
      throw UsageError("sweep-unclaimed: --days must not be negative");
    }
    const int marked = lostcard::cloud::markUnclaimedForReturn(
        db, std::chrono::system_clock::now(), std::chrono::hours(24 * days));
    std::cout << "marked " << marked << " card(s) unclaimed for " << days
              << " days for return to their issuer\n";
    return kExitOk;
  }
  throw UsageError("unknown command '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::string db;
  std::string key_file;
  std::string image_key_file;
  std::string command;
  po::options_description global("options");
  // clang-format off
  global.add_options()
      ("help,h", "show this help")
      ("db", po::value(&db), "libpq conninfo of the registry (default: $LOSTCARD_DB)")
      ("card-key-file", po::value(&key_file), "card hash key file (default: $LOSTCARD_CARD_KEY)")
      ("image-key-file", po::value(&image_key_file), "key file of difficult cards' photos (default: $LOSTCARD_IMAGE_KEY)")
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
    return runCommand(db, key_file, image_key_file, command, args);
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
