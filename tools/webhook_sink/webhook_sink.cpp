#include "webhook_sink.hpp"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <stdexcept>

#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/webhook_signature.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::tools {

namespace {
constexpr std::string_view kHolderPrefix = "/holders/";
constexpr std::string_view kIssuerPrefix = "/issuers/";

// {"holder_id":..,"notice":<notice JSON>} on one line. The holder id is quoted by protobuf's
// JSON mapping (a google.protobuf.Value string) so any character in it is escaped properly.
std::string jsonLine(const std::string& holder_id, const std::string& notice_json) {
  google::protobuf::Value id;
  id.set_string_value(holder_id);
  std::string quoted_id;
  if (!google::protobuf::util::MessageToJsonString(id, &quoted_id).ok()) {
    throw std::logic_error("cannot encode the holder id as JSON");
  }
  return "{\"holder_id\":" + quoted_id + ",\"notice\":" + notice_json + "}";
}

// {"issuer_id":..,"event":<event JSON>} on one line.
std::string eventLine(const std::string& issuer_id, const std::string& event_json) {
  google::protobuf::Value id;
  id.set_string_value(issuer_id);
  std::string quoted_id;
  if (!google::protobuf::util::MessageToJsonString(id, &quoted_id).ok()) {
    throw std::logic_error("cannot encode the issuer id as JSON");
  }
  return "{\"issuer_id\":" + quoted_id + ",\"event\":" + event_json + "}";
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
    const auto notice = parsed.fields().find("notice");
    if (notice == parsed.fields().end()) {
      continue;
    }
    const auto& fields = notice->second.struct_value().fields();
    const auto id = fields.find("noticeId");
    if (id != fields.end() && !id->second.string_value().empty()) {
      ids.push_back(id->second.string_value());
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
  const std::string holder_id(target.substr(kHolderPrefix.size()));
  const auto secret = secrets_.find(holder_id);
  if (holder_id.empty() || secret == secrets_.end()) {
    return {404, "unknown holder"};
  }
  const auto check =
      cloud::verifyWebhook(secret->second, request.body, request.signature, now_unix_s);
  if (!check.ok) {
    return {401, check.reason};
  }
  const auto notice = cloud::noticeFromJson(request.body);
  if (!notice) {
    return {400, "body is not a retrieval notice"};
  }
  if (request.idempotency_key.empty()) {
    return {400, "missing Idempotency-Key"};
  }
  if (seen_.count(request.idempotency_key) != 0) {
    return {200, "already received"};
  }
  const std::string notice_json = cloud::noticeToJson(*notice);
  jsonl_ << jsonLine(holder_id, notice_json) << '\n';
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
  jsonl_ << eventLine(issuer_id, event_json) << '\n';
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
