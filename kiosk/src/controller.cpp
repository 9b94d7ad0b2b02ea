#include "lostcard/kiosk/controller.hpp"

#include <set>
#include <utility>

#include "lostcard/kiosk/box_entry.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"

namespace lostcard::kiosk {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

constexpr std::string_view kTextClosed = "Temporarily closed";

void addFrames(google::protobuf::RepeatedPtrField<v1::Frame>* out,
               const std::vector<hw::CapturedFrame>& frames, std::int64_t captured_at_ms) {
  for (const auto& f : frames) {
    auto* frame = out->Add();
    frame->set_jpeg(f.jpeg);
    frame->set_width_px(static_cast<std::uint32_t>(f.width_px));
    frame->set_height_px(static_cast<std::uint32_t>(f.height_px));
    frame->set_captured_at_ms(captured_at_ms);
  }
}

v1::Location toProto(const Location& at) {
  v1::Location out;
  if (at.kind == Location::Kind::kSlot) {
    out.set_slot(static_cast<std::uint32_t>(at.slot));
  } else {
    out.mutable_bin();
  }
  return out;
}

}  // namespace

std::string difficultReasonText(const v1::Disposition::Difficult& difficult) {
  std::string text;
  switch (difficult.reason()) {
    case v1::DIFFICULT_REASON_UNREADABLE:
      text = "unreadable";
      break;
    case v1::DIFFICULT_REASON_NO_HOLDER:
      text = "no holder";
      break;
    case v1::DIFFICULT_REASON_AMBIGUOUS:
      text = "ambiguous";
      break;
    case v1::DIFFICULT_REASON_BAD_IMAGE:
      text = "bad image";
      break;
    default:
      text = "difficult";
      break;
  }
  if (!difficult.detail().empty()) {
    text += ": " + difficult.detail();
  }
  return text;
}

Controller::Controller(hw::Devices devices, Journal& journal, IntakeConfig config, ClockMs clock_ms,
                       Sender send)
    : devices_(devices),
      journal_(journal),
      config_(config),
      clock_ms_(std::move(clock_ms)),
      send_(std::move(send)),
      log_(wire::componentLogger("kiosk.intake")),
      box_log_(wire::componentLogger("kiosk.box")) {
  if (devices_.camera == nullptr || devices_.sensor == nullptr || devices_.sorter == nullptr ||
      devices_.shutter == nullptr || devices_.display == nullptr) {
    throw std::invalid_argument("kiosk controller: a device is missing");
  }
  config_.slot_count = devices_.sorter->slotCount();
}

Controller::~Controller() = default;

void Controller::start() {
  try {
    recover();
    auto snap = snapshot();
    log_->info("journal: {} of {} slots used, {} of {} cards in the bin, {} pending{}",
               snap.occupied_slots.size(), config_.slot_count, snap.bin_count, config_.bin_capacity,
               snap.pending.size(),
               snap.tray ? ", deposit " + snap.tray->deposit_id + " on the tray" : "");
    intake_.emplace(config_, std::move(snap));
  } catch (const JournalFull& e) {
    // Recovery is done again from the start when there is room: each of its steps looks at the
    // sensors and the journal afresh.
    outOfService(e.what());
    return;
  }
  started_ = true;
  if (journal_.lowOnSpace()) {
    outOfService("no room on the disk for the journal's reserve");
  }
  run(intake_->start(now()));
  try {
    recoverReleases();
  } catch (const JournalFull& e) {
    outOfService(e.what());  // settled by the next polls, once there is room
  }
}

void Controller::recover() {
  const auto moves = journal_.openMoves();
  if (!moves.empty()) {
    // Home first, then ask the sensors: a card the sorter was carrying when the power went comes
    // back to the tray with the carriage, so it is not taken for one that reached the bin.
    if (auto homed = devices_.sorter->home(); !homed) {
      log_->error("sorter cannot find its home position: {}; out of order", homed.error());
      sorter_failed_ = true;
    }
  }
  for (const auto& m : moves) {
    if (m.to.kind == Location::Kind::kSlot) {
      auto occupied = devices_.sorter->slotOccupied(m.to.slot);
      if (occupied && *occupied) {
        journal_.finishMove(m.deposit_id, m.to, now());
        log_->warn("recovery: deposit {} found in {} after an interrupted move", m.deposit_id,
                   m.to.text());
        continue;
      }
    }
    if (cardOnTray(false)) {
      journal_.abandonMove(m.deposit_id, now());
      log_->warn("recovery: deposit {} still on the tray; its move will be retried", m.deposit_id);
      continue;
    }
    if (m.to.kind == Location::Kind::kBin) {
      // The bin has no sensor we can ask; an empty tray means the card went on its way, and the
      // bin is where an operator looks anyway.
      journal_.finishMove(m.deposit_id, m.to, now());
      journal_.flag(m.deposit_id, "recovered: assumed in bin");
      log_->warn("recovery: deposit {} assumed in the bin after an interrupted move", m.deposit_id);
      continue;
    }
    journal_.failMove(m.deposit_id, Location::unknown(), "interrupted, card not found", now());
    log_->error("recovery: deposit {} not found after an interrupted move to {}", m.deposit_id,
                m.to.text());
  }
  // A card that reached its place must be reported even if the box stopped right after.
  for (const auto& d : journal_.deposits(DepositState::kStored)) {
    if (!journal_.queued(d.deposit_id, v1::Envelope::kCardStored)) {
      enqueueStored(d.deposit_id, d.location);
    }
  }
}

