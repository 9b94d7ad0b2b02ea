#pragma once
// The intake state machine: what the box does with a card from the moment the sensor sees it on
// the tray until it rests in a slot or in the difficult-card bin. Pure logic: it does no I/O,
// reads no clock and starts no thread. The caller feeds it events (with the time they happened)
// and carries out the actions it returns, in order; some actions (Capture, MoveTo) are answered
// by the caller with a follow-up event.
//
//   Intake intake(IntakeConfig{.slot_count = 24, .bin_capacity = 100});
//   run(intake.start(now_ms));                                    // open the shutter, greet
//   run(intake.handle(event::CardDetected{newUuid()}, now_ms));   // -> CloseShutter, Capture...
//   run(intake.handle(event::CaptureSucceeded{front, back}, now_ms));
//   run(intake.handle(event::DispositionReceived{id, Decision::store("1234")}, now_ms));
//   run(intake.handle(event::MoveSucceeded{}, now_ms));           // -> JournalMoveDone, SendStored
//
// Rules it decides:
// - One card at a time. The shutter is closed while a card is on the tray, when the box has no
//   room left (no free slot and a full bin) and when the box is out of order.
// - A card to store goes to the lowest free slot; with no free slot, to the bin ("box full").
//   A difficult card goes to the bin; with a full bin, to the lowest free slot, flagged for the
//   operator ("bin full").
// - The camera gets max_capture_attempts tries, capture_retry_ms apart. After that the card is
// journaled and reported
//   with no frames (the cloud answers "bad image") and goes to the bin at once as "capture
//   failed": it never waits on the tray for an answer that cannot be "store".
// - A failed move leaves the card on the tray or jammed: the failure is journaled, the shutter
//   closes and the display says "Out of order" until the box is serviced (the daemon restarts).
// - Offline (offline_timeout_ms > 0): a card whose Disposition has not come within the timeout
//   moves to a free slot as "pending"; when the Disposition comes later, the card is reported
//   in that slot (a difficult one is also flagged for the operator). With no free slot it waits.
// - A Disposition for a deposit the machine is not waiting for is ignored.
// - While an operator's session lasts (OperatorPresent) the shutter stays closed and no card is
//   taken, except one: after RestockArmed (the operator typed '#', a restock number and the
//   card's own number, and the cloud found it to be that deposit's card: controller.hpp) the
//   shutter opens and the next card detected is that deposit, put back by the operator. It is
//   not photographed and not sent to the cloud for recognition (the operator resolved it by
//   hand); it is journaled on the tray (JournalRestock) and goes to the lowest free slot like a
//   card to store, reported with SendStored. The box tells it from a finder's card by the arming
//   alone, which is why the window is kept so narrow: armed only by the authenticated operator
//   standing at the box, only for one card, only with a free slot, and disarmed when that card
//   is in or the session ends. A card that comes any other way is a finder's, and is
//   photographed (after the session, if it waited on the tray).
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lostcard/hw/devices.hpp"
#include "lostcard/kiosk/types.hpp"

