#include "lostcard/cloud/decision.hpp"

#include <cstdio>

#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {

namespace {

DepositDecision difficult(const std::string& deposit_id, const std::string& kiosk_id,
                          v1::DifficultReason reason, std::string detail) {
  DepositDecision d;
  d.deposit_id = deposit_id;
  d.kiosk_id = kiosk_id;
  d.store = false;
  d.reason = reason;
  d.detail = std::move(detail);
  return d;
}

}  // namespace

DepositDecision decideDeposit(const std::string& deposit_id, const std::string& kiosk_id,
                              const CardReading& reading, const std::vector<CardOwner>& owners,
                              const DecisionPolicy& policy) {
  switch (reading.outcome) {
    case ReadOutcome::kBadImage:
      return difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_BAD_IMAGE, reading.detail);
    case ReadOutcome::kUnreadable:
      return difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_UNREADABLE, reading.detail);
    case ReadOutcome::kAmbiguous:
      return difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_AMBIGUOUS, reading.detail);
    case ReadOutcome::kRead:
      break;
  }
  if (reading.number.size() < 4) {
    // A reader that claims success without a number is a bug; never guess.
    return difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_UNREADABLE,
                     "recognizer returned no number");
  }
  if (reading.confidence < policy.min_confidence) {
    char detail[96];
    std::snprintf(detail, sizeof(detail), "low confidence %.2f (minimum %.2f)",
                  reading.confidence, policy.min_confidence);
    return difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_UNREADABLE, detail);
  }
  const std::string last4 = wire::lastFourDigits(reading.number);
  if (owners.empty()) {
    auto d = difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_NO_HOLDER,
                       "no enrolled card has this number");
    d.last4 = last4;
    return d;
  }
  if (owners.size() > 1) {
    auto d = difficult(deposit_id, kiosk_id, v1::DIFFICULT_REASON_AMBIGUOUS,
                       std::to_string(owners.size()) + " enrolled cards match");
    d.last4 = last4;
    return d;
  }
  DepositDecision d;
  d.deposit_id = deposit_id;
  d.kiosk_id = kiosk_id;
  d.store = true;
  d.card_id = owners.front().card_id;
  d.last4 = last4;
  return d;
}

std::string describeDecision(const DepositDecision& decision) {
  if (decision.store) {
    return "store (card ending " + decision.last4 + ")";
  }
  std::string text = "difficult (" + v1::DifficultReason_Name(decision.reason);
  if (!decision.detail.empty()) {
    text += ": " + decision.detail;
  }
  return text + ")";
}

}  // namespace lostcard::cloud