IntakeSnapshot Controller::snapshot() {
  IntakeSnapshot snap;
  snap.out_of_order = sorter_failed_;
  snap.occupied_slots = journal_.occupiedSlots();
  snap.bin_count = journal_.binCount();
  for (const auto& d : journal_.deposits(DepositState::kPending)) {
    if (d.location.kind == Location::Kind::kSlot) {
      snap.pending[d.deposit_id] = d.location.slot;
    }
  }
  std::vector<DepositRecord> on_tray;
  for (const auto& d : journal_.deposits()) {
    const bool handled = d.state == DepositState::kAwaiting || d.state == DepositState::kDecided ||
                         d.state == DepositState::kFault;
    if (handled && d.location.kind == Location::Kind::kTray) {
      on_tray.push_back(d);
    }
  }
  const bool card_present = !on_tray.empty() && cardOnTray(true);
  for (std::size_t i = 0; i < on_tray.size(); ++i) {
    const auto& d = on_tray[i];
    const bool newest = i + 1 == on_tray.size();
    if (newest && card_present) {
      if (d.state == DepositState::kFault) {
        journal_.resume(d.deposit_id, now());
      }
      snap.tray = TrayDeposit{d.deposit_id, d.created_at_ms, d.decision};
    } else if (d.state != DepositState::kFault) {
      journal_.failMove(d.deposit_id, Location::unknown(), "not on the tray at start-up", now());
      log_->error("recovery: deposit {} is not on the tray", d.deposit_id);
    }
  }
  return snap;
}

void Controller::poll() {
  if (stopped_) {
    return;
  }
  if (out_of_service_) {
    retryJournal();
  }
  if (!intake_) {
    return;
  }
  if (!out_of_service_ && intake_->phase() == Intake::Phase::kIdle && cardOnTray(false)) {
    run(intake_->handle(event::CardDetected{wire::newUuid()}, now()));
  }
  run(intake_->handle(event::Tick{}, now()));
  try {
    pollBox();
  } catch (const JournalFull& e) {
    // The door in hand is settled again by the next polls once the journal has room.
    outOfService(e.what());
  }
}

bool Controller::cardOnTray(bool assume_if_unknown) {
  auto present = devices_.sensor->cardPresent();
  if (!present) {
    // Logged once per distinct error, not once per poll.
    if (present.error() != last_sensor_error_) {
      log_->error("card sensor: {}", present.error());
      last_sensor_error_ = present.error();
    }
    return assume_if_unknown;
  }
  if (!last_sensor_error_.empty()) {
    log_->info("card sensor works again");
    last_sensor_error_.clear();
  }
  return *present;
}

void Controller::onMessage(const v1::Envelope& env) {
  if (env.has_ack()) {
    const auto& ack = env.ack();
    bool answered = false;
    try {
      answered = journal_.markAcked(ack.message_id(), ack.error());
    } catch (const JournalFull& e) {
      deferWrite(e.what(), [this, id = ack.message_id(), error = ack.error()] {
        journal_.markAcked(id, error);
      });
    }
    if (ack.error().empty()) {
      if (answered) {
        log_->debug("cloud acknowledged message {}", ack.message_id());
      }
      return;
    }
    log_->error("cloud refused message {} for good: {}", ack.message_id(), ack.error());
    // No Disposition will come for a refused CardCaptured: the card must not wait for one.
    if (auto ref = journal_.outboxRef(ack.message_id());
        ref && ref->type == v1::Envelope::kCardCaptured) {
      decide(ref->deposit_id, Decision::difficult("refused by the cloud: " + ack.error()));
    }
    return;
  }
  if (env.has_pickup_answer()) {
    try {
      onPickupAnswer(env.pickup_answer());
    } catch (const JournalFull& e) {
      outOfService(e.what());  // unanswered in the journal: asked again after a reconnect
    }
    return;
  }
  if (env.has_operator_auth_answer()) {
    try {
      onOperatorAnswer(env.operator_auth_answer());
    } catch (const JournalFull& e) {
      outOfService(e.what());
    }
    return;
  }
  if (env.has_restock_check_answer()) {
    try {
      onRestockCheckAnswer(env.restock_check_answer());
    } catch (const JournalFull& e) {
      outOfService(e.what());  // nothing armed: the operator types the entry again
    }
    return;
  }
  if (!env.has_disposition()) {
    return;
  }
  const auto& d = env.disposition();
  if (!journal_.deposit(d.deposit_id())) {
    log_->warn("ignoring a Disposition for unknown deposit {}", d.deposit_id());
    return;
  }
  if (d.has_store()) {
    // At most the last four digits of whatever the cloud sent: the journal never holds more.
    decide(d.deposit_id(), Decision::store(wire::lastFourDigits(d.store().last4())));
  } else if (d.has_difficult()) {
    decide(d.deposit_id(), Decision::difficult(difficultReasonText(d.difficult())));
  } else {
    decide(d.deposit_id(), Decision::difficult("no decision"));
  }
}

void Controller::decide(const std::string& deposit_id, const Decision& decision) {
  if (intake_) {
    run(intake_->handle(event::DispositionReceived{deposit_id, decision}, now()));
  }
  // Deposits the machine no longer tracks (e.g. faulted) keep the decision too; the first one
  // holds, so a repeat changes nothing. The CardCaptured counts as answered only once the
  // decision is written: until then it is resent, and the cloud answers again.
  auto record = [this, deposit_id, decision] {
    journal_.recordDisposition(deposit_id, decision, now());
    journal_.captureAnswered(deposit_id);
  };
  try {
    record();
  } catch (const JournalFull& e) {
    deferWrite(e.what(), std::move(record));
  }
}

v1::Envelope Controller::heartbeat() const {
  auto env = wire::makeEnvelope(now());
  auto* hb = env.mutable_heartbeat();
  hb->set_slots_total(static_cast<std::uint32_t>(config_.slot_count));
  hb->set_bin_capacity(static_cast<std::uint32_t>(config_.bin_capacity));
  if (intake_) {
    hb->set_slots_used(static_cast<std::uint32_t>(intake_->occupiedSlots().size()));
    hb->set_bin_count(static_cast<std::uint32_t>(intake_->binCount()));
  }
  return env;
}

