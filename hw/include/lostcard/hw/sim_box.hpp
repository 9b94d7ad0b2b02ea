#pragma once
// A simulated box whose physical state is a folder tree, so it survives kiosk crashes and other
// processes (the demo, a fault-injection tool, a test) can drop cards and check where every card
// physically is while the kiosk runs.
//
//   ROOT/intake/<card>/front.jpg, back.jpg   the imaging tray (a "card" is such a folder)
//   ROOT/slots/NN/<card>/                    storage slot NN (00, 01, ...), one card each
//   ROOT/bin/<card>/                         the difficult-card bin
//   ROOT/jam/<card>/                         a card stuck in the sorter (after a jam fault)
//   ROOT/transit/<card>/                     a card the sorter is carrying: it has left the tray
//                                            and is not yet in its slot or the bin (a move held
//                                            by hold-mid-move, or cut short by a kill); home()
//                                            carries it back to the tray
//   ROOT/collected/<card>/                   taken out of the box by a cardholder or operator
//   ROOT/faults/<switch>                     fault switches: the file's existence turns it on
//   ROOT/faults/held                         written by the sorter while hold-mid-move holds it
//   ROOT/state/shutter                       "open" or "closed"
//   ROOT/state/display                       the text on the display
//   ROOT/state/unlocked-slot-NN, unlocked-bin   the last unlock of each door (time and hold)
//   ROOT/state/bin-door-open                 exists while an operator holds the bin door open
//   ROOT/keypad/<seq>                        entries typed on the keypad, not yet read by the
//                                            kiosk (one file each, read and removed in order)
//
// Moving a card is one atomic rename() of its folder, so a card is always in exactly one place.
// Folders whose names start with '.' are ignored everywhere: another process drops a card by
// building it under such a name (or outside the tree, on the same filesystem) and renaming it
// into ROOT/intake/, which is what dropCard() does via ROOT/.staging/.
// The shutter state is recorded, not enforced: a card can be dropped whether it is open or not.
//
//   lostcard::hw::SimBox box({.root = "/tmp/box", .slot_count = 8});
//   lostcard::hw::Devices devices = box.devices();   // hand these to the kiosk
//   box.dropCard("/tmp/cards/visa-0001");           // the finder's action
//   box.setFault(lostcard::hw::SimFault::kSorterJam, true);
//   box.cardInSlot(3);                               // where did it go?
//
// A cardholder at the box: they type the slot's number and their code, then take the card
// (collectFromSlot) or walk away from it (do nothing); the slot-door-stuck switch makes the
// door fail to unlock. An operator types the operator key and their code, opens the bin door,
// empties the bin and shuts the door:
//   box.type("03 1234567890");  ...  box.collectFromSlot(2);
//   box.type("* 2468135790");  ...  box.setBinDoorOpen(true); box.emptyBin();
//   box.setBinDoorOpen(false);
// To put a resolved card back, the operator types '#', its restock number and the number printed
// on the card, then puts it in the intake: box.type("#3 4000 0566 5566 5556");
// box.putBack(card);  and '*' alone ends their session.
//
// A deterministic power cut mid-move (what tests and tools/chaos do to a running kiosk):
//   box.holdMidMove();            // the next move stops halfway: card in ROOT/transit/
//   eventually(box.moveHeld());   // ROOT/faults/held appeared: the kiosk is frozen mid-move
//   kill(kiosk_pid, SIGKILL);
//   box.setFault(SimFault::kHoldMidMove, false);   // then restart the kiosk: it re-homes
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/hw/devices.hpp"

