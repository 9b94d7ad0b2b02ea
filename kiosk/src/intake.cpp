#include "lostcard/kiosk/intake.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace lostcard::kiosk {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

bool sameFrames(const std::vector<hw::CapturedFrame>& a, const std::vector<hw::CapturedFrame>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.jpeg == y.jpeg && x.width_px == y.width_px && x.height_px == y.height_px;
  });
}

}  // namespace

bool action::JournalNewDeposit::operator==(const JournalNewDeposit& other) const {
  return deposit_id == other.deposit_id && detected_at_ms == other.detected_at_ms &&
         captured_at_ms == other.captured_at_ms && sameFrames(front, other.front) &&
         sameFrames(back, other.back) && capture_error == other.capture_error;
}

std::string describe(const Action& action) {
  return std::visit(
      Overloaded{
          [](const action::CloseShutter&) -> std::string { return "CloseShutter"; },
          [](const action::OpenShutter&) -> std::string { return "OpenShutter"; },
          [](const action::Show& a) -> std::string { return "Show(" + a.text + ")"; },
          [](const action::Capture& a) -> std::string {
            return "Capture(" + std::to_string(a.frames_per_face) + ")";
          },
          [](const action::JournalNewDeposit& a) -> std::string {
            return "JournalNewDeposit(" + a.deposit_id + ")";
          },
          [](const action::SendCaptured& a) -> std::string {
            return "SendCaptured(" + a.deposit_id + ")";
          },
          [](const action::JournalDisposition& a) -> std::string {
            return "JournalDisposition(" + a.deposit_id + ", " +
                   (a.decision.isStore() ? "store" : "difficult: " + a.decision.reason) + ")";
          },
          [](const action::JournalMoveBegin& a) -> std::string {
            return "JournalMoveBegin(" + a.deposit_id + ", " + a.from.text() + " -> " +
                   a.to.text() + ")";
          },
          [](const action::MoveTo& a) -> std::string {
            return "MoveTo(" + Location::of(a.to).text() + ")";
          },
          [](const action::JournalMoveDone& a) -> std::string {
            return "JournalMoveDone(" + a.deposit_id + ", " + a.at.text() + ")";
          },
          [](const action::JournalMoveFailed& a) -> std::string {
            return "JournalMoveFailed(" + a.deposit_id + ", " + a.at.text() + ")";
          },
          [](const action::SendStored& a) -> std::string {
            return "SendStored(" + a.deposit_id + ", " + a.at.text() + ")";
          },
          [](const action::FlagForOperator& a) -> std::string {
            return "FlagForOperator(" + a.deposit_id + ", " + a.why + ")";
          },
          [](const action::JournalRestock& a) -> std::string {
            return "JournalRestock(" + a.deposit_id + ")";
          },
      },
      action);
}

Intake::Intake(IntakeConfig config, IntakeSnapshot snapshot)
    : config_(config),
      occupied_(std::move(snapshot.occupied_slots)),
      bin_count_(snapshot.bin_count),
      pending_(std::move(snapshot.pending)) {
  if (config_.slot_count < 0 || config_.bin_capacity < 0 || config_.frames_per_face < 1 ||
      config_.max_capture_attempts < 1) {
    throw std::invalid_argument("invalid intake configuration");
  }
  if (snapshot.out_of_order) {
    phase_ = Phase::kOutOfOrder;
  }
  if (snapshot.tray) {
    tray_ = Tray{.deposit_id = snapshot.tray->deposit_id,
                 .detected_at_ms = snapshot.tray->captured_at_ms,
                 .captured_at_ms = snapshot.tray->captured_at_ms,
                 .capture_attempts = 0,
                 .retry_capture_at_ms = std::nullopt,
                 .decision = snapshot.tray->decision,
                 .target = {}};
  }
}

std::optional<std::string> Intake::trayDeposit() const {
  if (!tray_) {
    return std::nullopt;
  }
  return tray_->deposit_id;
}

std::optional<int> Intake::lowestFreeSlot() const {
  for (int i = 0; i < config_.slot_count; ++i) {
    if (!occupied_.contains(i)) {
      return i;
    }
  }
  return std::nullopt;
}