std::vector<v1::Envelope> Controller::backlog() const {
  auto out = journal_.unackedOutbox();
  // Requests still unanswered: the one in hand with its code; older ones (from before a restart,
  // or given up) with none, so the cloud can only repeat an answer it already gave.
  for (const auto& r : journal_.unfinishedReleases()) {
    if (r.state != ReleaseState::kAsked || r.kind == ReleaseKind::kReturn) {
      continue;  // a return slot is settled at start-up, never asked for
    }
    if (asking_ && asking_->request_id == r.request_id) {
      out.push_back(asking_->request);
      continue;
    }
    auto env = wire::makeEnvelope(now());
    if (r.kind == ReleaseKind::kPickup) {
      env.mutable_pickup_request()->set_request_id(r.request_id);
      env.mutable_pickup_request()->set_slot(static_cast<std::uint32_t>(std::max(r.slot, 0)));
    } else {
      env.mutable_operator_auth_request()->set_request_id(r.request_id);
    }
    out.push_back(std::move(env));
  }
  // A restock check still waited for, with its number (only ever in memory): the cloud answers a
  // resend with its first answer.
  if (restock_check_) {
    out.push_back(restock_check_->request);
  }
  return out;
}

v1::Envelope Controller::inventory() const {
  auto env = wire::makeEnvelope(now());
  *env.mutable_inventory() = journal_.inventory(config_.slot_count, config_.bin_capacity, now());
  return env;
}

void Controller::shutdown() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (auto closed = devices_.shutter->close(); !closed) {
    log_->error("cannot close the shutter: {}", closed.error());
  }
  devices_.display->show(std::string(kTextClosed));
  log_->info("stopped taking cards");
}

void Controller::run(std::vector<Action> actions) {
  std::deque<Action> pending_actions(std::make_move_iterator(actions.begin()),
                                     std::make_move_iterator(actions.end()));
  if (!stalled_.empty()) {
    // Behind a journal write waiting for disk space: in order, after it.
    stalled_.insert(stalled_.end(), std::make_move_iterator(pending_actions.begin()),
                    std::make_move_iterator(pending_actions.end()));
    return;
  }
  while (!pending_actions.empty()) {
    Action next = std::move(pending_actions.front());
    pending_actions.pop_front();
    log_->debug("action {}", describe(next));
    std::optional<Event> follow_up;
    try {
      follow_up = execute(next);
    } catch (const JournalFull& e) {
      // Nothing after a write that did not happen may happen before it: a move waits for its
      // record. The card in hand stays where it physically is.
      stalled_.push_back(std::move(next));
      stalled_.insert(stalled_.end(), std::make_move_iterator(pending_actions.begin()),
                      std::make_move_iterator(pending_actions.end()));
      pending_actions.clear();
      outOfService(e.what());
    }
    if (follow_up) {
      auto more = intake_->handle(std::move(*follow_up), now());
      pending_actions.insert(pending_actions.begin(), std::make_move_iterator(more.begin()),
                             std::make_move_iterator(more.end()));
    }
  }
  if (inventory_due_) {
    inventory_due_ = false;
    send_(inventory());
  }
  if (journal_.lowOnSpace()) {
    outOfService("the journal spent its reserve: the disk is full");
  }
}

void Controller::outOfService(std::string_view why) {
  retry_journal_at_ms_ = now() + kJournalRetryMs;
  if (out_of_service_) {
    return;
  }
  out_of_service_ = true;
  log_->error("{}; out of service until the journal has room again", why);
  if (auto s = devices_.shutter->close(); !s) {
    log_->error("cannot close the shutter: {}", s.error());
  }
  devices_.display->show(std::string(kTextOutOfService));
}

void Controller::deferWrite(std::string_view why, std::function<void()> write) {
  deferred_writes_.push_back(std::move(write));
  outOfService(why);
}

void Controller::retryJournal() {
  if (now() < retry_journal_at_ms_) {
    return;
  }
  retry_journal_at_ms_ = now() + kJournalRetryMs;
  // The oldest first, and each only once it is written.
  while (!deferred_writes_.empty()) {
    try {
      deferred_writes_.front()();
    } catch (const JournalFull&) {
      return;
    }
    deferred_writes_.erase(deferred_writes_.begin());
  }
  if (!started_) {
    start();
    if (!started_) {
      return;
    }
  }
  if (!stalled_.empty()) {
    std::vector<Action> again(std::make_move_iterator(stalled_.begin()),
                              std::make_move_iterator(stalled_.end()));
    stalled_.clear();
    run(std::move(again));
    if (!stalled_.empty()) {
      return;
    }
  }
  // The records in hand come first; then room for the next card's.
  if (journal_.lowOnSpace() && !journal_.restoreReserve()) {
    return;
  }
  out_of_service_ = false;
  log_->info("journal: room on the disk again; taking cards");
  if (intake_shutter_open_) {
    if (auto s = devices_.shutter->open(); !s) {
      log_->error("cannot open the shutter: {}", s.error());
    }
  }
  if (!intake_text_.empty()) {
    devices_.display->show(intake_text_);
  }
}

