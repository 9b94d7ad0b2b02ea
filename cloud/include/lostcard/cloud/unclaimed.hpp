#pragma once
// Cards nobody came for: a card waiting in a slot (status "stored", decided "store") for longer
// than `after`, counted from the later of its storing and its holder's last action on it
// (holder_action_at: asking whether a box holds it, or asking for a new code; a holder who is
// coming is not sent away), is marked for return to its issuer, in one transaction per sweep: the
// deposit becomes "to_return" (return_reason "unclaimed"; its pickup code no longer opens, as only
// a "stored" card's does), the holder's notices not yet delivered are withdrawn (their code no
// longer works), its issuer gets "card.returned_to_issuer" (issuer_events.hpp), the change is
// audited (action "deposits.unclaimed", actor "system"), and the card appears on its kiosk's
// collection list (operator_api.hpp) for the operator to take out.
//
//   UnclaimedSweep sweep(conninfo, {.after = std::chrono::hours(24 * 30)});
//   sweep.start();   // at start, then every `interval` (hourly), until stop()
//   ...
//   int marked = markUnclaimedForReturn(conninfo, now, std::chrono::hours(24 * 30));  // by hand
//
// Every cloud node may run one: rows are taken FOR UPDATE SKIP LOCKED and each change is made
// once (a deposit already marked is no longer "stored").
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace lostcard::cloud {

// Marks the cards stored, and last asked about by their holder, at or before `now - after`;
// returns how many. Throws pqxx errors.
int markUnclaimedForReturn(const std::string& conninfo, std::chrono::system_clock::time_point now,
                           std::chrono::hours after);

struct UnclaimedOptions {
  std::chrono::hours after{24 * 30};
  std::chrono::milliseconds interval{std::chrono::hours(1)};
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

class UnclaimedSweep {
 public:
  UnclaimedSweep(std::string conninfo, UnclaimedOptions options);
  ~UnclaimedSweep();
  UnclaimedSweep(const UnclaimedSweep&) = delete;
  UnclaimedSweep& operator=(const UnclaimedSweep&) = delete;

  void start();
  void stop();  // returns once the sweep in hand (if any) is done
  // One sweep now; database errors are logged and give -1 (the next sweep tries again).
  int sweepOnce();

 private:
  std::string conninfo_;
  UnclaimedOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace lostcard::cloud