namespace lostcard::hw {

struct SimBoxOptions {
  std::filesystem::path root;
  int slot_count = 24;
  int bin_capacity = 100;  // cards
  // Seeds the small per-frame shift/brightness changes of the simulated camera; the same seed
  // gives the same frames.
  int frame_jitter_seed = 0;
};

// Fault switches. Their files under ROOT/faults/ are named by simFaultName().
enum class SimFault {
  kCameraFailure,      // camera-failure: every capture fails
  kSensorStuckOn,      // sensor-stuck-on: the card sensor always sees a card (wins over off)
  kSensorStuckOff,     // sensor-stuck-off: the card sensor never sees a card
  kSorterJam,          // sorter-jam: the next moves carry the card into ROOT/jam/ and fail
  kSlotSensorFailure,  // slot-sensor-failure: slot sensors fail, so moves to slots are refused
  // hold-mid-move: a move carries the card off the tray into ROOT/transit/, writes
  // ROOT/faults/held and waits there until the switch is removed, then finishes. The file may
  // hold a count N: the next N-1 moves go through (counting it down) and the Nth is held.
  kHoldMidMove,
  kSlotDoorStuck,  // slot-door-stuck: slot doors do not unlock (unlockSlot fails)
};

std::string_view simFaultName(SimFault fault);
std::optional<SimFault> simFaultFromName(std::string_view name);
const std::vector<SimFault>& allSimFaults();

// Owns the simulated devices. Every device call reads the folders afresh, so changes made by
// other processes (cards dropped, faults switched) take effect at once.
class SimBox {
 public:
  // Creates the folders if missing; never deletes or moves a card.
  explicit SimBox(SimBoxOptions options);
  ~SimBox();
  SimBox(const SimBox&) = delete;
  SimBox& operator=(const SimBox&) = delete;

  // Pointers valid while the SimBox lives.
  Devices devices();
  const SimBoxOptions& options() const { return options_; }

  // The same as creating/removing ROOT/faults/<name>.
  void setFault(SimFault fault, bool on);
  bool faultOn(SimFault fault) const;
  // Turns hold-mid-move on for the `nth_move`-th move from now (1: the next one).
  void holdMidMove(int nth_move = 1);
  // Whether a sorter is holding a card mid-move now (ROOT/faults/held exists). After a kill the
  // file stays until the next home() or until the hold switch is off and a move finishes.
  bool moveHeld() const;

  // Where cards physically are (card folder names, sorted).
  std::vector<std::string> cardsInIntake() const;
  std::optional<std::string> cardInSlot(int index) const;
  std::vector<std::string> cardsInBin() const;
  std::vector<std::string> cardsJammed() const;
  std::vector<std::string> cardsInTransit() const;
  std::vector<std::string> cardsCollected() const;

  // What the box shows: "open"/"closed" ("closed" before the first open), the display text.
  std::string shutterState() const;
  std::string displayText() const;

  // The finder's action: copies a card folder into the intake (atomically, via ROOT/.staging/).
  // Returns the card's name in the box: the folder's name, with "~2", "~3"... appended when a
  // card of that name is already on the tray. Throws std::filesystem::filesystem_error when
  // the folder can't be copied (a test or tool setup error, not a device failure).
  std::string dropCard(const std::filesystem::path& card_folder);

  // People taking cards out, for the demo and tests: a cardholder empties slot `index`, an
  // operator empties the bin or clears the jammed cards. The cards move to ROOT/collected/.
  // They return the names of the cards taken.
  std::optional<std::string> collectFromSlot(int index);
  std::vector<std::string> emptyBin();
  std::vector<std::string> clearJams();
  // An operator puts a card they took out (ROOT/collected/<card>) back into the intake, to be
  // restocked. Returns its name on the tray; nullopt when no such card was taken out.
  std::optional<std::string> putBack(const std::string& card);

  // Someone types `entry` on the keypad and presses Enter (digits, '*' and ' '). Entries are
  // read by the kiosk in the order typed. Throws std::invalid_argument for other characters.
  void type(const std::string& entry);
  // Entries typed and not yet read by the kiosk.
  int keypadEntriesWaiting() const;
  // An operator opens (true) or shuts (false) the bin door. Opening does not need the lock:
  // the simulator trusts its tests.
  void setBinDoorOpen(bool open);

 private:
  struct Parts;
  SimBoxOptions options_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace lostcard::hw