std::optional<Event> Controller::execute(Action& action) {
  return std::visit(
      Overloaded{
          [&](action::CloseShutter&) -> std::optional<Event> {
            intake_shutter_open_ = false;
            if (auto s = devices_.shutter->close(); !s) {
              log_->error("cannot close the shutter: {}", s.error());
            }
            return std::nullopt;
          },
          [&](action::OpenShutter&) -> std::optional<Event> {
            intake_shutter_open_ = true;
            if (out_of_service_) {
              return std::nullopt;  // opened when service resumes
            }
            if (auto s = devices_.shutter->open(); !s) {
              log_->error("cannot open the shutter: {}", s.error());
            }
            return std::nullopt;
          },
          [&](action::Show& a) -> std::optional<Event> {
            intake_text_ = a.text;
            if (out_of_service_) {
              return std::nullopt;  // shown when service resumes
            }
            devices_.display->show(a.text);
            return std::nullopt;
          },
          [&](action::Capture& a) -> std::optional<Event> { return capture(a.frames_per_face); },
          [&](action::JournalNewDeposit& a) -> std::optional<Event> {
            auto env = wire::makeEnvelope(now());
            auto* captured = env.mutable_card_captured();
            captured->set_deposit_id(a.deposit_id);
            addFrames(captured->mutable_front(), a.front, a.captured_at_ms);
            addFrames(captured->mutable_back(), a.back, a.captured_at_ms);
            auto* meta = captured->mutable_metadata();
            meta->set_camera_id(devices_.camera->id());
            meta->set_detected_at_ms(a.detected_at_ms);
            (*meta->mutable_settings())["frames_per_face"] =
                std::to_string(config_.frames_per_face);
            const std::string note =
                a.capture_error.empty() ? std::string() : "camera: " + a.capture_error;
            journal_.recordCapture(env, now(), note);
            log_->info("deposit {} taken: {} front and {} back frames{}", a.deposit_id,
                       a.front.size(), a.back.size(), note.empty() ? "" : " (" + note + ")");
            fresh_captured_ = std::move(env);
            return std::nullopt;
          },
          [&](action::SendCaptured& a) -> std::optional<Event> {
            if (fresh_captured_ && fresh_captured_->card_captured().deposit_id() == a.deposit_id) {
              send_(*fresh_captured_);
              fresh_captured_.reset();
            }
            return std::nullopt;
          },
          [&](action::JournalDisposition& a) -> std::optional<Event> {
            if (journal_.recordDisposition(a.deposit_id, a.decision, now())) {
              if (a.decision.isStore()) {
                log_->info("deposit {}: store (card ending {})", a.deposit_id, a.decision.last4);
              } else {
                log_->info("deposit {}: difficult ({})", a.deposit_id, a.decision.reason);
              }
            }
            return std::nullopt;
          },
          [&](action::JournalMoveBegin& a) -> std::optional<Event> {
            journal_.beginMove(a.deposit_id, a.from, a.to, a.note, now());
            return std::nullopt;
          },
          [&](action::MoveTo& a) -> std::optional<Event> { return move(a); },
          [&](action::JournalMoveDone& a) -> std::optional<Event> {
            journal_.finishMove(a.deposit_id, a.at, now());
            inventory_due_ = true;
            log_->info("deposit {} is in {}", a.deposit_id, a.at.text());
            return std::nullopt;
          },
          [&](action::JournalMoveFailed& a) -> std::optional<Event> {
            journal_.failMove(a.deposit_id, a.at, a.error, now());
            inventory_due_ = true;
            log_->error("deposit {}: move failed ({}), card at {}; out of order", a.deposit_id,
                        a.error, a.at.text());
            return std::nullopt;
          },
          [&](action::SendStored& a) -> std::optional<Event> {
            enqueueStored(a.deposit_id, a.at);
            return std::nullopt;
          },
          [&](action::FlagForOperator& a) -> std::optional<Event> {
            journal_.flag(a.deposit_id, a.why);
            log_->warn("deposit {} needs an operator: {}", a.deposit_id, a.why);
            return std::nullopt;
          },
          [&](action::JournalRestock& a) -> std::optional<Event> {
            journal_.recordRestock(a.deposit_id, a.last4, now());
            log_->info("deposit {} put back on the tray by an operator (card ending {})",
                       a.deposit_id, a.last4);
            if (session_) {
              std::erase_if(session_->restock, [&](const auto& entry) {
                return entry.second.deposit_id() == a.deposit_id;
              });
            }
            return std::nullopt;
          },
      },
      action);
}

std::optional<Event> Controller::capture(int frames_per_face) {
  auto front = devices_.camera->capture(hw::Face::kFront, frames_per_face);
  if (!front) {
    log_->warn("camera (front): {}", front.error());
    return event::CaptureFailed{front.error()};
  }
  auto back = devices_.camera->capture(hw::Face::kBack, frames_per_face);
  if (!back) {
    log_->warn("camera (back): {}", back.error());
    return event::CaptureFailed{back.error()};
  }
  return event::CaptureSucceeded{std::move(*front), std::move(*back)};
}

std::optional<Event> Controller::move(const action::MoveTo& move) {
  auto moved = devices_.sorter->moveTo(move.to);
  if (moved) {
    return event::MoveSucceeded{};
  }
  if (move.to.kind == hw::Destination::Kind::kSlot) {
    auto occupied = devices_.sorter->slotOccupied(move.to.slot);
    if (occupied && *occupied) {
      log_->warn("deposit {}: sorter reported '{}' but slot {} holds the card", move.deposit_id,
                 moved.error(), move.to.slot);
      return event::MoveSucceeded{};
    }
  }
  const Location where = cardOnTray(false) ? Location::tray() : Location::jam();
  return event::MoveFailed{moved.error(), where};
}

void Controller::enqueueStored(const std::string& deposit_id, const Location& at) {
  auto env = wire::makeEnvelope(now());
  auto* stored = env.mutable_card_stored();
  stored->set_deposit_id(deposit_id);
  *stored->mutable_location() = toProto(at);
  send_(journal_.enqueue(deposit_id, env, now()));
  inventory_due_ = true;
}

// ---- At the box: doors opened for people ----

namespace {

constexpr std::string_view kTextChecking = "Checking your code...";
constexpr std::string_view kTextBusy = "Please wait: the box is busy.";
constexpr std::string_view kTextNoAnswer =
    "The service does not answer. Please try again in a few minutes.";
constexpr std::string_view kTextTaken = "Thank you. Please close the door.";
constexpr std::string_view kTextNotTaken =
    "The door has locked again. Ask for a new code in your app to collect your card.";
constexpr std::string_view kTextDoorFailed =
    "Sorry, the door did not open. An operator has been told; ask for a new code in your app.";
constexpr std::string_view kTextNotOpened = "Sorry, please type your code again.";
constexpr std::string_view kTextBinDoorOpen = "Bin door open. Shut it when done.";
constexpr std::string_view kTextNoOperatorMode = "Operator mode is not available on this box.";
constexpr std::string_view kTextNoSession = "Operators: type * and your code first.";
constexpr std::string_view kTextTrayTaken =
    "A card is in the intake: finish with * so the box takes it, then start again.";
constexpr std::string_view kTextSessionOpen =
    "An operator is at work. Please come back in a few minutes.";

}  // namespace

