#pragma once
// The kiosk's controller: ties the intake state machine to the hardware, the journal and the
// uplink. It carries out the machine's actions (photographs, journal writes, sorter moves,
// messages for the cloud), feeds their outcomes back as events, and on start-up reconciles the
// journal with what the sensors say (a move cut short by a power cut, a card left on the tray).
//
//   Controller controller(box.devices(), journal, IntakeConfig{.bin_capacity = 100},
//                         wallClockMs, [&](const v1::Envelope& env) { uplink.send(env); });
//   controller.start();                  // recovery, then open for cards
//   every poll_ms:      controller.poll();
//   from the uplink:    controller.onMessage(env);        // Disposition, Ack
//   every heartbeat_ms: uplink.send(controller.heartbeat());
//   uplink backlog:     controller.backlog();
//   after each HelloAck: uplink.send(controller.inventory());   // after the backlog
//   on SIGTERM:         controller.shutdown();
//
// Single-threaded: call everything from one thread (the daemon's io_context). Hardware calls
// block for as long as the device takes. A journal failure throws JournalError: the box cannot
// go on without knowing where its cards are.
//
// A full disk is not such a failure. When the journal is low on space (its reserve went to the
// record in hand) or a write fails even so (JournalFull), the controller goes out of service:
// the shutter closes and the display says kTextOutOfService; no new card is taken. A write that
// failed waits, with every action after it, so no physical move starts before its record is
// written; the card in hand stays where it physically is. poll() tries again every
// kJournalRetryMs (the writes in order, then the journal's reserve) and the box takes cards
// again by itself once they succeed. Messages to and from the cloud go on meanwhile.
//
// At the box (devices.keypad; see box_entry.hpp for what is typed). A cardholder's entry becomes
// a PickupRequest (a new request id; the code only in memory and on the wire, never journaled or
// logged), journaled as asked; the answer is shown on the display. On OPEN, for the request in
// hand and the deposit the journal has in that slot: "releasing slot N for deposit D" is
// journaled, then that slot alone is unlocked (for BoxOptions::unlock_ms), and the slot's sensor
// is watched for up to take_ms. The outcome (taken: the deposit leaves the journal's slot; not
// taken; the door did not open: the deposit is flagged) is journaled together with its
// PickupDone report, which is resent until acked, and an Inventory follows. An OPEN for a request
// not in hand (the kiosk restarted, or gave up after answer_timeout_ms) opens nothing and is
// reported NOT_OPENED. At start-up, a door journaled as opening or open is settled from the
// slot's sensor (empty: taken; else not taken); a request still asked is sent again with the
// same id and no code, so the cloud can only repeat an answer it gave. An operator's entry
// becomes an OperatorAuthRequest; on OK the bin is unlocked, and once devices.bin_door was seen
// open and then shut, the journal's bin deposits are collected and reported in a BinEmptied.
// One door at a time: entries typed meanwhile are refused with "please wait".
//
// The operator's session. An OK answer also begins a session (until '*' alone is typed, or
// BoxOptions::operator_session_ms): the slots named in its return_slots are unlocked, each only
// when the journal holds that deposit in that slot, with "releasing slot N for deposit D"
// journaled first (returnKey()); at the session's end each slot's sensor says whether its card
// went, and the cards gone leave the journal with their ReturnCollected report in one write
// (a restart settles an unfinished one the same way at start-up). Meanwhile the intake takes no
// finder's card (see intake.hpp); '#N' names a card of the answer's restock list, followed by the
// number printed on the card in hand. That number goes to the cloud in a RestockCheck (in memory
// and on the wire only, like a code) and only on an OK answer for the check still waited for is
// the intake armed: the next card put in it is stored in a free slot as that deposit and
// reported (CardStored). MISMATCH ("That card is not #N: check its label and number."),
// NOT_WAITING, THROTTLED or no answer within answer_timeout_ms arm nothing; an answer that comes
// after the session ended, another entry was typed or the wait was given up arms nothing either.
// A number not on the list (a wrong one, or another box's) is refused without asking; '#N' or
// '*' outside a session is refused too.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/hw/devices.hpp"
#include "lostcard/kiosk/box_entry.hpp"
#include "lostcard/kiosk/intake.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"

namespace spdlog {
class logger;
}

namespace lostcard::kiosk {

// What the display says while the journal has no room (see above).
inline constexpr std::string_view kTextOutOfService = "Out of service - please use another box";

// The text the journal keeps for a cloud's difficult reason, e.g. "no holder: <detail>".
std::string difficultReasonText(const v1::Disposition::Difficult& difficult);

// Timings of doors opened for people, in milliseconds.
struct BoxOptions {
  std::int64_t unlock_ms = 3000;            // how long a latch is held released
  std::int64_t take_ms = 60'000;            // how long the card may stay in the open slot
  std::int64_t answer_timeout_ms = 20'000;  // how long the holder waits for the cloud
  std::int64_t bin_open_ms = 300'000;       // how long an operator may take to open the bin door
  std::int64_t operator_session_ms = 600'000;  // an operator's session at the box, at most
};

class Controller {
 public:
  using ClockMs = std::function<std::int64_t()>;
  using Sender = std::function<void(const v1::Envelope&)>;

  // How often, out of service for want of disk space, the journal writes are tried again.
  static constexpr std::int64_t kJournalRetryMs = 1000;

  // `config.slot_count` is taken from the sorter.
  Controller(hw::Devices devices, Journal& journal, IntakeConfig config, ClockMs clock_ms,
             Sender send);
  ~Controller();