std::vector<Action> Intake::start(std::int64_t now_ms) {
  std::vector<Action> out;
  if (phase_ == Phase::kOutOfOrder) {
    setShutter(false, out);
    show(kTextOutOfOrder, out);
    return out;
  }
  if (tray_) {
    setShutter(false, out);
    show(kTextReading, out);
    phase_ = Phase::kAwaiting;
    if (tray_->decision) {
      decide(*tray_->decision, out);
    }
    return out;
  }
  settle(now_ms, out);
  return out;
}

std::vector<Action> Intake::handle(Event event, std::int64_t now_ms) {
  std::vector<Action> out;
  std::visit(Overloaded{
                 [&](const event::CardDetected& e) { onCardDetected(e, now_ms, out); },
                 [&](event::CaptureSucceeded& e) {
                   onCaptureSucceeded(std::move(e), now_ms, out);  // the frames move on
                 },
                 [&](const event::CaptureFailed& e) { onCaptureFailed(e, now_ms, out); },
                 [&](const event::DispositionReceived& e) { onDisposition(e, now_ms, out); },
                 [&](const event::MoveSucceeded&) { onMoveSucceeded(now_ms, out); },
                 [&](const event::MoveFailed& e) { onMoveFailed(e, out); },
                 [&](const event::SlotEmptied& e) {
                   occupied_.erase(e.slot);
                   onRoomFreed(now_ms, out);
                 },
                 [&](const event::BinEmptied&) {
                   bin_count_ = 0;
                   onRoomFreed(now_ms, out);
                 },
                 [&](const event::Tick&) { onTick(now_ms, out); },
                 [&](const event::OperatorPresent& e) {
                   onOperatorPresent(e.present, now_ms, out);
                 },
                 [&](const event::RestockArmed& e) { onRestockArmed(e, now_ms, out); },
             },
             event);
  return out;
}

void Intake::onCardDetected(const event::CardDetected& e, std::int64_t now_ms,
                            std::vector<Action>& out) {
  // A card seen while another is handled, while full or out of order is left for later (it
  // cannot be there unless forced through the closed shutter).
  if (phase_ != Phase::kIdle || tray_ || e.deposit_id.empty()) {
    return;
  }
  if (operator_present_) {
    // Only the card the operator armed; any other waits on the tray until the session ends.
    if (restock_) {
      takeRestockCard(now_ms, out);
    }
    return;
  }
  tray_ = Tray{.deposit_id = e.deposit_id,
               .detected_at_ms = now_ms,
               .captured_at_ms = 0,
               .capture_attempts = 1,
               .retry_capture_at_ms = std::nullopt,
               .decision = std::nullopt,
               .target = {}};
  phase_ = Phase::kCapturing;
  setShutter(false, out);
  show(kTextReading, out);
  out.push_back(action::Capture{config_.frames_per_face});
}

std::optional<std::string> Intake::restockArmed() const {
  if (!restock_) {
    return std::nullopt;
  }
  return restock_->deposit_id;
}

void Intake::onOperatorPresent(bool present, std::int64_t now_ms, std::vector<Action>& out) {
  operator_present_ = present;
  restock_.reset();
  if (phase_ == Phase::kIdle || phase_ == Phase::kFull) {
    settle(now_ms, out);
  }
  // A finder's card being handled goes on; settle() closes the shutter once it is in.
}

void Intake::onRestockArmed(const event::RestockArmed& e, std::int64_t now_ms,
                            std::vector<Action>& out) {
  if (!operator_present_ || phase_ != Phase::kIdle || tray_ || !lowestFreeSlot() ||
      e.deposit_id.empty()) {
    return;  // the caller checks restockArmed()
  }
  restock_ = e;
  settle(now_ms, out);
}

void Intake::takeRestockCard(std::int64_t now_ms, std::vector<Action>& out) {
  const event::RestockArmed card = *restock_;
  restock_.reset();
  tray_ = Tray{.deposit_id = card.deposit_id,
               .detected_at_ms = now_ms,
               .captured_at_ms = now_ms,
               .capture_attempts = 0,
               .retry_capture_at_ms = std::nullopt,
               .decision = Decision::store(card.last4),
               .target = {}};
  phase_ = Phase::kAwaiting;
  setShutter(false, out);
  show(kTextReading, out);
  out.push_back(action::JournalRestock{card.deposit_id, card.last4});
  decide(*tray_->decision, out);
}

