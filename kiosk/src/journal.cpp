#include "lostcard/kiosk/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"

namespace lostcard::kiosk {

namespace {

// 2: the releases table (doors opened for people). Every statement of the schema is
// IF NOT EXISTS, so a version-1 journal is brought up to date by running it again.
constexpr int kSchemaVersion = 2;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS deposits (
  deposit_id      TEXT PRIMARY KEY,
  created_at_ms   INTEGER NOT NULL,
  updated_at_ms   INTEGER NOT NULL,
  state           TEXT NOT NULL,
  location        TEXT NOT NULL,          -- tray | slot:N | bin | jam | unknown
  disposition     TEXT NOT NULL DEFAULT '',  -- '' (none yet) | store | difficult
  last4           TEXT NOT NULL DEFAULT '',
  decision_reason TEXT NOT NULL DEFAULT '',
  notes           TEXT NOT NULL DEFAULT '',
  flagged         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deposits_location ON deposits(location);
CREATE TABLE IF NOT EXISTS images (
  deposit_id      TEXT NOT NULL REFERENCES deposits(deposit_id),
  face            TEXT NOT NULL,          -- front | back
  seq             INTEGER NOT NULL,
  jpeg            BLOB NOT NULL,
  width_px        INTEGER NOT NULL,
  height_px       INTEGER NOT NULL,
  captured_at_ms  INTEGER NOT NULL,
  PRIMARY KEY (deposit_id, face, seq)
);
CREATE TABLE IF NOT EXISTS moves (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  deposit_id      TEXT NOT NULL REFERENCES deposits(deposit_id),
  from_location   TEXT NOT NULL,
  to_location     TEXT NOT NULL,
  began_at_ms     INTEGER NOT NULL,
  state           TEXT NOT NULL,          -- begun | done | failed
  at_location     TEXT,
  error           TEXT,
  ended_at_ms     INTEGER
);
CREATE INDEX IF NOT EXISTS moves_open ON moves(state);
CREATE TABLE IF NOT EXISTS outbox (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id      TEXT NOT NULL UNIQUE,
  deposit_id      TEXT NOT NULL,
  type            TEXT NOT NULL,          -- the envelope's body name, e.g. card_captured
  envelope        BLOB NOT NULL,          -- serialized Envelope (CardCaptured without frames)
  created_at_ms   INTEGER NOT NULL,
  acked           INTEGER NOT NULL DEFAULT 0,
  error           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_unacked ON outbox(acked, seq);
CREATE INDEX IF NOT EXISTS outbox_deposit ON outbox(deposit_id, type);
-- Doors opened for people: a slot for its cardholder, the bin for an operator. Never a code.
CREATE TABLE IF NOT EXISTS releases (
  request_id      TEXT PRIMARY KEY,
  kind            TEXT NOT NULL,          -- pickup | bin
  slot            INTEGER NOT NULL,       -- pickup: 0-based slot; bin: -1
  deposit_id      TEXT NOT NULL DEFAULT '',
  state           TEXT NOT NULL,          -- releaseStateName()
  created_at_ms   INTEGER NOT NULL,
  updated_at_ms   INTEGER NOT NULL,
  detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS releases_state ON releases(state);
)sql";

std::string typeName(v1::Envelope::BodyCase type) {
  const auto* field = v1::Envelope::descriptor()->FindFieldByNumber(type);
  return field != nullptr ? field->name() : "empty";
}

spdlog::logger& log() {
  static const auto logger = wire::componentLogger("kiosk.journal");
  return *logger;
}

// SQLITE_FULL, and I/O errors (a write the disk refused), are JournalFull: the journal is intact
// and the write may succeed later. Anything else is a JournalError.
[[noreturn]] void throwFor(int rc, const std::string& text) {
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL || primary == SQLITE_IOERR) {
    throw JournalFull(text);
  }
  throw JournalError(text);
}

const char* kindName(ReleaseKind kind) {
  switch (kind) {
    case ReleaseKind::kBin:
      return "bin";
    case ReleaseKind::kReturn:
      return "return";
    case ReleaseKind::kPickup:
      break;
  }
  return "pickup";
}

std::string joinNotes(std::string_view a, std::string_view b) {
  if (a.empty()) {
    return std::string(b);
  }
  if (b.empty()) {
    return std::string(a);
  }
  return std::string(a) + "; " + std::string(b);
}

}  // namespace

// A prepared statement; columns and parameters are 0- and 1-based as in SQLite.
class Journal::Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); rc != SQLITE_OK) {
      throwFor(rc, std::string("journal: cannot prepare: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::string_view text) {
    // An empty view may have no data; SQLite would store NULL for it.
    check(sqlite3_bind_text(stmt_, index, text.empty() ? "" : text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bindBlob(int index, std::string_view bytes) {
    check(sqlite3_bind_blob(stmt_, index, bytes.empty() ? "" : bytes.data(),
                            static_cast<int>(bytes.size()), SQLITE_TRANSIENT));
    return *this;
  }

  // True while there is a row to read.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    throwFor(rc, std::string("journal: ") + sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  // Ready to bind and run again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                        : std::string();
  }
  std::string blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p != nullptr ? std::string(static_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                        : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) {
      throw JournalError(std::string("journal: cannot bind: ") + sqlite3_errmsg(db_));
    }
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when left by an exception.
class Journal::Transaction {
 public:
  explicit Transaction(const Journal& journal) : journal_(journal) {
    journal_.exec("BEGIN IMMEDIATE");
  }
  ~Transaction() {
    if (!committed_) {
      sqlite3_exec(journal_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  void commit() {
    journal_.exec("COMMIT");
    committed_ = true;
  }

 private:
  const Journal& journal_;
  bool committed_ = false;
};

std::string_view stateName(DepositState state) {
  switch (state) {
    case DepositState::kAwaiting:
      return "awaiting";
    case DepositState::kDecided:
      return "decided";
    case DepositState::kPending:
      return "pending";
    case DepositState::kStored:
      return "stored";
    case DepositState::kFault:
      return "fault";
    case DepositState::kCollected:
      return "collected";
  }
  return "fault";
}

namespace {
struct ReleaseStateName {
  ReleaseState state;
  std::string_view name;
};
constexpr ReleaseStateName kReleaseStateNames[] = {
    {ReleaseState::kAsked, "asked"},
    {ReleaseState::kRefused, "refused"},
    {ReleaseState::kOpening, "opening"},
    {ReleaseState::kOpen, "open"},
    {ReleaseState::kTaken, "taken"},
    {ReleaseState::kNotTaken, "not_taken"},
    {ReleaseState::kDoorFailed, "door_failed"},
    {ReleaseState::kNotOpened, "not_opened"},
    {ReleaseState::kEmptied, "emptied"},
    {ReleaseState::kUnused, "unused"},
};
}  // namespace

std::string_view releaseStateName(ReleaseState state) {
  for (const auto& entry : kReleaseStateNames) {
    if (entry.state == state) {
      return entry.name;
    }
  }
  return "asked";
}

std::optional<ReleaseState> parseReleaseState(std::string_view name) {
  for (const auto& entry : kReleaseStateNames) {
    if (entry.name == name) {
      return entry.state;
    }
  }
  return std::nullopt;
}

std::optional<DepositState> parseState(std::string_view name) {
  for (auto s : {DepositState::kAwaiting, DepositState::kDecided, DepositState::kPending,
                 DepositState::kStored, DepositState::kFault, DepositState::kCollected}) {
    if (stateName(s) == name) {
      return s;
    }
  }
  return std::nullopt;
}

Journal::Journal(const std::filesystem::path& file, Mode mode)
    : Journal(file, [mode] {
        Options options;
        options.mode = mode;
        return options;
      }()) {}

Journal::Journal(const std::filesystem::path& file, Options options)
    : vfs_(std::move(options.vfs)) {
  const Mode mode = options.mode;
  if (mode == Mode::kReadWrite && !std::filesystem::exists(file)) {
    // Card photos pass through this file: only the daemon's user may read it. SQLite gives the
    // -wal and -shm files the database file's permissions.
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      ::close(fd);
    }
  }
  const int flags =
      mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (sqlite3_open_v2(file.c_str(), &db_, flags | SQLITE_OPEN_FULLMUTEX,
                      vfs_.empty() ? nullptr : vfs_.c_str()) != SQLITE_OK) {
    std::string error = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw JournalError("cannot open journal '" + file.string() + "': " + error);
  }
  try {
    sqlite3_busy_timeout(db_, 5000);
    if (mode == Mode::kReadWrite) {
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=FULL");
      // Deleted card photos are overwritten, not left in free pages.
      exec("PRAGMA secure_delete=ON");
      exec("PRAGMA foreign_keys=ON");
      Statement version(db_, "PRAGMA user_version");
      version.step();
      const auto found = version.integer(0);
      if (found > kSchemaVersion) {
        throw JournalError("journal '" + file.string() + "' has a newer schema (" +
                           std::to_string(found) + ")");
      }
      // Only a new journal is written to here: a kiosk restarted on a full disk still opens.
      if (found != kSchemaVersion) {
        Transaction tx(*this);
        exec(kSchema);
        exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
        tx.commit();
      }
      reserve_path_ = file.string() + "-reserve";
      reserve_bytes_ = options.reserve_bytes;
      if (!makeReserve()) {
        low_on_space_ = true;
        log().warn("no room for the journal's reserve of {} bytes: low on space", reserve_bytes_);
      }
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Journal::~Journal() { sqlite3_close(db_); }

void Journal::exec(const char* sql) const {
  char* error = nullptr;
  if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error); rc != SQLITE_OK) {
    std::string text = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throwFor(rc, "journal: " + text);
  }
}

template <class F>
void Journal::write(F&& body) {
  for (bool second_try = false;; second_try = true) {
    try {
      Transaction tx(*this);
      body();
      tx.commit();
      return;
    } catch (const JournalFull& e) {
      low_on_space_ = true;
      if (second_try || !releaseReserve()) {
        throw;
      }
      log().warn("{}: the reserve goes to the record in hand", e.what());
    }
  }
}

// The reserve is written through the journal's VFS, as its database is, so the disk that fills
// is the one the reserve stands for (and a test's model of a small disk counts it too).
bool Journal::makeReserve() {
  if (reserve_held_) {
    return true;
  }
  if (reserve_bytes_ <= 0) {
    reserve_held_ = true;
    return true;
  }
  sqlite3_vfs* vfs = sqlite3_vfs_find(vfs_.empty() ? nullptr : vfs_.c_str());
  if (vfs == nullptr) {
    throw JournalError("journal: no SQLite VFS named '" + vfs_ + "'");
  }
  std::vector<std::max_align_t> storage(
      (static_cast<std::size_t>(vfs->szOsFile) + sizeof(std::max_align_t) - 1) /
      sizeof(std::max_align_t));
  auto* handle = reinterpret_cast<sqlite3_file*>(storage.data());
  handle->pMethods = nullptr;
  // A "main journal" file: SQLite gives it the database's permissions and syncs its folder.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_JOURNAL;
  int rc = vfs->xOpen(vfs, reserve_path_.c_str(), handle, flags, nullptr);
  if (rc == SQLITE_OK) {
    const std::vector<char> zeros(64 * 1024, 0);
    for (std::int64_t at = 0; rc == SQLITE_OK && at < reserve_bytes_;
         at += static_cast<std::int64_t>(zeros.size())) {
      const auto n = static_cast<int>(
          std::min<std::int64_t>(reserve_bytes_ - at, static_cast<std::int64_t>(zeros.size())));
      rc = handle->pMethods->xWrite(handle, zeros.data(), n, at);
    }
    if (rc == SQLITE_OK) {
      rc = handle->pMethods->xSync(handle, SQLITE_SYNC_FULL);
    }
  }
  if (handle->pMethods != nullptr) {
    handle->pMethods->xClose(handle);
  }
  if (rc != SQLITE_OK) {
    vfs->xDelete(vfs, reserve_path_.c_str(), 0);
    log().debug("cannot write the reserve {}: {}", reserve_path_, sqlite3_errstr(rc));
    return false;
  }
  reserve_held_ = true;
  return true;
}

bool Journal::releaseReserve() {
  if (!reserve_held_ || reserve_bytes_ <= 0) {
    return false;
  }
  sqlite3_vfs* vfs = sqlite3_vfs_find(vfs_.empty() ? nullptr : vfs_.c_str());
  const int rc = vfs->xDelete(vfs, reserve_path_.c_str(), 1);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_DELETE_NOENT) {
    log().error("cannot delete the reserve {}: {}", reserve_path_, sqlite3_errstr(rc));
    return false;
  }
  reserve_held_ = false;
  low_on_space_ = true;
  log().warn("the disk is full: reserve of {} bytes released for the record in hand",
             reserve_bytes_);
  return true;
}

bool Journal::restoreReserve() {
  if (!makeReserve()) {
    return false;
  }
  if (low_on_space_ && reserve_bytes_ > 0) {
    log().info("room again on the disk: reserve of {} bytes restored", reserve_bytes_);
  }
  low_on_space_ = false;
  return true;
}

void Journal::recordCapture(const v1::Envelope& card_captured, std::int64_t now_ms,
                            std::string_view note) {
  if (!card_captured.has_card_captured()) {
    throw JournalError("journal: recordCapture needs a CardCaptured envelope");
  }
  const auto& captured = card_captured.card_captured();
  const std::string& id = captured.deposit_id();
  write([&] {
    Statement(db_,
              "INSERT INTO deposits (deposit_id, created_at_ms, updated_at_ms, state, location, "
              "notes) VALUES (?1, ?2, ?2, ?3, 'tray', ?4)")
        .bind(1, id)
        .bind(2, now_ms)
        .bind(3, stateName(DepositState::kAwaiting))
        .bind(4, note)
        .run();
    Statement image(db_,
                    "INSERT INTO images (deposit_id, face, seq, jpeg, width_px, height_px, "
                    "captured_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    auto addFrames = [&](const char* face, const auto& frames) {
      int seq = 0;
      for (const auto& f : frames) {
        image.bind(1, id)
            .bind(2, face)
            .bind(3, seq++)
            .bindBlob(4, f.jpeg())
            .bind(5, static_cast<std::int64_t>(f.width_px()))
            .bind(6, static_cast<std::int64_t>(f.height_px()))
            .bind(7, f.captured_at_ms())
            .run();
        image.reset();
      }
    };
    addFrames("front", captured.front());
    addFrames("back", captured.back());
    v1::Envelope slim = card_captured;
    slim.mutable_card_captured()->clear_front();
    slim.mutable_card_captured()->clear_back();
    insertOutbox(id, slim, now_ms);
  });
}

bool Journal::recordDisposition(std::string_view deposit_id, const Decision& decision,
                                std::int64_t now_ms) {
  bool recorded = false;
  write([&] {
    auto record = deposit(deposit_id);
    if (!record || record->decision) {
      return;
    }
    auto state = record->state;
    if (state == DepositState::kAwaiting) {
      state = DepositState::kDecided;
    } else if (state == DepositState::kPending) {
      state = DepositState::kStored;
    }
    Statement(db_,
              "UPDATE deposits SET disposition = ?2, last4 = ?3, decision_reason = ?4, state = ?5, "
              "updated_at_ms = ?6 WHERE deposit_id = ?1")
        .bind(1, deposit_id)
        .bind(2, decision.isStore() ? "store" : "difficult")
        .bind(3, decision.last4)
        .bind(4, decision.reason)
        .bind(5, stateName(state))
        .bind(6, now_ms)
        .run();
    recorded = true;
  });
  return recorded;
}

void Journal::captureAnswered(std::string_view deposit_id) {
  write([&] {
    Statement(db_, "UPDATE outbox SET acked = 1 WHERE deposit_id = ?1 AND type = ?2")
        .bind(1, deposit_id)
        .bind(2, typeName(v1::Envelope::kCardCaptured))
        .run();
    Statement(db_, "DELETE FROM images WHERE deposit_id = ?1").bind(1, deposit_id).run();
  });
  // The photos also sit in the write-ahead log until it is checkpointed: fold it into the
  // database (where secure_delete zeroed them) and empty it. On a full disk that waits for the
  // next answer: the photos stay in the journal's files a little longer, never in a record.
  try {
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (const JournalFull& e) {
    log().warn("cannot fold the write-ahead log into the journal yet: {}", e.what());
  }
}

void Journal::beginMove(std::string_view deposit_id, const Location& from, const Location& to,
                        std::string_view note, std::int64_t now_ms) {
  write([&] {
    const auto notes = notesOf(deposit_id);
    if (!notes) {
      throw JournalError("journal: move of unknown deposit " + std::string(deposit_id));
    }
    Statement(db_,
              "INSERT INTO moves (deposit_id, from_location, to_location, began_at_ms, state) "
              "VALUES (?1, ?2, ?3, ?4, 'begun')")
        .bind(1, deposit_id)
        .bind(2, from.text())
        .bind(3, to.text())
        .bind(4, now_ms)
        .run();
    Statement(db_, "UPDATE deposits SET notes = ?2, updated_at_ms = ?3 WHERE deposit_id = ?1")
        .bind(1, deposit_id)
        .bind(2, joinNotes(*notes, note))
        .bind(3, now_ms)
        .run();
  });
}

void Journal::finishMove(std::string_view deposit_id, const Location& at, std::int64_t now_ms) {
  write([&] {
    Statement(db_,
              "UPDATE moves SET state = 'done', at_location = ?2, ended_at_ms = ?3 "
              "WHERE deposit_id = ?1 AND state = 'begun'")
        .bind(1, deposit_id)
        .bind(2, at.text())
        .bind(3, now_ms)
        .run();
    Statement(db_,
              "UPDATE deposits SET location = ?2, updated_at_ms = ?3, "
              "state = CASE WHEN disposition = '' THEN ?4 ELSE ?5 END WHERE deposit_id = ?1")
        .bind(1, deposit_id)
        .bind(2, at.text())
        .bind(3, now_ms)
        .bind(4, stateName(DepositState::kPending))
        .bind(5, stateName(DepositState::kStored))
        .run();
  });
}

void Journal::failMove(std::string_view deposit_id, const Location& at, std::string_view error,
                       std::int64_t now_ms) {
  write([&] {
    Statement(db_,
              "UPDATE moves SET state = 'failed', at_location = ?2, error = ?3, ended_at_ms = ?4 "
              "WHERE deposit_id = ?1 AND state = 'begun'")
        .bind(1, deposit_id)
        .bind(2, at.text())
        .bind(3, error)
        .bind(4, now_ms)
        .run();
    const std::string notes = notesOf(deposit_id).value_or("");
    Statement(db_,
              "UPDATE deposits SET location = ?2, state = ?3, notes = ?4, flagged = 1, "
              "updated_at_ms = ?5 WHERE deposit_id = ?1")
        .bind(1, deposit_id)
        .bind(2, at.text())
        .bind(3, stateName(DepositState::kFault))
        .bind(4, joinNotes(notes, "move failed: " + std::string(error)))
        .bind(5, now_ms)
        .run();
  });
}

void Journal::abandonMove(std::string_view deposit_id, std::int64_t now_ms) {
  write([&] {
    Statement(
        db_,
        "UPDATE moves SET state = 'failed', error = 'interrupted', at_location = from_location, "
        "ended_at_ms = ?2 WHERE deposit_id = ?1 AND state = 'begun'")
        .bind(1, deposit_id)
        .bind(2, now_ms)
        .run();
  });
}

void Journal::resume(std::string_view deposit_id, std::int64_t now_ms) {
  write([&] {
    Statement(db_,
              "UPDATE deposits SET location = 'tray', updated_at_ms = ?2, "
              "state = CASE WHEN disposition = '' THEN ?3 ELSE ?4 END WHERE deposit_id = ?1")
        .bind(1, deposit_id)
        .bind(2, now_ms)
        .bind(3, stateName(DepositState::kAwaiting))
        .bind(4, stateName(DepositState::kDecided))
        .run();
  });
}

void Journal::flag(std::string_view deposit_id, std::string_view why) {
  write([&] {
    const auto notes = notesOf(deposit_id);
    if (!notes) {
      return;
    }
    Statement(db_, "UPDATE deposits SET flagged = 1, notes = ?2 WHERE deposit_id = ?1")
        .bind(1, deposit_id)
        .bind(2, joinNotes(*notes, why))
        .run();
  });
}

void Journal::recordRestock(std::string_view deposit_id, std::string_view last4,
                            std::int64_t now_ms) {
  write([&] {
    const std::string notes = joinNotes(notesOf(deposit_id).value_or(""), "restocked");
    Statement(db_,
              "INSERT INTO deposits (deposit_id, created_at_ms, updated_at_ms, state, location, "
              "disposition, last4, decision_reason, notes, flagged) "
              "VALUES (?1, ?2, ?2, ?3, 'tray', 'store', ?4, ?5, ?6, 0) "
              "ON CONFLICT (deposit_id) DO UPDATE SET updated_at_ms = ?2, state = ?3, "
              "location = 'tray', disposition = 'store', last4 = ?4, decision_reason = ?5, "
              "notes = ?6, flagged = 0")
        .bind(1, deposit_id)
        .bind(2, now_ms)
        .bind(3, stateName(DepositState::kDecided))
        .bind(4, last4)
        .bind(5, "resolved by an operator")
        .bind(6, notes)
        .run();
    Statement(db_, "DELETE FROM outbox WHERE deposit_id = ?1 AND type = ?2")
        .bind(1, deposit_id)
        .bind(2, typeName(v1::Envelope::kCardStored))
        .run();
  });
}

v1::Envelope Journal::enqueue(std::string_view deposit_id, const v1::Envelope& env,
                              std::int64_t now_ms) {
  v1::Envelope queued_env;
  write([&] {
    if (auto existing = firstQueued(deposit_id, wire::bodyName(env))) {
      queued_env = std::move(*existing);
      return;
    }
    insertOutbox(deposit_id, env, now_ms);
    queued_env = env;
  });
  return queued_env;
}

std::optional<v1::Envelope> Journal::firstQueued(std::string_view key,
                                                 std::string_view type) const {
  Statement find(db_,
                 "SELECT envelope FROM outbox WHERE deposit_id = ?1 AND (?2 = '' OR type = ?2) "
                 "ORDER BY seq LIMIT 1");
  find.bind(1, key).bind(2, type);
  if (!find.step()) {
    return std::nullopt;
  }
  v1::Envelope env;
  if (!env.ParseFromString(find.blob(0))) {
    throw JournalError("journal: unreadable outbox entry for " + std::string(key));
  }
  return env;
}

void Journal::insertOutbox(std::string_view key, const v1::Envelope& env, std::int64_t now_ms) {
  Statement(db_,
            "INSERT INTO outbox (message_id, deposit_id, type, envelope, created_at_ms) "
            "VALUES (?1, ?2, ?3, ?4, ?5)")
      .bind(1, env.message_id())
      .bind(2, key)
      .bind(3, wire::bodyName(env))
      .bindBlob(4, env.SerializeAsString())
      .bind(5, now_ms)
      .run();
}

bool Journal::markAcked(std::string_view message_id, std::string_view error) {
  // A CardCaptured is answered by its Disposition (captureAnswered), not by an Ack, unless the
  // Ack refuses it: a plain Ack must not stop the resending before the decision has arrived.
  Statement update(db_,
                   "UPDATE outbox SET acked = 1, error = ?2 WHERE message_id = ?1 AND acked = 0 "
                   "AND (type != ?3 OR ?2 != '')");
  bool acked = false;
  write([&] {
    update.reset();
    update.bind(1, message_id).bind(2, error).bind(3, typeName(v1::Envelope::kCardCaptured)).run();
    acked = sqlite3_changes(db_) > 0;
  });
  return acked;
}

void Journal::recordReleaseAsked(std::string_view request_id, ReleaseKind kind, int slot,
                                 std::int64_t now_ms) {
  write([&] {
    Statement(db_,
              "INSERT INTO releases (request_id, kind, slot, state, created_at_ms, updated_at_ms) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (request_id) DO NOTHING")
        .bind(1, request_id)
        .bind(2, kindName(kind))
        .bind(3, kind == ReleaseKind::kBin ? -1 : slot)
        .bind(4, releaseStateName(ReleaseState::kAsked))
        .bind(5, now_ms)
        .run();
  });
}

void Journal::recordReleaseClosed(std::string_view request_id, ReleaseState state,
                                  std::string_view detail, std::int64_t now_ms) {
  write([&] {
    Statement(db_,
              "UPDATE releases SET state = ?2, detail = ?3, updated_at_ms = ?4 "
              "WHERE request_id = ?1")
        .bind(1, request_id)
        .bind(2, releaseStateName(state))
        .bind(3, detail)
        .bind(4, now_ms)
        .run();
  });
}

void Journal::recordReleaseOpening(std::string_view request_id, std::string_view deposit_id,
                                   std::int64_t now_ms) {
  write([&] {
    Statement(db_,
              "UPDATE releases SET state = ?2, deposit_id = ?3, updated_at_ms = ?4, "
              "detail = CASE WHEN kind != 'bin' THEN 'releasing slot:' || slot || "
              "' for deposit ' || ?3 ELSE 'releasing the bin' END WHERE request_id = ?1")
        .bind(1, request_id)
        .bind(2, releaseStateName(ReleaseState::kOpening))
        .bind(3, deposit_id)
        .bind(4, now_ms)
        .run();
  });
}

void Journal::recordReleaseOpen(std::string_view request_id, std::int64_t now_ms) {
  write([&] {
    Statement(db_, "UPDATE releases SET state = ?2, updated_at_ms = ?3 WHERE request_id = ?1")
        .bind(1, request_id)
        .bind(2, releaseStateName(ReleaseState::kOpen))
        .bind(3, now_ms)
        .run();
  });
}

v1::Envelope Journal::finishRelease(std::string_view request_id, ReleaseState outcome,
                                    std::string_view detail, v1::Envelope report,
                                    std::int64_t now_ms) {
  v1::Envelope queued_env;
  write([&] {
    v1::Envelope env = report;
    auto record = release(request_id);
    if (!record) {
      throw JournalError("journal: outcome of unknown release " + std::string(request_id));
    }
    Statement(db_,
              "UPDATE releases SET state = ?2, detail = ?3, updated_at_ms = ?4 "
              "WHERE request_id = ?1")
        .bind(1, request_id)
        .bind(2, releaseStateName(outcome))
        .bind(3, detail)
        .bind(4, now_ms)
        .run();
    if (outcome == ReleaseState::kTaken) {
      Statement(db_,
                "UPDATE deposits SET location = 'collected', state = ?2, updated_at_ms = ?3 "
                "WHERE deposit_id = ?1 AND location = ?4")
          .bind(1, record->deposit_id)
          .bind(2, stateName(DepositState::kCollected))
          .bind(3, now_ms)
          .bind(4, Location::inSlot(record->slot).text())
          .run();
    } else if (outcome == ReleaseState::kEmptied) {
      env.mutable_bin_emptied()->clear_deposit_ids();
      for (const auto& id : binDeposits()) {
        env.mutable_bin_emptied()->add_deposit_ids(id);
      }
      Statement(db_,
                "UPDATE deposits SET location = 'collected', state = ?1, updated_at_ms = ?2 "
                "WHERE location = 'bin'")
          .bind(1, stateName(DepositState::kCollected))
          .bind(2, now_ms)
          .run();
    }
    // Keyed by the request id: one report per door opened.
    if (auto existing = firstQueued(request_id, "")) {
      queued_env = std::move(*existing);
      return;
    }
    insertOutbox(request_id, env, now_ms);
    queued_env = std::move(env);
  });
  return queued_env;
}

std::string returnKey(std::string_view request_id, int slot) {
  return std::string(request_id) + "/" + Location::inSlot(slot).text();
}

v1::Envelope Journal::finishReturns(std::string_view request_id, const std::set<int>& taken,
                                    std::int64_t now_ms) {
  const std::string report_key = std::string(request_id) + "/return";
  v1::Envelope queued_env;
  write([&] {
    if (auto existing = firstQueued(report_key, "")) {
      queued_env = std::move(*existing);
      return;
    }
    auto env = wire::makeEnvelope(now_ms);
    env.mutable_return_collected()->set_request_id(std::string(request_id));
    const std::string prefix = std::string(request_id) + "/";
    for (const auto& r : queryReleases("WHERE kind = 'return' AND substr(request_id, 1, "
                                       "length(?1)) = ?1",
                                       prefix)) {
      // Only a slot whose latch was released (or may have been) can have been emptied.
      const bool unlocked = r.state == ReleaseState::kOpening || r.state == ReleaseState::kOpen;
      const bool gone = unlocked && taken.contains(r.slot);
      if (unlocked || r.state == ReleaseState::kAsked) {
        Statement(db_,
                  "UPDATE releases SET state = ?2, updated_at_ms = ?3 WHERE request_id = ?1")
            .bind(1, r.request_id)
            .bind(2, releaseStateName(gone       ? ReleaseState::kTaken
                                      : unlocked ? ReleaseState::kNotTaken
                                                 : ReleaseState::kNotOpened))
            .bind(3, now_ms)
            .run();
      }
      if (!gone) {
        continue;
      }
      Statement(db_,
                "UPDATE deposits SET location = 'collected', state = ?2, updated_at_ms = ?3 "
                "WHERE deposit_id = ?1 AND location = ?4")
          .bind(1, r.deposit_id)
          .bind(2, stateName(DepositState::kCollected))
          .bind(3, now_ms)
          .bind(4, Location::inSlot(r.slot).text())
          .run();
      env.mutable_return_collected()->add_deposit_ids(r.deposit_id);
    }
    insertOutbox(report_key, env, now_ms);
    queued_env = std::move(env);
  });
  return queued_env;
}

std::vector<std::string> Journal::binDeposits() const {
  std::vector<std::string> out;
  Statement rows(db_,
                 "SELECT deposit_id FROM deposits WHERE location = 'bin' "
                 "ORDER BY created_at_ms, rowid");
  while (rows.step()) {
    out.push_back(rows.text(0));
  }
  return out;
}

namespace {
constexpr const char* kReleaseColumns =
    "SELECT request_id, kind, slot, deposit_id, state, created_at_ms, updated_at_ms, detail "
    "FROM releases ";
}  // namespace

std::optional<ReleaseRecord> Journal::release(std::string_view request_id) const {
  auto rows = queryReleases("WHERE request_id = ?1", request_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return std::move(rows.front());
}

std::vector<ReleaseRecord> Journal::unfinishedReleases() const {
  return queryReleases("WHERE state IN ('asked', 'opening', 'open')", {});
}

std::vector<ReleaseRecord> Journal::queryReleases(const char* where, std::string_view arg) const {
  std::string sql = kReleaseColumns;
  sql += where;
  sql += " ORDER BY created_at_ms, rowid";
  Statement rows(db_, sql.c_str());
  if (!arg.empty()) {
    rows.bind(1, arg);
  }
  std::vector<ReleaseRecord> out;
  while (rows.step()) {
    ReleaseRecord r;
    r.request_id = rows.text(0);
    const std::string kind = rows.text(1);
    r.kind = kind == "bin"      ? ReleaseKind::kBin
             : kind == "return" ? ReleaseKind::kReturn
                                : ReleaseKind::kPickup;
    r.slot = static_cast<int>(rows.integer(2));
    r.deposit_id = rows.text(3);
    r.state = parseReleaseState(rows.text(4)).value_or(ReleaseState::kAsked);
    r.created_at_ms = rows.integer(5);
    r.updated_at_ms = rows.integer(6);
    r.detail = rows.text(7);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<v1::Envelope> Journal::unackedOutbox() const {
  std::vector<v1::Envelope> out;
  Statement rows(db_, "SELECT deposit_id, envelope FROM outbox WHERE acked = 0 ORDER BY seq");
  Statement images(db_,
                   "SELECT face, jpeg, width_px, height_px, captured_at_ms FROM images "
                   "WHERE deposit_id = ?1 ORDER BY face DESC, seq");  // front before back
  while (rows.step()) {
    v1::Envelope env;
    if (!env.ParseFromString(rows.blob(1))) {
      throw JournalError("journal: unreadable outbox entry for " + rows.text(0));
    }
    if (env.has_card_captured()) {
      auto* captured = env.mutable_card_captured();
      images.reset();
      images.bind(1, rows.text(0));
      while (images.step()) {
        auto* frame = images.text(0) == "front" ? captured->add_front() : captured->add_back();
        frame->set_jpeg(images.blob(1));
        frame->set_width_px(static_cast<std::uint32_t>(images.integer(2)));
        frame->set_height_px(static_cast<std::uint32_t>(images.integer(3)));
        frame->set_captured_at_ms(images.integer(4));
      }
    }
    out.push_back(std::move(env));
  }
  return out;
}

std::optional<v1::Envelope> Journal::queued(std::string_view deposit_id,
                                            v1::Envelope::BodyCase type) const {
  return firstQueued(deposit_id, typeName(type));
}

std::optional<OutboxRef> Journal::outboxRef(std::string_view message_id) const {
  Statement find(db_, "SELECT deposit_id, type FROM outbox WHERE message_id = ?1");
  find.bind(1, message_id);
  if (!find.step()) {
    return std::nullopt;
  }
  const auto* field = v1::Envelope::descriptor()->FindFieldByName(find.text(1));
  return OutboxRef{find.text(0), field != nullptr
                                     ? static_cast<v1::Envelope::BodyCase>(field->number())
                                     : v1::Envelope::BODY_NOT_SET};
}

std::set<int> Journal::occupiedSlots() const {
  std::set<int> slots;
  Statement rows(db_, "SELECT location FROM deposits WHERE location LIKE 'slot:%'");
  while (rows.step()) {
    if (auto loc = Location::parse(rows.text(0))) {
      slots.insert(loc->slot);
    }
  }
  return slots;
}

int Journal::binCount() const {
  Statement count(db_, "SELECT count(*) FROM deposits WHERE location = 'bin'");
  count.step();
  return static_cast<int>(count.integer(0));
}

std::vector<DepositRecord> Journal::queryDeposits(const char* where, std::string_view arg) const {
  std::string sql =
      "SELECT deposit_id, created_at_ms, state, location, disposition, last4, decision_reason, "
      "notes, flagged FROM deposits ";
  sql += where;
  sql += " ORDER BY created_at_ms, rowid";
  Statement rows(db_, sql.c_str());
  if (!arg.empty()) {
    rows.bind(1, arg);
  }
  std::vector<DepositRecord> out;
  while (rows.step()) {
    DepositRecord r;
    r.deposit_id = rows.text(0);
    r.created_at_ms = rows.integer(1);
    r.state = parseState(rows.text(2)).value_or(DepositState::kFault);
    r.location = Location::parse(rows.text(3)).value_or(Location::unknown());
    const std::string disposition = rows.text(4);
    if (disposition == "store") {
      r.decision = Decision::store(rows.text(5));
    } else if (disposition == "difficult") {
      r.decision = Decision::difficult(rows.text(6));
    }
    r.reason = joinNotes(rows.text(6), rows.text(7));
    r.flagged = rows.integer(8) != 0;
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<DepositRecord> Journal::deposit(std::string_view deposit_id) const {
  auto rows = queryDeposits("WHERE deposit_id = ?1", deposit_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return std::move(rows.front());
}

std::optional<Location> Journal::whereIs(std::string_view deposit_id) const {
  auto record = deposit(deposit_id);
  if (!record) {
    return std::nullopt;
  }
  return record->location;
}

std::vector<DepositRecord> Journal::deposits() const { return queryDeposits("", {}); }

std::vector<DepositRecord> Journal::deposits(DepositState state) const {
  return queryDeposits("WHERE state = ?1", stateName(state));
}

std::vector<OpenMove> Journal::openMoves() const {
  std::vector<OpenMove> out;
  Statement rows(db_,
                 "SELECT deposit_id, from_location, to_location, began_at_ms FROM moves "
                 "WHERE state = 'begun' ORDER BY id");
  while (rows.step()) {
    out.push_back(
        OpenMove{rows.text(0), Location::parse(rows.text(1)).value_or(Location::unknown()),
                 Location::parse(rows.text(2)).value_or(Location::unknown()), rows.integer(3)});
  }
  return out;
}

std::optional<std::string> Journal::notesOf(std::string_view deposit_id) const {
  Statement find(db_, "SELECT notes FROM deposits WHERE deposit_id = ?1");
  find.bind(1, deposit_id);
  if (!find.step()) {
    return std::nullopt;
  }
  return find.text(0);
}

int Journal::imageCount(std::string_view deposit_id) const {
  Statement count(db_, "SELECT count(*) FROM images WHERE deposit_id = ?1");
  count.bind(1, deposit_id);
  count.step();
  return static_cast<int>(count.integer(0));
}

v1::Inventory Journal::inventory(int slots_total, int bin_capacity, std::int64_t now_ms) const {
  v1::Inventory out;
  out.set_taken_at_ms(now_ms);
  out.set_slots_total(static_cast<std::uint32_t>(std::max(slots_total, 0)));
  out.set_bin_capacity(static_cast<std::uint32_t>(std::max(bin_capacity, 0)));
  // A deferred (read) transaction: the counters, the open moves and the deposits agree.
  exec("BEGIN");
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db_};

  // Every move adds a row when it begins and changes it when it ends: both count, so the number
  // grows with every physical change the journal records.
  Statement counters(db_,
                     "SELECT (SELECT count(*) FROM moves) + "
                     "(SELECT count(*) FROM moves WHERE state <> 'begun'), "
                     "(SELECT coalesce(max(updated_at_ms), 0) FROM deposits)");
  counters.step();
  out.set_journal_seq(static_cast<std::uint64_t>(counters.integer(0)));
  out.set_journal_updated_at_ms(counters.integer(1));

  std::vector<OpenMove> open = openMoves();
  std::vector<v1::InventoryCard> slots;
  for (const auto& d : deposits()) {
    if (d.state == DepositState::kCollected) {
      continue;  // out of the box
    }
    const auto move = std::find_if(open.begin(), open.end(),
                                   [&](const OpenMove& m) { return m.deposit_id == d.deposit_id; });
    const bool certain = move == open.end() && (d.location.kind == Location::Kind::kSlot ||
                                                d.location.kind == Location::Kind::kBin ||
                                                d.location.kind == Location::Kind::kTray);
    if (!certain) {
      auto* u = out.add_uncertain();
      u->set_deposit_id(d.deposit_id);
      u->set_last_known(d.location.text());
      u->set_detail(
          move != open.end()
              ? "move from " + move->from.text() + " to " + move->to.text() + " not finished"
              : std::string(stateName(d.state)) + (d.reason.empty() ? "" : ": " + d.reason));
      continue;
    }
    v1::InventoryCard card;
    card.set_deposit_id(d.deposit_id);
    card.set_pending(d.state == DepositState::kPending);
    card.set_flagged(d.flagged);
    if (d.location.kind == Location::Kind::kSlot) {
      card.set_slot(static_cast<std::uint32_t>(d.location.slot));
      slots.push_back(std::move(card));
    } else if (d.location.kind == Location::Kind::kBin) {
      *out.add_bin() = std::move(card);
    } else {
      *out.add_tray() = std::move(card);
    }
  }
  std::stable_sort(slots.begin(), slots.end(),
                   [](const auto& a, const auto& b) { return a.slot() < b.slot(); });
  for (auto& card : slots) {
    *out.add_slots() = std::move(card);
  }
  return out;
}

}  // namespace lostcard::kiosk
