#pragma once
// What happens to a dropped card: the pure rule that turns a recognition result and the holder
// lookup into a decision. No I/O; the gateway gathers the inputs and records the output.
//
// The rule errs one way only. A card goes to a holder (store) only when the recognizer read
// one checked number with enough confidence AND exactly one enrolled card has that number's
// keyed hash. Everything else is a difficult card for the operator: a missed notice is a
// nuisance, a notice to the wrong person hands a stranger a bank card.
//
//   auto decision = decideDeposit(deposit_id, kiosk_id, reading, owners, policy);
#include <string>
#include <vector>

#include "lostcard/cloud/recognition.hpp"
#include "lostcard/cloud/store.hpp"

namespace lostcard::cloud {

struct DecisionPolicy {
  // Readings below this confidence (0..1) are difficult even when a holder matches.
  double min_confidence = kMinTrustedConfidence;
  // A kiosk sends a few frames per face; more is refused before decoding (each frame costs a
  // full decode and recognition).
  int max_frames_per_face = 8;
};

DepositDecision decideDeposit(const std::string& deposit_id, const std::string& kiosk_id,
                              const CardReading& reading, const std::vector<CardOwner>& owners,
                              const DecisionPolicy& policy);

// "store" or "difficult (unreadable: ...)" for logs; never contains a card number.
std::string describeDecision(const DepositDecision& decision);

}  // namespace lostcard::cloud