void Controller::showBox(const std::string& text) {
  if (!out_of_service_) {
    devices_.display->show(text);
  }
}

void Controller::pollBox() {
  if (!started_ || stopped_) {
    return;
  }
  if (opened_) {
    checkOpened();
  }
  if (asking_ && now() - asking_->asked_at_ms >= box_.answer_timeout_ms) {
    // Still journaled as asked: sent again, without its code, after the next HelloAck; an OPEN
    // that comes for it then opens nothing (NOT_OPENED).
    box_log_->warn("request {}: no answer from the cloud in {} ms; the holder was told",
                   asking_->request_id, box_.answer_timeout_ms);
    asking_.reset();
    showBox(std::string(kTextNoAnswer));
  }
  if (restock_check_ && now() - restock_check_->asked_at_ms >= box_.answer_timeout_ms) {
    box_log_->warn("restock check {}: no answer from the cloud in {} ms; nothing armed",
                   restock_check_->request_id, box_.answer_timeout_ms);
    restock_check_.reset();
    showBox(std::string(kTextNoAnswer));
  }
  if (session_ && now() >= session_->deadline_ms) {
    endSession("its time ran out");
  }
  if (devices_.keypad == nullptr || out_of_service_) {
    return;
  }
  auto entries = devices_.keypad->entries();
  if (!entries) {
    if (entries.error() != last_keypad_error_) {
      box_log_->error("{}", entries.error());
      last_keypad_error_ = entries.error();
    }
    return;
  }
  last_keypad_error_.clear();
  for (const auto& typed : *entries) {
    onEntry(typed);
  }
}

void Controller::onEntry(const std::string& typed) {
  const BoxEntry entry = parseBoxEntry(typed, config_.slot_count);
  if (session_) {
    onSessionEntry(entry);
    return;
  }
  if (std::holds_alternative<RestockEntry>(entry) ||
      std::holds_alternative<EndSessionEntry>(entry)) {
    box_log_->info("keypad entry refused: an operator's key outside an operator's session");
    showBox(std::string(kTextNoSession));
    return;
  }
  if (asking_ || opened_) {
    showBox(std::string(kTextBusy));
    return;
  }
  if (devices_.locks == nullptr) {
    showBox(std::string(kTextNoOperatorMode));
    return;
  }
  if (const auto* bad = std::get_if<BadEntry>(&entry)) {
    box_log_->info("keypad entry refused: {}", bad->why);
    showBox(bad->why);
    return;
  }
  auto env = wire::makeEnvelope(now());
  const std::string request_id = wire::newUuid();
  if (const auto* pickup = std::get_if<PickupEntry>(&entry)) {
    auto* request = env.mutable_pickup_request();
    request->set_request_id(request_id);
    request->set_slot(static_cast<std::uint32_t>(pickup->slot));
    request->set_code(pickup->code);
    ask(ReleaseKind::kPickup, pickup->slot, std::move(env));
    return;
  }
  if (devices_.bin_door == nullptr) {
    showBox(std::string(kTextNoOperatorMode));
    return;
  }
  auto* request = env.mutable_operator_auth_request();
  request->set_request_id(request_id);
  request->set_code(std::get<OperatorEntry>(entry).code);
  ask(ReleaseKind::kBin, -1, std::move(env));
}

void Controller::ask(ReleaseKind kind, int slot, v1::Envelope request) {
  const std::string request_id = kind == ReleaseKind::kPickup
                                     ? request.pickup_request().request_id()
                                     : request.operator_auth_request().request_id();
  journal_.recordReleaseAsked(request_id, kind, slot, now());
  asking_ = Asking{request_id, kind, slot, request, now()};
  if (kind == ReleaseKind::kPickup) {
    box_log_->info("pickup request {} for slot index {}", request_id, slot);
  } else {
    box_log_->info("operator request {}", request_id);
  }
  showBox(std::string(kTextChecking));
  send_(request);
}

void Controller::onPickupAnswer(const v1::PickupAnswer& answer) {
  const std::string& id = answer.request_id();
  const auto record = journal_.release(id);
  if (!record || record->kind != ReleaseKind::kPickup) {
    box_log_->warn("ignoring a PickupAnswer for unknown request {}", id);
    return;
  }
  if (record->state != ReleaseState::kAsked) {
    box_log_->debug("request {} already answered", id);
    return;
  }
  const bool in_hand = asking_ && asking_->request_id == id;
  if (in_hand) {
    asking_.reset();
  }
  if (answer.result() != v1::PICKUP_RESULT_OPEN) {
    const std::string result = v1::PickupResult_Name(answer.result());
    journal_.recordReleaseClosed(id, ReleaseState::kRefused, result, now());
    box_log_->info("pickup request {}: {}", id, result);
    if (in_hand) {
      showBox(answer.message().empty() ? "Code refused." : answer.message());
    }
    return;
  }
  // The journal must hold that very deposit in that slot, and nothing else may be open.
  std::string here;
  for (const auto& d : journal_.deposits()) {
    if (d.location == Location::inSlot(record->slot)) {
      here = d.deposit_id;
    }
  }
  std::string why;
  if (!in_hand) {
    why = "the answer came for a request no longer in hand";
  } else if (static_cast<int>(answer.slot()) != record->slot || answer.deposit_id() != here) {
    why = "the journal has " + (here.empty() ? std::string("nothing") : "deposit " + here) +
          " in slot:" + std::to_string(record->slot) + ", the cloud named deposit " +
          answer.deposit_id();
  } else if (opened_) {
    why = "another door is open";
  }
  if (!why.empty()) {
    box_log_->warn("pickup request {}: OPEN not acted on: {}", id, why);
    finish(id, ReleaseState::kNotOpened, why,
           pickupDone(id, record->slot, answer.deposit_id(), v1::PICKUP_OUTCOME_NOT_OPENED, why));
    if (in_hand) {
      showBox(std::string(kTextNotOpened));
    }
    return;
  }
  const std::string& deposit_id = answer.deposit_id();
  // Journal first: a power cut from here on is settled from the slot's sensor at start-up.
  journal_.recordReleaseOpening(id, deposit_id, now());
  box_log_->info("releasing slot:{} for deposit {} (request {})", record->slot, deposit_id, id);
  if (auto unlocked =
          devices_.locks->unlockSlot(record->slot, std::chrono::milliseconds(box_.unlock_ms));
      !unlocked) {
    const std::string detail = "the slot's latch did not release: " + unlocked.error();
    box_log_->error("deposit {}: {}", deposit_id, detail);
    journal_.flag(deposit_id, "pickup: " + detail);
    finish(id, ReleaseState::kDoorFailed, detail,
           pickupDone(id, record->slot, deposit_id, v1::PICKUP_OUTCOME_DOOR_FAILED, detail));
    showBox(std::string(kTextDoorFailed));
    return;
  }
  journal_.recordReleaseOpen(id, now());
  opened_ = Opened{id, ReleaseKind::kPickup, record->slot, deposit_id, now() + box_.take_ms, false};
  showBox("Slot " + std::to_string(record->slot + 1) + " is open: please take your card.");
}

