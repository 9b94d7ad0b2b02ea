#pragma once
// What lostcard-fault-proxy does to the traffic it forwards, read from a small control file
// that a fault-injection driver (tools/chaos) rewrites at any time:
//
//   delay_ms = 200      # hold every chunk this long before forwarding it (0: none)
//   stall = 1           # forward nothing (bytes wait, connections stay open: a silent network)
//   refuse = 1          # close new connections at once (the cloud looks down)
//   cut = 7             # each time this number changes, every open connection is cut
//
// Missing keys keep their defaults (no fault); '#' starts a comment; unknown keys and malformed
// lines are reported, not fatal, so a half-written file never stops the proxy.
//
//   auto parsed = lostcard::fault_proxy::parseFaultControl(text);
//   if (parsed.control.stall) { ... }
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lostcard::fault_proxy {

struct FaultControl {
  std::int64_t delay_ms = 0;
  bool stall = false;
  bool refuse = false;
  std::int64_t cut_generation = 0;

  bool operator==(const FaultControl&) const = default;
};

struct ParsedFaultControl {
  FaultControl control;
  std::vector<std::string> problems;  // one line per ignored line, with its number
};

ParsedFaultControl parseFaultControl(std::string_view text);

}  // namespace lostcard::fault_proxy
