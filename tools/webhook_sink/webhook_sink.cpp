#include "webhook_sink.hpp"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <optional>
#include <stdexcept>

#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/webhook_signature.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::tools {

namespace {
constexpr std::string_view kHolderPrefix = "/holders/";
constexpr std::string_view kIssuerPrefix = "/issuers/";

// {"<who_key>":<who>,"<what_key>":<what JSON>} on one line: {"holder_id":..,"notice":..},
// {"holder_id":..,"contact":..}, {"issuer_id":..,"event":..}. The id is quoted by protobuf's JSON
// mapping (a google.protobuf.Value string) so any character in it is escaped properly.
std::string jsonLine(const char* who_key, const std::string& who, const char* what_key,
                     const std::string& what_json) {
  google::protobuf::Value id;
  id.set_string_value(who);
  std::string quoted_id;
  if (!google::protobuf::util::MessageToJsonString(id, &quoted_id).ok()) {
    throw std::logic_error("cannot encode the id as JSON");
  }
  return std::string("{\"") + who_key + "\":" + quoted_id + ",\"" + what_key + "\":" +
         what_json + "}";
}

// A contact message: its JSON names every field of ContactVerification, none other, and its kind.
std::optional<v1::ContactVerification> contactFromJson(const std::string& body) {
  v1::ContactVerification message;
  if (!google::protobuf::util::JsonStringToMessage(body, &message).ok() ||
      message.kind() != "contact.verify") {
    return std::nullopt;
  }
  return message;
}
}  // namespace

HolderSecrets loadSecrets(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read secrets file " + path);
  }
  HolderSecrets secrets;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 == line.size()) {
      throw std::runtime_error(path + " line " + std::to_string(number) +
                               ": expected holder_id<TAB>secret");
    }
    secrets[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return secrets;
}

std::vector<std::string> noticeIdsIn(const std::string& path) {
  std::vector<std::string> ids;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    google::protobuf::Struct parsed;
    if (line.empty() || !google::protobuf::util::JsonStringToMessage(line, &parsed).ok()) {
      continue;
    }
    for (const auto& [what, id_key] : {std::pair{"notice", "noticeId"},
                                       std::pair{"contact", "messageId"}}) {
      const auto found = parsed.fields().find(what);
      if (found == parsed.fields().end()) {
        continue;
      }
      const auto& fields = found->second.struct_value().fields();
      const auto id = fields.find(id_key);
      if (id != fields.end() && !id->second.string_value().empty()) {
        ids.push_back(id->second.string_value());
      }
    }
  }
  return ids;
}

WebhookSink::WebhookSink(HolderSecrets secrets, std::ostream& jsonl, std::ostream& screen)
    : secrets_(std::move(secrets)), jsonl_(jsonl), screen_(screen) {}

void WebhookSink::remember(const std::vector<std::string>& keys) {
  seen_.insert(keys.begin(), keys.end());
}