void Controller::onOperatorAnswer(const v1::OperatorAuthAnswer& answer) {
  const std::string& id = answer.request_id();
  const auto record = journal_.release(id);
  if (!record || record->kind != ReleaseKind::kBin) {
    box_log_->warn("ignoring an OperatorAuthAnswer for unknown request {}", id);
    return;
  }
  if (record->state != ReleaseState::kAsked) {
    return;
  }
  const bool in_hand = asking_ && asking_->request_id == id;
  if (in_hand) {
    asking_.reset();
  }
  if (answer.result() != v1::OPERATOR_AUTH_RESULT_OK) {
    const std::string result = v1::OperatorAuthResult_Name(answer.result());
    journal_.recordReleaseClosed(id, ReleaseState::kRefused, result, now());
    box_log_->warn("operator request {}: {}", id, result);
    if (in_hand) {
      showBox(answer.message().empty() ? "Code refused." : answer.message());
    }
    return;
  }
  if (!in_hand || opened_) {
    const std::string why =
        !in_hand ? "the answer came for a request no longer in hand" : "another door is open";
    journal_.recordReleaseClosed(id, ReleaseState::kNotOpened, why, now());
    box_log_->warn("operator request {}: OK not acted on: {}", id, why);
    return;
  }
  journal_.recordReleaseOpening(id, "", now());
  if (auto unlocked = devices_.locks->unlockBin(std::chrono::milliseconds(box_.unlock_ms));
      !unlocked) {
    const std::string detail = "the bin's latch did not release: " + unlocked.error();
    box_log_->error("{}", detail);
    finish(id, ReleaseState::kDoorFailed, detail, v1::Envelope{});
    beginSession(id, answer);
    showBox(std::string(kTextDoorFailed));
    return;
  }
  journal_.recordReleaseOpen(id, now());
  opened_ = Opened{id, ReleaseKind::kBin, -1, "", now() + box_.bin_open_ms, false};
  box_log_->info("bin unlocked for an operator (request {})", id);
  beginSession(id, answer);
  showBox("Bin unlocked. Shut the door when done. To put a card back: #, its restock number, "
          "then the number on the card. * to finish.");
}

void Controller::beginSession(const std::string& request_id,
                              const v1::OperatorAuthAnswer& answer) {
  Session session;
  session.request_id = request_id;
  session.deadline_ms = now() + box_.operator_session_ms;
  for (const auto& card : answer.restock()) {
    const int number = static_cast<int>(card.restock_number());
    if (number >= 1 && number <= kMaxRestockNumber && wire::isUuid(card.deposit_id())) {
      session.restock[number] = card;
    }
  }
  session_ = std::move(session);
  box_log_->info("operator session {} begins: {} card(s) to restock, {} return slot(s)",
                 request_id, session_->restock.size(), answer.return_slots_size());
  for (const auto& slot : answer.return_slots()) {
    openReturnSlot(request_id, slot);
  }
  if (intake_) {
    run(intake_->handle(event::OperatorPresent{true}, now()));
  }
}

void Controller::openReturnSlot(const std::string& request_id, const v1::ReturnSlot& slot) {
  const int index = static_cast<int>(slot.slot());
  const auto record = journal_.deposit(slot.deposit_id());
  if (index >= config_.slot_count || !record || record->location != Location::inSlot(index)) {
    // The journal is the truth about the slots: a slot opens only for the card it holds there.
    box_log_->warn("return slot:{} for deposit {} not opened: the journal has {} there",
                   slot.slot(), slot.deposit_id(),
                   record ? record->location.text() : std::string("no such deposit"));
    return;
  }
  const std::string key = returnKey(request_id, index);
  journal_.recordReleaseAsked(key, ReleaseKind::kReturn, index, now());
  journal_.recordReleaseOpening(key, slot.deposit_id(), now());
  if (auto unlocked = devices_.locks->unlockSlot(index, std::chrono::milliseconds(box_.unlock_ms));
      !unlocked) {
    const std::string detail = "the slot's latch did not release: " + unlocked.error();
    box_log_->error("return of deposit {} from slot:{}: {}", slot.deposit_id(), index, detail);
    journal_.flag(slot.deposit_id(), "return: " + detail);
    journal_.recordReleaseClosed(key, ReleaseState::kDoorFailed, detail, now());
    return;
  }
  journal_.recordReleaseOpen(key, now());
  session_->return_slots.push_back(index);
  box_log_->info("slot:{} unlocked for an operator: deposit {} to return", index,
                 slot.deposit_id());
}