void Intake::onCaptureSucceeded(event::CaptureSucceeded e, std::int64_t now_ms,
                                std::vector<Action>& out) {
  if (phase_ != Phase::kCapturing || tray_->retry_capture_at_ms) {
    return;
  }
  journalCapture(std::move(e.front), std::move(e.back), {}, now_ms, out);
}

void Intake::onCaptureFailed(const event::CaptureFailed& e, std::int64_t now_ms,
                             std::vector<Action>& out) {
  if (phase_ != Phase::kCapturing || tray_->retry_capture_at_ms) {
    return;
  }
  if (tray_->capture_attempts < config_.max_capture_attempts) {
    ++tray_->capture_attempts;
    if (config_.capture_retry_ms > 0) {
      tray_->retry_capture_at_ms = now_ms + config_.capture_retry_ms;
    } else {
      out.push_back(action::Capture{config_.frames_per_face});
    }
    return;
  }
  journalCapture({}, {}, e.error.empty() ? "camera failed" : e.error, now_ms, out);
  // Without images the cloud can only say "difficult": do not keep the finder's box closed
  // waiting for that answer.
  auto decision = Decision::difficult(std::string(kReasonCaptureFailed));
  tray_->decision = decision;
  out.push_back(action::JournalDisposition{tray_->deposit_id, decision});
  decide(decision, out);
}

void Intake::journalCapture(std::vector<hw::CapturedFrame> front,
                            std::vector<hw::CapturedFrame> back, std::string capture_error,
                            std::int64_t now_ms, std::vector<Action>& out) {
  tray_->captured_at_ms = now_ms;
  out.push_back(action::JournalNewDeposit{.deposit_id = tray_->deposit_id,
                                          .detected_at_ms = tray_->detected_at_ms,
                                          .captured_at_ms = now_ms,
                                          .front = std::move(front),
                                          .back = std::move(back),
                                          .capture_error = std::move(capture_error)});
  out.push_back(action::SendCaptured{tray_->deposit_id});
  show(kTextThanks, out);
  thank_you_until_ms_ = now_ms + config_.thank_you_ms;
  phase_ = Phase::kAwaiting;
}

void Intake::onDisposition(const event::DispositionReceived& e, std::int64_t now_ms,
                           std::vector<Action>& out) {
  if (auto it = pending_.find(e.deposit_id); it != pending_.end()) {
    // Went to a slot while the cloud was away: it stays there either way.
    const int slot = it->second;
    pending_.erase(it);
    out.push_back(action::JournalDisposition{e.deposit_id, e.decision});
    if (!e.decision.isStore()) {
      out.push_back(action::FlagForOperator{e.deposit_id, "difficult card in slot"});
    }
    out.push_back(action::SendStored{e.deposit_id, Location::inSlot(slot)});
    return;
  }
  if (!tray_ || tray_->deposit_id != e.deposit_id || tray_->decision) {
    return;  // unknown, or already decided: the first decision holds
  }
  tray_->decision = e.decision;
  out.push_back(action::JournalDisposition{e.deposit_id, e.decision});
  if (phase_ == Phase::kAwaiting) {
    decide(e.decision, out);
  }
  // kMoving (an offline move under way): onMoveSucceeded reports it with the decision.
}

void Intake::decide(const Decision& decision, std::vector<Action>& out) {
  const auto free_slot = lowestFreeSlot();
  if (decision.isStore()) {
    if (free_slot) {
      beginMove(hw::Destination::toSlot(*free_slot), {}, out);
    } else if (binHasRoom()) {
      beginMove(hw::Destination::toBin(), std::string(kReasonBoxFull), out);
    }
  } else {
    if (binHasRoom()) {
      beginMove(hw::Destination::toBin(), {}, out);
    } else if (free_slot) {
      beginMove(hw::Destination::toSlot(*free_slot), std::string(kReasonBinFull), out);
    }
  }
  if (phase_ != Phase::kMoving) {
    // Only reachable when the journal's picture of the box was already full at start-up: the
    // card stays on the tray behind the closed shutter.
    setShutter(false, out);
    show(kTextFull, out);
  }
}