namespace lostcard::kiosk {

// What the display says.
inline constexpr std::string_view kTextReady = "Please insert a found card";
inline constexpr std::string_view kTextReading = "Reading card, please wait";
inline constexpr std::string_view kTextThanks = "Thank you";
inline constexpr std::string_view kTextFull = "Box full - please use another box";
inline constexpr std::string_view kTextOutOfOrder = "Out of order";
inline constexpr std::string_view kTextOperator =
    "Operator: #, the restock number and the card's number to put a card back, * to finish";
inline constexpr std::string_view kTextPutBack = "Put the card in the intake";

// Local reasons written to the journal next to the cloud's.
inline constexpr std::string_view kReasonCaptureFailed = "capture failed";
inline constexpr std::string_view kReasonBoxFull = "box full";
inline constexpr std::string_view kReasonBinFull = "bin full";
inline constexpr std::string_view kReasonOffline = "offline";

struct IntakeConfig {
  int slot_count = 24;
  int bin_capacity = 100;  // cards
  int frames_per_face = 2;
  int max_capture_attempts = 3;
  // Pause before trying the camera again (a Tick at or after it starts the retry); 0: at once.
  std::int64_t capture_retry_ms = 200;
  // How long "Thank you" stays on the display after a card was taken.
  std::int64_t thank_you_ms = 3000;
  // 0: a card waits on the tray for its Disposition however long the cloud takes.
  std::int64_t offline_timeout_ms = 0;
};

// The card that was on the tray when the daemon stopped, from the journal.
struct TrayDeposit {
  std::string deposit_id;
  std::int64_t captured_at_ms = 0;
  std::optional<Decision> decision;  // set when the Disposition came but the move did not
};

// What the journal knows at start-up; an empty box by default.
struct IntakeSnapshot {
  std::set<int> occupied_slots;
  int bin_count = 0;
  std::optional<TrayDeposit> tray;
  std::map<std::string, int> pending;  // deposit_id -> slot, waiting for their Disposition
  bool out_of_order = false;
};

namespace event {
struct CardDetected {
  std::string deposit_id;  // a fresh UUID, made by the caller: the deposit's identity from now on
};
struct CaptureSucceeded {
  std::vector<hw::CapturedFrame> front;
  std::vector<hw::CapturedFrame> back;
};
struct CaptureFailed {
  std::string error;
};
struct DispositionReceived {
  std::string deposit_id;
  Decision decision;
};
struct MoveSucceeded {};
struct MoveFailed {
  std::string error;
  Location where;  // where the caller's sensors say the card is now: tray, jam or unknown
};
struct SlotEmptied {
  int slot = -1;
};
struct BinEmptied {};
struct Tick {};
// An operator's session at the box began (true) or ended (false).
struct OperatorPresent {
  bool present = false;
};
// The operator typed the restock number of `deposit_id` and the number of the card in hand,
// checked by the cloud: the next card is that one.
struct RestockArmed {
  std::string deposit_id;
  std::string last4;
};
}  // namespace event

using Event = std::variant<event::CardDetected, event::CaptureSucceeded, event::CaptureFailed,
                           event::DispositionReceived, event::MoveSucceeded, event::MoveFailed,
                           event::SlotEmptied, event::BinEmptied, event::Tick,
                           event::OperatorPresent, event::RestockArmed>;

namespace action {
struct CloseShutter {
  bool operator==(const CloseShutter&) const = default;
};
struct OpenShutter {
  bool operator==(const OpenShutter&) const = default;
};
struct Show {
  std::string text;
  bool operator==(const Show&) const = default;
};
// Photograph both faces; answer with CaptureSucceeded or CaptureFailed.
struct Capture {
  int frames_per_face = 0;
  bool operator==(const Capture&) const = default;
};
// Journal a new deposit on the tray with its images, and queue its CardCaptured.
struct JournalNewDeposit {
  std::string deposit_id;
  std::int64_t detected_at_ms = 0;
  std::int64_t captured_at_ms = 0;
  std::vector<hw::CapturedFrame> front;
  std::vector<hw::CapturedFrame> back;
  std::string capture_error;  // set when the camera gave up: no frames
  bool operator==(const JournalNewDeposit& other) const;
};
// Send the deposit's queued CardCaptured.
struct SendCaptured {
  std::string deposit_id;
  bool operator==(const SendCaptured&) const = default;
};
struct JournalDisposition {
  std::string deposit_id;
  Decision decision;
  bool operator==(const JournalDisposition&) const = default;
};
// Before the move: the journal must know where the card is going.
struct JournalMoveBegin {
  std::string deposit_id;
  Location from;
  Location to;
  std::string note;  // why it goes there when that is not the obvious place ("box full")
  bool operator==(const JournalMoveBegin&) const = default;
};
// Carry the card on the tray; answer with MoveSucceeded or MoveFailed.
struct MoveTo {
  std::string deposit_id;
  hw::Destination to;
  bool operator==(const MoveTo&) const = default;
};
struct JournalMoveDone {
  std::string deposit_id;
  Location at;
  bool operator==(const JournalMoveDone&) const = default;
};
struct JournalMoveFailed {
  std::string deposit_id;
  Location at;
  std::string error;
  bool operator==(const JournalMoveFailed&) const = default;
};
// Journal (unless already there) and send CardStored for the deposit at `at`.
struct SendStored {
  std::string deposit_id;
  Location at;
  bool operator==(const SendStored&) const = default;
};
// A difficult card that had to go to a slot: the operator must take it out by hand.
struct FlagForOperator {
  std::string deposit_id;
  std::string why;
  bool operator==(const FlagForOperator&) const = default;
};
// A card the operator put back: journal it on the tray, decided "store" (no photographs).
struct JournalRestock {
  std::string deposit_id;
  std::string last4;
  bool operator==(const JournalRestock&) const = default;
};
}  // namespace action

using Action =
    std::variant<action::CloseShutter, action::OpenShutter, action::Show, action::Capture,
                 action::JournalNewDeposit, action::SendCaptured, action::JournalDisposition,
                 action::JournalMoveBegin, action::MoveTo, action::JournalMoveDone,
                 action::JournalMoveFailed, action::SendStored, action::FlagForOperator,
                 action::JournalRestock>;

// A short name of an action for logs and test messages, e.g. "MoveTo(slot:3)".
std::string describe(const Action& action);

class Intake {
 public:
  enum class Phase { kIdle, kFull, kCapturing, kAwaiting, kMoving, kOutOfOrder };