void Controller::onSessionEntry(const BoxEntry& entry) {
  if (restock_check_) {
    // Whatever the operator types now replaces the check still waited for: its answer, when it
    // comes, arms nothing.
    box_log_->info("restock check {} given up: the operator typed again",
                   restock_check_->request_id);
    restock_check_.reset();
  }
  if (std::holds_alternative<EndSessionEntry>(entry)) {
    endSession("the operator finished");
    return;
  }
  const auto* restock = std::get_if<RestockEntry>(&entry);
  if (restock == nullptr) {
    const auto* bad = std::get_if<BadEntry>(&entry);
    showBox(bad != nullptr ? bad->why : std::string(kTextSessionOpen));
    return;
  }
  const std::string label = "#" + std::to_string(restock->number);
  const auto card = session_->restock.find(restock->number);
  if (card == session_->restock.end()) {
    // A wrong number, another box's, or one already put back: nothing is armed.
    box_log_->warn("restock {} refused: no card of this box waits with that number", label);
    showBox("No card to put back has number " + label + " at this box.");
    return;
  }
  if (auto refused = restockRefusal(label)) {
    showBox(*refused);
    return;
  }
  // The card in hand must be that deposit's: the cloud compares the number printed on it with
  // the deposit's card before anything is armed (a mislabelled card would otherwise get another
  // holder's pickup code). The number goes only on the wire, never to the journal or a log.
  auto env = wire::makeEnvelope(now());
  auto* check = env.mutable_restock_check();
  check->set_request_id(wire::newUuid());
  check->set_deposit_id(card->second.deposit_id());
  check->set_number(restock->card_number);
  restock_check_ = RestockChecking{check->request_id(), restock->number, card->second, env, now()};
  box_log_->info("restock {}: asking the cloud whether the card is deposit {}'s (request {})",
                 label, card->second.deposit_id(), check->request_id());
  showBox("Checking card " + label + "...");
  send_(env);
}

std::optional<std::string> Controller::restockRefusal(const std::string& label) {
  if (!intake_ || out_of_service_ || intake_->phase() != Intake::Phase::kIdle ||
      intake_->trayDeposit()) {
    return std::string(kTextBusy);
  }
  if (cardOnTray(true)) {
    // A card already lying in the intake came without '#N': it is a finder's, never the
    // operator's. It is taken as a drop once the session ends.
    box_log_->warn("restock {} refused: a card is already in the intake", label);
    return std::string(kTextTrayTaken);
  }
  if (!intake_->lowestFreeSlot()) {
    box_log_->warn("restock {} refused: no free slot", label);
    return "No free slot: card " + label + " cannot be put back now.";
  }
  return std::nullopt;
}

void Controller::onRestockCheckAnswer(const v1::RestockCheckAnswer& answer) {
  if (!session_ || !restock_check_ || restock_check_->request_id != answer.request_id()) {
    // The session ended, the operator typed again, or the kiosk gave up waiting.
    box_log_->info("restock check {}: answered ({}) after it was given up; nothing armed",
                   answer.request_id(), v1::RestockCheckResult_Name(answer.result()));
    return;
  }
  const RestockChecking check = std::move(*restock_check_);
  restock_check_.reset();
  const std::string label = "#" + std::to_string(check.number);
  const std::string& deposit_id = check.card.deposit_id();
  switch (answer.result()) {
    case v1::RESTOCK_CHECK_RESULT_OK:
      break;
    case v1::RESTOCK_CHECK_RESULT_MISMATCH:
      box_log_->warn("restock {} refused: the number typed is not deposit {}'s card", label,
                     deposit_id);
      showBox("That card is not " + label + ": check its label and number.");
      return;
    case v1::RESTOCK_CHECK_RESULT_NOT_WAITING:
      box_log_->warn("restock {} refused: deposit {} does not wait to be put back here", label,
                     deposit_id);
      showBox("Card " + label + " does not wait to be put back at this box.");
      return;
    case v1::RESTOCK_CHECK_RESULT_THROTTLED:
      box_log_->warn("restock {} refused: too many wrong card numbers at this box lately", label);
      showBox(answer.message().empty()
                  ? "Too many wrong card numbers at this box. Try again later."
                  : answer.message());
      return;
    default:
      box_log_->warn("restock {}: the cloud's answer is {}; nothing armed", label,
                     v1::RestockCheckResult_Name(answer.result()));
      showBox("Card " + label + " could not be checked. Please try again.");
      return;
  }
  // Checked: the box may have changed while the cloud answered.
  if (auto refused = restockRefusal(label)) {
    showBox(*refused);
    return;
  }
  run(intake_->handle(event::RestockArmed{deposit_id, check.card.last4()}, now()));
  if (intake_->restockArmed() != deposit_id) {
    showBox(std::string(kTextBusy));
    return;
  }
  box_log_->info("restock {} armed for deposit {}: the card's number matched", label, deposit_id);
  showBox("Put card " + label + " in the intake.");
}

void Controller::endSession(std::string_view why) {
  const Session session = std::move(*session_);
  session_.reset();
  restock_check_.reset();  // an answer still to come arms nothing
  box_log_->info("operator session {} ends: {}", session.request_id, why);
  if (!session.return_slots.empty()) {
    settleReturns(session.request_id, session.return_slots);
  }
  if (intake_) {
    run(intake_->handle(event::OperatorPresent{false}, now()));
  }
}

void Controller::settleReturns(const std::string& request_id, const std::vector<int>& slots) {
  std::set<int> taken;
  for (int slot : slots) {
    // A sensor that cannot be read leaves the card where the journal has it: in its slot.
    if (auto occupied = devices_.sorter->slotOccupied(slot); occupied && !*occupied) {
      taken.insert(slot);
    }
  }
  send_(journal_.finishReturns(request_id, taken, now()));
  box_log_->info("operator request {}: {} of {} return slot(s) emptied", request_id,
                 taken.size(), slots.size());
  if (intake_) {
    for (int slot : taken) {
      run(intake_->handle(event::SlotEmptied{slot}, now()));
    }
  }
  send_(inventory());
}