void Intake::beginMove(const hw::Destination& to, std::string note, std::vector<Action>& out) {
  tray_->target = to;
  phase_ = Phase::kMoving;
  out.push_back(action::JournalMoveBegin{tray_->deposit_id, Location::tray(), Location::of(to),
                                         std::move(note)});
  out.push_back(action::MoveTo{tray_->deposit_id, to});
}

void Intake::onMoveSucceeded(std::int64_t now_ms, std::vector<Action>& out) {
  if (phase_ != Phase::kMoving) {
    return;
  }
  const Location at = Location::of(tray_->target);
  if (at.kind == Location::Kind::kSlot) {
    occupied_.insert(at.slot);
  } else {
    ++bin_count_;
  }
  out.push_back(action::JournalMoveDone{tray_->deposit_id, at});
  if (tray_->decision) {
    if (!tray_->decision->isStore() && at.kind == Location::Kind::kSlot) {
      out.push_back(action::FlagForOperator{tray_->deposit_id, "difficult card in slot"});
    }
    out.push_back(action::SendStored{tray_->deposit_id, at});
  } else {
    pending_[tray_->deposit_id] = at.slot;
  }
  tray_.reset();
  settle(now_ms, out);
}

void Intake::onMoveFailed(const event::MoveFailed& e, std::vector<Action>& out) {
  if (phase_ != Phase::kMoving) {
    return;
  }
  out.push_back(action::JournalMoveFailed{tray_->deposit_id, e.where, e.error});
  phase_ = Phase::kOutOfOrder;
  setShutter(false, out);
  show(kTextOutOfOrder, out);
}

void Intake::onTick(std::int64_t now_ms, std::vector<Action>& out) {
  if (phase_ == Phase::kCapturing && tray_->retry_capture_at_ms &&
      now_ms >= *tray_->retry_capture_at_ms) {
    tray_->retry_capture_at_ms.reset();
    out.push_back(action::Capture{config_.frames_per_face});
  }
  if (phase_ == Phase::kIdle && shown_ == kTextThanks && now_ms >= thank_you_until_ms_) {
    show(kTextReady, out);
  }
  if (phase_ == Phase::kAwaiting && config_.offline_timeout_ms > 0 && !tray_->decision &&
      now_ms - tray_->captured_at_ms >= config_.offline_timeout_ms) {
    if (auto slot = lowestFreeSlot()) {
      beginMove(hw::Destination::toSlot(*slot), std::string(kReasonOffline), out);
    }
  }
}

void Intake::onRoomFreed(std::int64_t now_ms, std::vector<Action>& out) {
  if (phase_ == Phase::kFull) {
    settle(now_ms, out);
  } else if (phase_ == Phase::kAwaiting && tray_ && tray_->decision) {
    decide(*tray_->decision, out);  // a decided card that had nowhere to go
  }
}

void Intake::settle(std::int64_t now_ms, std::vector<Action>& out) {
  if (phase_ == Phase::kOutOfOrder) {
    return;
  }
  if (operator_present_) {
    // Closed to finders while the operator works; open for the one card they armed.
    phase_ = hasRoom() ? Phase::kIdle : Phase::kFull;
    setShutter(restock_.has_value(), out);
    show(restock_ ? kTextPutBack : kTextOperator, out);
    return;
  }
  if (hasRoom()) {
    phase_ = Phase::kIdle;
    setShutter(true, out);
    if (shown_ != kTextThanks || now_ms >= thank_you_until_ms_) {
      show(kTextReady, out);
    }
  } else {
    phase_ = Phase::kFull;
    setShutter(false, out);
    show(kTextFull, out);
  }
}

void Intake::show(std::string_view text, std::vector<Action>& out) {
  if (shown_ == text) {
    return;
  }
  shown_ = std::string(text);
  out.push_back(action::Show{shown_});
}

void Intake::setShutter(bool open, std::vector<Action>& out) {
  if (shutter_open_ == open) {
    return;
  }
  shutter_open_ = open;
  if (open) {
    out.push_back(action::OpenShutter{});
  } else {
    out.push_back(action::CloseShutter{});
  }
}

}  // namespace lostcard::kiosk