  explicit Intake(IntakeConfig config, IntakeSnapshot snapshot = {});

  // The first actions after start-up: open or close the shutter, show the right text, and
  // resume a card the journal left on the tray with its decision.
  std::vector<Action> start(std::int64_t now_ms);
  std::vector<Action> handle(Event event, std::int64_t now_ms);

  Phase phase() const { return phase_; }
  // The deposit on the tray, if any.
  std::optional<std::string> trayDeposit() const;
  const std::set<int>& occupiedSlots() const { return occupied_; }
  int binCount() const { return bin_count_; }
  const IntakeConfig& config() const { return config_; }
  std::optional<int> lowestFreeSlot() const;
  bool binHasRoom() const { return bin_count_ < config_.bin_capacity; }
  // Whether a card dropped now would have somewhere to go.
  bool hasRoom() const { return lowestFreeSlot().has_value() || binHasRoom(); }
  bool operatorPresent() const { return operator_present_; }
  // The deposit the next card is taken for, after RestockArmed; nullopt when not armed.
  std::optional<std::string> restockArmed() const;

 private:
  struct Tray {
    std::string deposit_id;
    std::int64_t detected_at_ms = 0;
    std::int64_t captured_at_ms = 0;
    int capture_attempts = 0;
    std::optional<std::int64_t> retry_capture_at_ms;  // set while waiting to try again
    std::optional<Decision> decision;
    hw::Destination target;
  };

  void onCardDetected(const event::CardDetected& e, std::int64_t now_ms, std::vector<Action>& out);
  void onCaptureSucceeded(event::CaptureSucceeded e, std::int64_t now_ms, std::vector<Action>& out);
  void onCaptureFailed(const event::CaptureFailed& e, std::int64_t now_ms,
                       std::vector<Action>& out);
  void onDisposition(const event::DispositionReceived& e, std::int64_t now_ms,
                     std::vector<Action>& out);
  void onMoveSucceeded(std::int64_t now_ms, std::vector<Action>& out);
  void onMoveFailed(const event::MoveFailed& e, std::vector<Action>& out);
  void onTick(std::int64_t now_ms, std::vector<Action>& out);
  void onOperatorPresent(bool present, std::int64_t now_ms, std::vector<Action>& out);
  void onRestockArmed(const event::RestockArmed& e, std::int64_t now_ms,
                      std::vector<Action>& out);
  void takeRestockCard(std::int64_t now_ms, std::vector<Action>& out);

  void journalCapture(std::vector<hw::CapturedFrame> front, std::vector<hw::CapturedFrame> back,
                      std::string capture_error, std::int64_t now_ms, std::vector<Action>& out);
  void decide(const Decision& decision, std::vector<Action>& out);
  void beginMove(const hw::Destination& to, std::string note, std::vector<Action>& out);
  void onRoomFreed(std::int64_t now_ms, std::vector<Action>& out);
  // After a card left the tray or the occupancy changed: accept the next card or close.
  void settle(std::int64_t now_ms, std::vector<Action>& out);
  void show(std::string_view text, std::vector<Action>& out);
  void setShutter(bool open, std::vector<Action>& out);

  IntakeConfig config_;
  Phase phase_ = Phase::kFull;
  std::optional<Tray> tray_;
  std::set<int> occupied_;
  int bin_count_ = 0;
  std::map<std::string, int> pending_;
  std::int64_t thank_you_until_ms_ = 0;
  std::optional<bool> shutter_open_;  // unknown until the first command
  std::string shown_;
  bool operator_present_ = false;
  std::optional<event::RestockArmed> restock_;
};

}  // namespace lostcard::kiosk
