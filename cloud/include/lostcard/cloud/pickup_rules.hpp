#pragma once
// The rules a pickup code is redeemed by, as pure functions: what the store read about one
// attempt goes in, the verdict comes out. No I/O and no clock (`now` is passed in), so every
// rule is tested without a database; Store::redeemPickupCode (store.hpp) reads the state under
// its locks, checks the code and applies the verdict.
//
// A holder types the slot number from their notice and the code. In this order:
//   1. too many wrong codes at this kiosk within the window  -> KIOSK_THROTTLED (no check)
//   2. no card waiting in that slot (none, or collected)      -> NO_SUCH_DEPOSIT (no check)
//   3. no tries left for that deposit's code                  -> LOCKED          (no check)
//   4. the code has expired                                   -> EXPIRED         (no check)
//   5. not 10 digits                                          -> INVALID_CODE    (no try used)
//   6. the code is checked (slow hash, constant time)         -> OPEN or WRONG_CODE (a try used;
//                                                                 counts against the kiosk)
// Only step 6 tells a guesser anything about a code, and it is reached at most `tries_left`
// times per code and `kiosk_wrong_tries` times per window per kiosk.
//
//   PickupState s = ...;   // read by the store
//   if (auto early = judgeWithoutCode(s, typed, now, limits)) { ...record *early... }
//   else { PickupVerdict v = judgeCode(verifyCode(typed, s.code_hash), s); ... }
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lostcard/v1/kiosk_stream.pb.h"

namespace lostcard::cloud {

struct PickupLimits {
  // Wrong codes typed at one kiosk (all slots together) within `kiosk_window`; at this many,
  // every pickup there is refused until the oldest of them leaves the window.
  int kiosk_wrong_tries = 20;
  std::chrono::seconds kiosk_window{15 * 60};
};

// What the store knows about one attempt, read under its locks.
struct PickupState {
  // Wrong codes typed at this kiosk within the window ending now.
  int kiosk_wrong_tries = 0;
  // When the kiosk_wrong_tries-th newest of them was typed (set when kiosk_wrong_tries reaches
  // the limit): once it leaves the window, the kiosk is below the limit again.
  std::optional<std::chrono::system_clock::time_point> limit_th_newest_wrong_try;

  // The deposit waiting in the slot (stored there, with an unused pickup code), if any.
  bool deposit_waiting = false;
  std::string deposit_id;
  std::string code_hash;  // pickup_codes.code_hash
  int tries_left = 0;
  std::chrono::system_clock::time_point expires_at;
};

struct PickupVerdict {
  v1::PickupResult result = v1::PICKUP_RESULT_UNSPECIFIED;
  // WRONG_CODE: tries left after this one. OPEN: unchanged.
  int tries_left = 0;
  // KIOSK_THROTTLED: until the kiosk takes codes again.
  std::chrono::milliseconds retry_after{0};
};

// Steps 1 to 5 above: the verdict that needs no check of the code, or std::nullopt when the
// code must be checked (then call judgeCode).
std::optional<PickupVerdict> judgeWithoutCode(const PickupState& state, std::string_view typed_code,
                                              std::chrono::system_clock::time_point now,
                                              const PickupLimits& limits);

// Step 6: OPEN when the code matched, else WRONG_CODE with one try fewer.
PickupVerdict judgeCode(bool code_matches, const PickupState& state);

// Whether an attempt with this result counts against the kiosk's window (a code was checked and
// was wrong).
bool countsAgainstKiosk(v1::PickupResult result);

// "open", "wrong_code", "locked", "expired", "no_such_deposit", "kiosk_throttled",
// "invalid_code": the names in pickup_attempts.result, the audit log and logs. "" otherwise.
std::string pickupResultName(v1::PickupResult result);
v1::PickupResult pickupResultFromName(std::string_view name);

// Plain words for the box's display ("Wrong code. 3 tries left."); never a code.
std::string pickupMessage(const PickupVerdict& verdict);

}  // namespace lostcard::cloud
