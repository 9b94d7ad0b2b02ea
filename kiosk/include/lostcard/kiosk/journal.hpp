#pragma once
// The kiosk's journal: the truth about every card the box has taken and where it physically is,
// kept in SQLite (WAL, synchronous=FULL) so that it survives a power cut at any instant.
//
// It holds the deposits (state, decision, location), the images of a deposit until the cloud has
// answered, every physical move (written before the sorter moves and again after, so a move
// interrupted by a power cut is found at start-up) and the outbox of messages for the cloud
// (resent until answered).
//
//   Journal journal("/var/lib/lostcard/journal.db");
//   journal.recordCapture(env, now_ms);               // env holds a CardCaptured with frames
//   journal.recordDisposition(id, Decision::store("1234"), now_ms);
//   journal.captureAnswered(id);                       // CardCaptured done, images deleted
//   journal.beginMove(id, Location::tray(), Location::inSlot(0), "", now_ms);
//   journal.finishMove(id, Location::inSlot(0), now_ms);
//   for (const auto& env : journal.unackedOutbox()) { send(env); }
//
// Errors of the database itself (corrupt file, bad schema) throw JournalError: the daemon cannot
// go on without knowing where its cards are.
//
// A full disk is expected, and survivable. The journal keeps a reserve: a file of
// Options::reserve_bytes next to it (FILE-reserve), written in full at start-up. When a write
// fails for want of space (SQLITE_FULL) or with an I/O error, the journal deletes the reserve and
// tries the write once more, so the record in hand (a card's photos, its move) is kept. From then
// on lowOnSpace() is true: the kiosk stops taking cards and calls restoreReserve() now and then,
// which succeeds once there is room for the reserve again. A write that fails even so throws
// JournalFull and changes nothing; the caller keeps what it wanted to write and tries again
// later.
//
//   if (journal.lowOnSpace() && journal.restoreReserve()) { /* room again: take cards */ }
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/kiosk/types.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"

struct sqlite3;

namespace lostcard::kiosk {

class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A write failed for want of space (or with an I/O error), reserve or not. Nothing was written;
// the journal is intact and the same write may succeed later.
class JournalFull : public JournalError {
 public:
  using JournalError::JournalError;
};

enum class DepositState {
  kAwaiting,   // on the tray, CardCaptured sent, no Disposition yet
  kDecided,    // Disposition known, card not yet where it belongs
  kPending,    // moved to a slot while the cloud was away; Disposition still to come
  kStored,     // in its slot or in the bin, decision known; CardStored queued
  kFault,      // a move failed: on the tray, jammed or lost
  kCollected,  // out of the box: its holder took it from its slot, or an operator from the bin
};

// A door opened at the box for someone: a slot for its cardholder (kPickup), the bin for an
// operator (kBin), or a slot holding a card to return to its issuer, for an operator (kReturn;
// its request_id is returnKey(operator request id, slot)). Journaled from the moment the request
// leaves for the cloud (never with the code typed), before the door unlocks, and with its
// outcome, so a power cut at any instant leaves a known state: see Controller.
enum class ReleaseKind { kPickup, kBin, kReturn };
// The journal's key of the return slot `slot` opened for operator request `request_id`.
std::string returnKey(std::string_view request_id, int slot);
enum class ReleaseState {
  kAsked,       // the code went to the cloud; no answer yet
  kRefused,     // the cloud said no (the result is in detail); nothing opened
  kOpening,     // the cloud said open; journaled before the latch is released
  kOpen,        // the latch released; waiting for the card to be taken / the bin door to shut
  kTaken,       // pickup: the slot's sensor saw the card go (the deposit is collected)
  kNotTaken,    // pickup: the card was still there when the hold time ran out
  kDoorFailed,  // the latch did not release
  kNotOpened,   // an OPEN the kiosk did not act on (answer after a restart or a give-up)
  kEmptied,     // bin: the door was opened and shut again (the bin's deposits are collected)
  kUnused,      // bin: the door was never opened before the hold time ran out
};
std::string_view releaseStateName(ReleaseState state);
std::optional<ReleaseState> parseReleaseState(std::string_view name);

struct ReleaseRecord {
  std::string request_id;
  ReleaseKind kind = ReleaseKind::kPickup;
  int slot = -1;           // kPickup: the 0-based slot the holder named
  std::string deposit_id;  // kPickup, once the cloud named it
  ReleaseState state = ReleaseState::kAsked;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::string detail;
};

std::string_view stateName(DepositState state);
std::optional<DepositState> parseState(std::string_view name);

struct DepositRecord {
  std::string deposit_id;
  std::int64_t created_at_ms = 0;
  DepositState state = DepositState::kAwaiting;
  Location location;
  std::optional<Decision> decision;
  // The decision's reason plus the box's own notes ("capture failed", "box full", ...).
  std::string reason;
  bool flagged = false;  // needs an operator (e.g. a difficult card kept in a slot)
};

// Which deposit and which kind of message an outbox entry is.
struct OutboxRef {
  std::string deposit_id;
  v1::Envelope::BodyCase type = v1::Envelope::BODY_NOT_SET;
};

// A move written as begun and never finished: the box stopped while the sorter was moving.
struct OpenMove {
  std::string deposit_id;
  Location from;
  Location to;
  std::int64_t began_at_ms = 0;
};

class Journal {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  struct Options {
    Mode mode = Mode::kReadWrite;
    // Room kept free for the record in hand when the disk fills (see above); 0: no reserve.
    std::int64_t reserve_bytes = 4 * 1024 * 1024;
    // The SQLite VFS the journal and its reserve use; empty: SQLite's default. Tests name one
    // that models a small disk.
    std::string vfs;
  };

