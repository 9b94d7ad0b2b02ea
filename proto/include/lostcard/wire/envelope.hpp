#pragma once
// Helpers to make Envelopes: a fresh message id, the protocol version and the send time.
//
//   auto env = makeEnvelope(clock_ms);
//   *env.mutable_heartbeat() = hb;
#include <cstdint>
#include <string>
#include <string_view>

#include "lostcard/v1/kiosk_stream.pb.h"

namespace lostcard::wire {

// A random (version 4) UUID in canonical text form.
std::string newUuid();

// True for a canonical 36-character UUID text (any version) in lower-case hex, the one spelling
// every part uses, so ids compare as plain text everywhere.
bool isUuid(std::string_view text);

v1::Envelope makeEnvelope(std::int64_t now_ms);

v1::Envelope makeAck(std::string_view acked_message_id, std::int64_t now_ms,
                     std::string_view error = {});

// The name of the envelope's body for logs, e.g. "card_captured"; "empty" when none is set.
std::string bodyName(const v1::Envelope& env);

}  // namespace lostcard::wire
