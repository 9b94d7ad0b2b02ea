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
//   on SIGTERM:         controller.shutdown();
//
// Single-threaded: call everything from one thread (the daemon's io_context). Hardware calls
// block for as long as the device takes. A journal failure throws JournalError: the box cannot
// go on without knowing where its cards are.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lostcard/hw/devices.hpp"
#include "lostcard/kiosk/intake.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"

namespace spdlog {
class logger;
}

namespace lostcard::kiosk {

// The text the journal keeps for a cloud's difficult reason, e.g. "no holder: <detail>".
std::string difficultReasonText(const v1::Disposition::Difficult& difficult);

class Controller {
 public:
  using ClockMs = std::function<std::int64_t()>;
  using Sender = std::function<void(const v1::Envelope&)>;

  // `config.slot_count` is taken from the sorter.
  Controller(hw::Devices devices, Journal& journal, IntakeConfig config, ClockMs clock_ms,
             Sender send);
  ~Controller();

  void start();
  void poll();
  void onMessage(const v1::Envelope& env);
  v1::Envelope heartbeat() const;
  std::vector<v1::Envelope> backlog() const;
  void shutdown();

  // nullptr before start().
  const Intake* intake() const { return intake_ ? &*intake_ : nullptr; }

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
  bool stopped_ = false;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace lostcard::kiosk