  // Opens (creating when kReadWrite) the journal file. Throws JournalError. A disk too full for
  // the reserve is not an error: the journal starts low on space.
  explicit Journal(const std::filesystem::path& file, Mode mode = Mode::kReadWrite);
  Journal(const std::filesystem::path& file, Options options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // --- writes; each is one transaction ---

  // A new deposit on the tray: the deposit row, one image row per frame, and the CardCaptured
  // envelope in the outbox (stored without its frames; unackedOutbox() puts them back).
  // `note` records why there are no frames, if so.
  void recordCapture(const v1::Envelope& card_captured, std::int64_t now_ms,
                     std::string_view note = {});
  // The first decision for a deposit holds: returns false (and changes nothing) when the deposit
  // is unknown or already has one. A pending deposit becomes stored.
  bool recordDisposition(std::string_view deposit_id, const Decision& decision,
                         std::int64_t now_ms);
  // The cloud answered the deposit's CardCaptured: it leaves the outbox and its images go.
  void captureAnswered(std::string_view deposit_id);
  // Recorded before the sorter moves. `note` is appended to the deposit's reason.
  void beginMove(std::string_view deposit_id, const Location& from, const Location& to,
                 std::string_view note, std::int64_t now_ms);
  // The open move ended with the card at `at`: the deposit becomes stored (decision known) or
  // pending (no decision yet).
  void finishMove(std::string_view deposit_id, const Location& at, std::int64_t now_ms);
  // The open move failed; the card is at `at` (tray, jam, unknown). The deposit is a fault.
  void failMove(std::string_view deposit_id, const Location& at, std::string_view error,
                std::int64_t now_ms);
  // Start-up: the sensors show the card of an open move still where it started (the power went
  // before the sorter moved it). The move is closed as interrupted; the deposit is unchanged.
  void abandonMove(std::string_view deposit_id, std::int64_t now_ms);
  // Start-up: a faulted deposit's card is back on the tray (e.g. the sorter refused it). It is
  // handled again from its decision: state decided (or awaiting), location tray.
  void resume(std::string_view deposit_id, std::int64_t now_ms);
  void flag(std::string_view deposit_id, std::string_view why);
  // An operator put a card resolved by hand back on the tray (restock): the deposit (known to
  // the journal, usually collected from the bin, or new to it) is on the tray, decided "store"
  // with `last4`, unflagged, and its earlier CardStored (of the bin) leaves the outbox so the
  // CardStored of its slot can be queued. Its move to a slot is journaled as any other.
  void recordRestock(std::string_view deposit_id, std::string_view last4, std::int64_t now_ms);
  // Queues an envelope for the cloud, unless one of the same type for the same deposit is
  // already queued; returns the queued one (so a repeat keeps the first message_id).
  v1::Envelope enqueue(std::string_view deposit_id, const v1::Envelope& env, std::int64_t now_ms);
  // The cloud acknowledged `message_id` (error non-empty: refused for good). Unknown ids are
  // ignored, and so is a plain Ack of a CardCaptured: only its Disposition (captureAnswered)
  // stops its resending. Returns whether a queued message was acknowledged.
  bool markAcked(std::string_view message_id, std::string_view error = {});

  // --- doors opened for people (see ReleaseRecord) ---

  // A request (its id, the slot named; never the code) sent to the cloud.
  void recordReleaseAsked(std::string_view request_id, ReleaseKind kind, int slot,
                          std::int64_t now_ms);
  // The cloud's answer that opens nothing (kRefused, detail: the result), or an OPEN not acted on
  // (kNotOpened); nothing else changes.
  void recordReleaseClosed(std::string_view request_id, ReleaseState state, std::string_view detail,
                           std::int64_t now_ms);
  // Before the latch is released: "releasing slot N for deposit D" (kOpening); then kOpen once
  // it released.
  void recordReleaseOpening(std::string_view request_id, std::string_view deposit_id,
                            std::int64_t now_ms);
  void recordReleaseOpen(std::string_view request_id, std::int64_t now_ms);
  // The outcome of an opening, with its report for the cloud queued in the same transaction
  // (outbox keyed by the request id; returns the queued envelope). kTaken also takes the deposit
  // out of its slot; kEmptied takes every deposit in the bin out of it (`deposit_ids` returns
  // them, for the report) and the report is built here: `report` gets its BinEmptied list.
  v1::Envelope finishRelease(std::string_view request_id, ReleaseState outcome,
                             std::string_view detail, v1::Envelope report, std::int64_t now_ms);
  // The return slots opened for operator request `request_id` are settled (the operator's
  // session ended): those in `taken` (slot indexes whose sensor saw the card go) become kTaken
  // and their deposits leave the journal's slots; the others kNotTaken. The ReturnCollected
  // report naming the deposits taken is queued in the same transaction (once per request) and
  // returned.
  v1::Envelope finishReturns(std::string_view request_id, const std::set<int>& taken,
                             std::int64_t now_ms);
  // The bin's deposits now (for a BinEmptied report).
  std::vector<std::string> binDeposits() const;
  std::optional<ReleaseRecord> release(std::string_view request_id) const;
  // Requests still asked or open (not yet with an outcome), oldest first.
  std::vector<ReleaseRecord> unfinishedReleases() const;

  // --- reads ---

  // Messages still to be answered, oldest first, CardCaptured with its frames.
  std::vector<v1::Envelope> unackedOutbox() const;
  // The queued (answered or not) envelope of this type for this deposit.
  std::optional<v1::Envelope> queued(std::string_view deposit_id,
                                     v1::Envelope::BodyCase type) const;
  std::optional<OutboxRef> outboxRef(std::string_view message_id) const;
  std::set<int> occupiedSlots() const;
  int binCount() const;
  std::optional<DepositRecord> deposit(std::string_view deposit_id) const;
  std::optional<Location> whereIs(std::string_view deposit_id) const;
  // Every deposit, oldest first; or only those in `state`.
  std::vector<DepositRecord> deposits() const;
  std::vector<DepositRecord> deposits(DepositState state) const;
  std::vector<OpenMove> openMoves() const;
  // What each place holds, for the cloud's reconciliation (an Inventory message, see
  // kiosk_stream.proto): occupied slots, the bin, the tray, and the cards whose place is uncertain
  // (a jam, a card not found, an open move). Read in one transaction, so it is consistent.
  v1::Inventory inventory(int slots_total, int bin_capacity, std::int64_t now_ms) const;
  // Number of image rows kept for a deposit (for tests and diagnostics).
  int imageCount(std::string_view deposit_id) const;

  // --- space ---

  // The reserve is gone (used for a record, or the disk had no room for it at start-up), or a
  // write failed for want of space: the kiosk must not take new cards.
  bool lowOnSpace() const { return low_on_space_; }
  // Writes the reserve again; true (and no longer low on space) when it fits.
  bool restoreReserve();

 private:
  class Statement;

  // The first envelope queued under `key` (a deposit or request id), of body `type` when not
  // empty; throws JournalError when it does not parse.
  std::optional<v1::Envelope> firstQueued(std::string_view key, std::string_view type) const;
  // Queues `env` under `key` (inside write()).
  void insertOutbox(std::string_view key, const v1::Envelope& env, std::int64_t now_ms);
  class Transaction;
  void exec(const char* sql) const;
  // Runs `body` as one write transaction, spending the reserve on a second try when the disk is
  // full. Throws JournalFull when there is no room even so.
  template <class F>
  void write(F&& body);
  bool makeReserve();
  bool releaseReserve();
  std::vector<DepositRecord> queryDeposits(const char* where, std::string_view arg) const;
  std::optional<std::string> notesOf(std::string_view deposit_id) const;
  std::vector<ReleaseRecord> queryReleases(const char* where, std::string_view arg) const;

  sqlite3* db_ = nullptr;
  std::string vfs_;
  std::string reserve_path_;  // SQLite may keep a pointer to the name while the file is open
  std::int64_t reserve_bytes_ = 0;
  bool reserve_held_ = false;
  bool low_on_space_ = false;
};

}  // namespace lostcard::kiosk