SinkReply WebhookSink::handle(const SinkRequest& request, std::int64_t now_unix_s) {
  if (request.method != "POST") {
    return {405, "only POST"};
  }
  std::string_view target = request.target;
  if (target.starts_with(kIssuerPrefix)) {
    return handleIssuerEvent(request, std::string(target.substr(kIssuerPrefix.size())),
                             now_unix_s);
  }
  if (!target.starts_with(kHolderPrefix)) {
    return {404, "not found"};
  }
  // The query, if any, is the receiver's own business (a holder may add one to a new URL).
  const std::string holder_id(target.substr(kHolderPrefix.size(),
                                            target.find('?') == std::string_view::npos
                                                ? std::string_view::npos
                                                : target.find('?') - kHolderPrefix.size()));
  const auto secret = secrets_.find(holder_id);
  if (holder_id.empty() || secret == secrets_.end()) {
    return {404, "unknown holder"};
  }
  const auto check =
      cloud::verifyWebhook(secret->second, request.body, request.signature, now_unix_s);
  if (!check.ok) {
    return {401, check.reason};
  }
  if (const auto contact = contactFromJson(request.body)) {
    return handleContact(request, holder_id, *contact);
  }
  const auto notice = cloud::noticeFromJson(request.body);
  if (!notice || notice->notice_id().empty()) {
    return {400, "body is not a retrieval notice"};
  }
  if (request.idempotency_key.empty()) {
    return {400, "missing Idempotency-Key"};
  }
  if (seen_.count(request.idempotency_key) != 0) {
    return {200, "already received"};
  }
  const std::string notice_json = cloud::noticeToJson(*notice);
  jsonl_ << jsonLine("holder_id", holder_id, "notice", notice_json) << '\n';
  jsonl_.flush();
  if (!jsonl_) {
    return {500, "cannot write the notice down"};  // the sender retries
  }
  screen_ << "---- notice " << notice->notice_id() << " ----\n"
          << "To: " << notice->holder_name() << "\n"
          << notice->message() << "\n";
  screen_.flush();
  seen_.insert(request.idempotency_key);
  ++accepted_;
  return {200, "received"};
}

}  // namespace lostcard::tools

namespace lostcard::tools {

SinkReply WebhookSink::handleContact(const SinkRequest& request, const std::string& holder_id,
                                     const v1::ContactVerification& message) {
  if (request.idempotency_key.empty()) {
    return {400, "missing Idempotency-Key"};
  }
  if (seen_.count(request.idempotency_key) != 0) {
    return {200, "already received"};
  }
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json).ok()) {
    return {500, "cannot write the message down"};
  }
  jsonl_ << jsonLine("holder_id", holder_id, "contact", json) << '\n';
  jsonl_.flush();
  if (!jsonl_) {
    return {500, "cannot write the message down"};
  }
  screen_ << "---- contact code " << message.message_id() << " ----\n"
          << "Code for " << message.holder_name() << "\n"
          << message.message() << "\n";
  screen_.flush();
  seen_.insert(request.idempotency_key);
  ++accepted_;
  return {200, "received"};
}

SinkReply WebhookSink::handleIssuerEvent(const SinkRequest& request, const std::string& issuer_id,
                                         std::int64_t now_unix_s) {
  const auto secret = secrets_.find("issuer:" + issuer_id);
  if (issuer_id.empty() || secret == secrets_.end()) {
    return {404, "unknown issuer"};
  }
  const auto check =
      cloud::verifyWebhook(secret->second, request.body, request.signature, now_unix_s);
  if (!check.ok) {
    return {401, check.reason};
  }
  v1::IssuerEvent event;
  if (!google::protobuf::util::JsonStringToMessage(request.body, &event).ok() ||
      event.event_id().empty()) {
    return {400, "body is not an issuer event"};
  }
  if (event.issuer_id() != issuer_id) {
    return {400, "the event is about another issuer"};
  }
  if (request.idempotency_key.empty()) {
    return {400, "missing Idempotency-Key"};
  }
  if (seen_.count(request.idempotency_key) != 0) {
    return {200, "already received"};
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string event_json;
  if (!google::protobuf::util::MessageToJsonString(event, &event_json, options).ok()) {
    return {500, "cannot write the event down"};
  }
  jsonl_ << jsonLine("issuer_id", issuer_id, "event", event_json) << '\n';
  jsonl_.flush();
  if (!jsonl_) {
    return {500, "cannot write the event down"};
  }
  screen_ << "---- issuer event " << event.event_id() << " ----\n"
          << "To issuer: " << issuer_id << "\n"
          << event.type() << ": card " << event.card_id() << " ending " << event.last4()
          << ", kiosk " << event.kiosk_id() << ", " << event.at() << "\n";
  screen_.flush();
  seen_.insert(request.idempotency_key);
  ++accepted_;
  return {200, "received"};
}

}  // namespace lostcard::tools
