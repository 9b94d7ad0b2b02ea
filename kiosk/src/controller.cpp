#include "lostcard/kiosk/controller.hpp"

#include <utility>

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
      log_(wire::componentLogger("kiosk.intake")) {
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

std::vector<v1::Envelope> Controller::backlog() const { return journal_.unackedOutbox(); }

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

}  // namespace lostcard::kiosk
