// lostcard-simbox: looks at and acts on a simulated box (see lostcard/hw/sim_box.hpp) from the
// outside, while a kiosk drives it: the finder, the cardholder, the operator and the fault
// injector in one small tool.
//
//   lostcard-simbox --root /tmp/box status
//   lostcard-simbox --root /tmp/box drop cards/visa-0001 cards/transit-0002
//   lostcard-simbox --root /tmp/box fault sorter-jam on
//   lostcard-simbox --root /tmp/box hold 2        (the 2nd move from now stops mid-move)
//   lostcard-simbox --root /tmp/box collect 3 | empty-bin | clear-jams
//   lostcard-simbox --root /tmp/box type "07 1234567890"   (a cardholder at the keypad)
//   lostcard-simbox --root /tmp/box bin-door open|shut      (an operator at the bin door)
//   lostcard-simbox --root /tmp/box type "#3 4000 0566 5566 5556"; ... put-back CARD
//                                    (an operator restocks a card taken out, after typing its
//                                    restock number and the number printed on it)
//
// `status` prints one fact per line, tab-separated, for scripts:
//   intake <card> | slot <NN> <card> | bin <card> | jam <card> | transit <card> |
//   collected <card> | shutter <open|closed> | display <text, newlines as \n> | fault <name> |
//   held (a sorter is holding a card mid-move)
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "lostcard/hw/sim_box.hpp"
#include "lostcard/wire/log.hpp"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using lostcard::hw::SimBox;
using lostcard::hw::SimBoxOptions;

