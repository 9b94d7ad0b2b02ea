#include "lostcard/cloud/pickup_rules.hpp"

#include <algorithm>

#include "lostcard/cloud/pickup_code.hpp"

namespace lostcard::cloud {

namespace {

struct ResultName {
  v1::PickupResult result;
  const char* name;
};
constexpr ResultName kResultNames[] = {
    {v1::PICKUP_RESULT_OPEN, "open"},
    {v1::PICKUP_RESULT_WRONG_CODE, "wrong_code"},
    {v1::PICKUP_RESULT_LOCKED, "locked"},
    {v1::PICKUP_RESULT_EXPIRED, "expired"},
    {v1::PICKUP_RESULT_NO_SUCH_DEPOSIT, "no_such_deposit"},
    {v1::PICKUP_RESULT_KIOSK_THROTTLED, "kiosk_throttled"},
    {v1::PICKUP_RESULT_INVALID_CODE, "invalid_code"},
};

PickupVerdict verdict(v1::PickupResult result, int tries_left = 0) {
  PickupVerdict v;
  v.result = result;
  v.tries_left = tries_left;
  return v;
}

}  // namespace

std::optional<PickupVerdict> judgeWithoutCode(const PickupState& state, std::string_view typed_code,
                                              std::chrono::system_clock::time_point now,
                                              const PickupLimits& limits) {
  if (state.kiosk_wrong_tries >= limits.kiosk_wrong_tries) {
    auto v = verdict(v1::PICKUP_RESULT_KIOSK_THROTTLED);
    if (state.limit_th_newest_wrong_try) {
      const auto free_at = *state.limit_th_newest_wrong_try + limits.kiosk_window;
      v.retry_after =
          std::max(std::chrono::milliseconds(0),
                   std::chrono::duration_cast<std::chrono::milliseconds>(free_at - now));
    } else {
      v.retry_after = limits.kiosk_window;
    }
    return v;
  }
  if (!state.deposit_waiting) {
    return verdict(v1::PICKUP_RESULT_NO_SUCH_DEPOSIT);
  }
  if (state.tries_left <= 0) {
    return verdict(v1::PICKUP_RESULT_LOCKED);
  }
  if (now >= state.expires_at) {
    return verdict(v1::PICKUP_RESULT_EXPIRED, state.tries_left);
  }
  if (normalizePickupCode(typed_code).empty()) {
    return verdict(v1::PICKUP_RESULT_INVALID_CODE, state.tries_left);
  }
  return std::nullopt;
}

PickupVerdict judgeCode(bool code_matches, const PickupState& state) {
  if (code_matches) {
    return verdict(v1::PICKUP_RESULT_OPEN, state.tries_left);
  }
  return verdict(v1::PICKUP_RESULT_WRONG_CODE, std::max(0, state.tries_left - 1));
}

bool countsAgainstKiosk(v1::PickupResult result) { return result == v1::PICKUP_RESULT_WRONG_CODE; }

std::string pickupResultName(v1::PickupResult result) {
  for (const auto& entry : kResultNames) {
    if (entry.result == result) {
      return entry.name;
    }
  }
  return "";
}

v1::PickupResult pickupResultFromName(std::string_view name) {
  for (const auto& entry : kResultNames) {
    if (name == entry.name) {
      return entry.result;
    }
  }
  return v1::PICKUP_RESULT_UNSPECIFIED;
}

std::string pickupMessage(const PickupVerdict& v) {
  switch (v.result) {
    case v1::PICKUP_RESULT_OPEN:
      return "Code accepted. Your slot is opening.";
    case v1::PICKUP_RESULT_WRONG_CODE:
      if (v.tries_left <= 0) {
        return "Wrong code. The code is now locked: ask for a new code in your app.";
      }
      return "Wrong code. " + std::to_string(v.tries_left) +
             (v.tries_left == 1 ? " try" : " tries") + " left.";
    case v1::PICKUP_RESULT_LOCKED:
      return "Too many wrong codes for this slot. Ask for a new code in your app.";
    case v1::PICKUP_RESULT_EXPIRED:
      return "This code has expired. Ask for a new code in your app.";
    case v1::PICKUP_RESULT_NO_SUCH_DEPOSIT:
      return "No card waits for pickup in this slot. Check the slot number in your notice.";
    case v1::PICKUP_RESULT_KIOSK_THROTTLED: {
      const auto minutes = std::max<long long>(1, std::chrono::duration_cast<std::chrono::minutes>(
                                                      v.retry_after + std::chrono::seconds(59))
                                                      .count());
      return "Too many wrong codes at this box. Try again in " + std::to_string(minutes) +
             (minutes == 1 ? " minute." : " minutes.");
    }
    case v1::PICKUP_RESULT_INVALID_CODE:
      return "A pickup code has 10 digits. Please type it again.";
    default:
      return "The code could not be checked. Please try again.";
  }
}

}  // namespace lostcard::cloud