void Controller::checkOpened() {
  Opened& o = *opened_;
  if (o.kind == ReleaseKind::kBin) {
    auto closed = devices_.bin_door->closed();
    if (closed && !*closed) {
      if (!o.door_seen_open) {
        o.door_seen_open = true;
        box_log_->info("bin door open (request {})", o.request_id);
        showBox(std::string(kTextBinDoorOpen));
      }
      return;
    }
    if (closed && o.door_seen_open) {
      // opened_ is cleared only once the outcome is journaled: a full disk retries it.
      const std::string id = o.request_id;
      auto report = wire::makeEnvelope(now());
      report.mutable_bin_emptied()->set_request_id(id);
      finish(id, ReleaseState::kEmptied, "the bin door was opened and shut", std::move(report));
      opened_.reset();
      if (intake_) {
        run(intake_->handle(event::BinEmptied{}, now()));
      }
      send_(inventory());
      showBox("Bin emptied. Thank you.");
      return;
    }
    if (now() >= o.deadline_ms && !o.door_seen_open) {
      finish(o.request_id, ReleaseState::kUnused,
             closed ? "the bin door was not opened" : "bin door switch: " + closed.error(),
             v1::Envelope{});
      opened_.reset();
    }
    return;
  }
  auto occupied = devices_.sorter->slotOccupied(o.slot);
  if (occupied && !*occupied) {
    const Opened done = o;
    finish(done.request_id, ReleaseState::kTaken, "the card was taken",
           pickupDone(done.request_id, done.slot, done.deposit_id, v1::PICKUP_OUTCOME_TAKEN,
                      "the card was taken"));
    opened_.reset();
    box_log_->info("deposit {}: taken from slot:{}", done.deposit_id, done.slot);
    if (intake_) {
      run(intake_->handle(event::SlotEmptied{done.slot}, now()));
    }
    send_(inventory());
    showBox(std::string(kTextTaken));
    return;
  }
  if (now() < o.deadline_ms) {
    return;
  }
  const Opened done = o;
  std::string detail = "the card was still in the slot when the hold time ran out";
  if (!occupied) {
    detail = "slot sensor: " + occupied.error() + "; the card is taken to be still in its slot";
    journal_.flag(done.deposit_id, "pickup: " + detail);
  }
  finish(done.request_id, ReleaseState::kNotTaken, detail,
         pickupDone(done.request_id, done.slot, done.deposit_id, v1::PICKUP_OUTCOME_NOT_TAKEN,
                    detail));
  opened_.reset();
  box_log_->warn("deposit {}: not taken from slot:{} ({})", done.deposit_id, done.slot, detail);
  send_(inventory());
  showBox(std::string(kTextNotTaken));
}

void Controller::recoverReleases() {
  // Return slots of a session the restart ended: settled from their sensors now.
  std::map<std::string, std::vector<int>> returns;
  for (const auto& r : journal_.unfinishedReleases()) {
    if (r.kind == ReleaseKind::kReturn) {
      const std::string request_id = r.request_id.substr(0, r.request_id.find('/'));
      returns[request_id].push_back(r.slot);
    }
  }
  for (const auto& [request_id, slots] : returns) {
    box_log_->warn("recovery: operator request {} had {} return slot(s) open", request_id,
                   slots.size());
    settleReturns(request_id, slots);
  }
  for (const auto& r : journal_.unfinishedReleases()) {
    if (r.state == ReleaseState::kAsked || r.kind == ReleaseKind::kReturn) {
      continue;  // sent again with the backlog, without a code (see backlog())
    }
    box_log_->warn("recovery: request {} was {} when the kiosk stopped", r.request_id,
                   releaseStateName(r.state));
    if (opened_) {
      // Only one door is ever open; a second one left open is settled as not opened.
      finish(r.request_id, ReleaseState::kNotOpened, "recovered: another door was open",
             r.kind == ReleaseKind::kPickup
                 ? pickupDone(r.request_id, r.slot, r.deposit_id, v1::PICKUP_OUTCOME_NOT_OPENED,
                              "recovered: another door was open")
                 : v1::Envelope{});
      continue;
    }
    // The latch relocked by itself long ago; what is left to learn is whether the card (or the
    // bin's cards) went: the pickup is settled by its slot's sensor at the next poll; the bin
    // waits for its door to be opened and shut again, as before the restart.
    opened_ = Opened{r.request_id,
                     r.kind,
                     r.slot,
                     r.deposit_id,
                     r.kind == ReleaseKind::kPickup ? now() : now() + box_.bin_open_ms,
                     false};
  }
  if (opened_) {
    checkOpened();
  }
}

void Controller::finish(const std::string& request_id, ReleaseState outcome,
                        const std::string& detail, v1::Envelope report) {
  const bool has_report = report.body_case() != v1::Envelope::BODY_NOT_SET;
  if (!has_report) {
    journal_.recordReleaseClosed(request_id, outcome, detail, now());
    return;
  }
  send_(journal_.finishRelease(request_id, outcome, detail, std::move(report), now()));
}

v1::Envelope Controller::pickupDone(const std::string& request_id, int slot,
                                    const std::string& deposit_id, v1::PickupOutcome outcome,
                                    const std::string& detail) const {
  auto env = wire::makeEnvelope(now());
  auto* done = env.mutable_pickup_done();
  done->set_request_id(request_id);
  done->set_deposit_id(deposit_id);
  done->set_slot(static_cast<std::uint32_t>(std::max(slot, 0)));
  done->set_outcome(outcome);
  done->set_detail(detail);
  return env;
}

}  // namespace lostcard::kiosk