namespace {

// The slot folders a box already has, so the tool never adds slots the kiosk does not know.
int existingSlotCount(const fs::path& root) {
  int count = 0;
  while (fs::is_directory(root / "slots" / fmt::format("{:02}", count))) {
    ++count;
  }
  return count;
}

void printStatus(const SimBox& box) {
  for (const auto& card : box.cardsInIntake()) {
    std::cout << "intake\t" << card << "\n";
  }
  for (int i = 0; i < box.options().slot_count; ++i) {
    if (auto card = box.cardInSlot(i)) {
      std::cout << fmt::format("slot\t{:02}\t{}\n", i, *card);
    }
  }
  for (const auto& card : box.cardsInBin()) {
    std::cout << "bin\t" << card << "\n";
  }
  for (const auto& card : box.cardsJammed()) {
    std::cout << "jam\t" << card << "\n";
  }
  for (const auto& card : box.cardsInTransit()) {
    std::cout << "transit\t" << card << "\n";
  }
  for (const auto& card : box.cardsCollected()) {
    std::cout << "collected\t" << card << "\n";
  }
  std::cout << "shutter\t" << box.shutterState() << "\n";
  std::string display = box.displayText();
  for (std::size_t at = display.find('\n'); at != std::string::npos; at = display.find('\n', at)) {
    display.replace(at, 1, "\\n");  // one fact per line
  }
  std::cout << "display\t" << display << "\n";
  for (auto fault : lostcard::hw::allSimFaults()) {
    if (box.faultOn(fault)) {
      std::cout << "fault\t" << lostcard::hw::simFaultName(fault) << "\n";
    }
  }
  if (box.moveHeld()) {
    std::cout << "held\n";
  }
}

int usage(const po::options_description& options) {
  std::cerr << "usage: lostcard-simbox --root DIR [--slots N] COMMAND [ARGS]\n"
               "commands: status | drop CARD_FOLDER... | fault NAME on|off | hold NTH_MOVE |\n"
               "          collect SLOT | empty-bin | clear-jams | type ENTRY |\n"
               "          bin-door open|shut | put-back CARD\n"
               "faults: camera-failure sensor-stuck-on sensor-stuck-off sorter-jam "
               "slot-sensor-failure hold-mid-move slot-door-stuck\n\n"
            << options;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options("options");
  std::string root;
  int slots = 24;
  int bin_capacity = 100;
  std::string log_level;
  // clang-format off
  options.add_options()
      ("help,h", "this help")
      ("root", po::value(&root)->required(), "the simulated box's folder")
      ("slots", po::value(&slots), "slot count for a new box (an existing box keeps its own)")
      ("bin-capacity", po::value(&bin_capacity), "cards the bin holds")
      ("log-level", po::value(&log_level)->default_value("warn"), "trace ... off");
  // clang-format on
  po::options_description hidden;
  std::vector<std::string> command;
  hidden.add_options()("command", po::value(&command));
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("command", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help") != 0) {
      usage(options);
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "lostcard-simbox: " << e.what() << "\n";
    return usage(options);
  }
  if (command.empty()) {
    return usage(options);
  }
  lostcard::wire::setLogLevel(log_level);

  try {
    if (const int existing = existingSlotCount(root); existing > 0) {
      slots = existing;
    }
    SimBox box(SimBoxOptions{root, slots, bin_capacity, 0});
    const std::string& verb = command[0];
    if (verb == "status" && command.size() == 1) {
      printStatus(box);
    } else if (verb == "drop" && command.size() >= 2) {
      for (std::size_t i = 1; i < command.size(); ++i) {
        std::cout << box.dropCard(command[i]) << "\n";
      }
    } else if (verb == "fault" && command.size() == 3 &&
               (command[2] == "on" || command[2] == "off")) {
      auto fault = lostcard::hw::simFaultFromName(command[1]);
      if (!fault) {
        std::cerr << "lostcard-simbox: unknown fault '" << command[1] << "'\n";
        return usage(options);
      }
      box.setFault(*fault, command[2] == "on");
    } else if (verb == "hold" && command.size() == 2) {
      const std::string& arg = command[1];
      if (arg.empty() || arg.size() > 6 ||
          arg.find_first_not_of("0123456789") != std::string::npos || std::stoi(arg) < 1) {
        std::cerr << "lostcard-simbox: '" << arg << "' is not a move count (1 = the next)\n";
        return usage(options);
      }
      box.holdMidMove(std::stoi(arg));
    } else if (verb == "collect" && command.size() == 2) {
      const std::string& arg = command[1];
      if (arg.empty() || arg.size() > 4 ||
          arg.find_first_not_of("0123456789") != std::string::npos) {
        std::cerr << "lostcard-simbox: '" << arg << "' is not a slot number\n";
        return usage(options);
      }
      const int slot = std::stoi(arg);
      auto card = box.collectFromSlot(slot);
      if (!card) {
        std::cerr << "lostcard-simbox: slot " << slot << " holds no card\n";
        return 1;
      }
      std::cout << *card << "\n";
    } else if (verb == "empty-bin" && command.size() == 1) {
      for (const auto& card : box.emptyBin()) {
        std::cout << card << "\n";
      }
    } else if (verb == "type" && command.size() >= 2) {
      // `type 07 1234567890` and `type "07 1234567890"` are the same entry.
      std::string entry = command[1];
      for (std::size_t i = 2; i < command.size(); ++i) {
        entry += " " + command[i];
      }
      box.type(entry);
    } else if (verb == "bin-door" && command.size() == 2 &&
               (command[1] == "open" || command[1] == "shut")) {
      box.setBinDoorOpen(command[1] == "open");
    } else if (verb == "put-back" && command.size() == 2) {
      auto card = box.putBack(command[1]);
      if (!card) {
        std::cerr << "lostcard-simbox: no card '" << command[1] << "' was taken out of the box\n";
        return 1;
      }
      std::cout << *card << "\n";
    } else if (verb == "clear-jams" && command.size() == 1) {
      for (const auto& card : box.clearJams()) {
        std::cout << card << "\n";
      }
    } else {
      return usage(options);
    }
  } catch (const std::exception& e) {
    std::cerr << "lostcard-simbox: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
