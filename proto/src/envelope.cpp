#include "lostcard/wire/envelope.hpp"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>


namespace lostcard::wire {

std::string newUuid() {
  thread_local boost::uuids::random_generator generator;
  return boost::uuids::to_string(generator());
}

bool isUuid(std::string_view text) {
  if (text.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = text[i];
    const bool lower_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (dash_position ? c != '-' : !lower_hex) {
      return false;
    }
  }
  return true;
}

v1::Envelope makeEnvelope(std::int64_t now_ms) {
  v1::Envelope env;
  env.set_version(v1::PROTOCOL_VERSION_1);
  env.set_message_id(newUuid());
  env.set_sent_at_ms(now_ms);
  return env;
}

v1::Envelope makeAck(std::string_view acked_message_id, std::int64_t now_ms,
                     std::string_view error) {
  auto env = makeEnvelope(now_ms);
  auto* ack = env.mutable_ack();
  ack->set_message_id(std::string(acked_message_id));
  ack->set_error(std::string(error));
  return env;
}

std::string bodyName(const v1::Envelope& env) {
  const auto* field = v1::Envelope::descriptor()->FindFieldByNumber(env.body_case());
  return field != nullptr ? field->name() : "empty";
}

}  // namespace lostcard::wire