  // Before start().
  void setBoxOptions(const BoxOptions& options) { box_ = options; }
  void start();
  void poll();
  void onMessage(const v1::Envelope& env);
  v1::Envelope heartbeat() const;
  std::vector<v1::Envelope> backlog() const;
  // An Inventory envelope: what the journal says each place holds (for the cloud's
  // reconciliation). The controller also sends one by itself at the end of every step that
  // moved a card or reported one stored, so the cloud's snapshot is fresh exactly when the box
  // changes (a periodic one would add a database write per heartbeat and say nothing new).
  v1::Envelope inventory() const;
  void shutdown();

  // nullptr before start().
  const Intake* intake() const { return intake_ ? &*intake_ : nullptr; }
  // Out of service for want of journal space (see above).
  bool outOfService() const { return out_of_service_; }

 private:
  void recover();
  IntakeSnapshot snapshot();
  // The cloud's decision (or the box's own, when the cloud refused the deposit).
  void decide(const std::string& deposit_id, const Decision& decision);
  void run(std::vector<Action> actions);
  std::optional<Event> execute(Action& action);
  std::optional<Event> capture(int frames_per_face);
  std::optional<Event> move(const action::MoveTo& move);
  void enqueueStored(const std::string& deposit_id, const Location& at);
  bool cardOnTray(bool assume_if_unknown);
  std::int64_t now() const { return clock_ms_(); }
  // Disk full: close, say so, and try again from poll() (see above).
  void outOfService(std::string_view why);
  void deferWrite(std::string_view why, std::function<void()> write);
  void retryJournal();

  // At the box (see above).
  struct Asking {
    std::string request_id;
    ReleaseKind kind = ReleaseKind::kPickup;
    int slot = -1;
    v1::Envelope request;  // with the code: only here, never journaled
    std::int64_t asked_at_ms = 0;
  };
  struct Opened {
    std::string request_id;
    ReleaseKind kind = ReleaseKind::kPickup;
    int slot = -1;
    std::string deposit_id;
    std::int64_t deadline_ms = 0;
    bool door_seen_open = false;  // bin
  };
  void pollBox();
  void onEntry(const std::string& typed);
  void ask(ReleaseKind kind, int slot, v1::Envelope request);
  void onPickupAnswer(const v1::PickupAnswer& answer);
  void onOperatorAnswer(const v1::OperatorAuthAnswer& answer);
  void checkOpened();
  void recoverReleases();
  // Journals the outcome with its report (none when `report` has no body) and sends it.
  void finish(const std::string& request_id, ReleaseState outcome, const std::string& detail,
              v1::Envelope report);
  v1::Envelope pickupDone(const std::string& request_id, int slot, const std::string& deposit_id,
                          v1::PickupOutcome outcome, const std::string& detail) const;
  void showBox(const std::string& text);
  // The operator's session (see above).
  struct Session {
    std::string request_id;
    std::map<int, v1::RestockCard> restock;  // by restock number
    std::vector<int> return_slots;           // unlocked for this session
    std::int64_t deadline_ms = 0;
  };
  void beginSession(const std::string& request_id, const v1::OperatorAuthAnswer& answer);
  void openReturnSlot(const std::string& request_id, const v1::ReturnSlot& slot);
  void onSessionEntry(const BoxEntry& entry);
  // What the display says when the intake cannot take a card to restock now; none when it can.
  std::optional<std::string> restockRefusal(const std::string& label);
  void onRestockCheckAnswer(const v1::RestockCheckAnswer& answer);
  void endSession(std::string_view why);
  // Journals which of the return slots opened for `request_id` were emptied, and reports them.
  void settleReturns(const std::string& request_id, const std::vector<int>& slots);

  hw::Devices devices_;
  Journal& journal_;
  IntakeConfig config_;
  ClockMs clock_ms_;
  Sender send_;
  std::optional<Intake> intake_;
  // The CardCaptured just journaled, with its frames, until SendCaptured sends it.
  std::optional<v1::Envelope> fresh_captured_;
  std::string last_sensor_error_;
  bool sorter_failed_ = false;  // it could not home after an interrupted move
  bool inventory_due_ = false;  // a card moved or was reported: send an Inventory after run()
  // Disk full: the actions from the first journal write that failed on, in order; and writes
  // outside the intake's actions (acknowledgements, answered captures) to make again.
  std::deque<Action> stalled_;
  std::vector<std::function<void()>> deferred_writes_;
  bool started_ = false;  // start() got through recovery (it may wait for disk space too)
  bool out_of_service_ = false;
  std::int64_t retry_journal_at_ms_ = 0;
  // What the intake last asked of the shutter and the display, applied when service resumes.
  bool intake_shutter_open_ = false;
  std::string intake_text_;
  bool stopped_ = false;
  BoxOptions box_;
  std::optional<Asking> asking_;
  std::optional<Opened> opened_;
  std::optional<Session> session_;
  // A '#N' entry whose card number the cloud is checking (RestockCheck); the number only here.
  struct RestockChecking {
    std::string request_id;
    int number = 0;
    v1::RestockCard card;
    v1::Envelope request;  // with the card's number: only here, never journaled
    std::int64_t asked_at_ms = 0;
  };
  std::optional<RestockChecking> restock_check_;
  std::string last_keypad_error_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<spdlog::logger> box_log_;
};

}  // namespace lostcard::kiosk
