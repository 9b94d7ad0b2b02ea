#include "lostcard/cloud/issuer_events.hpp"

#include <google/protobuf/util/json_util.h>
#include <openssl/rand.h>

#include <ctime>
#include <pqxx/pqxx>
#include <stdexcept>

#include "lostcard/v1/api.pb.h"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

using detail::rfc3339;

}  // namespace

std::string issuerEventType(std::string_view kind) {
  if (kind == "found" || kind == "returned" || kind == "returned_to_issuer") {
    return "card." + std::string(kind);
  }
  return "";
}

void queueIssuerEvent(pqxx::work& tx, const std::string& depositId, std::string_view kind,
                      std::chrono::system_clock::time_point now) {
  const std::string type = issuerEventType(kind);
  if (type.empty()) {
    throw std::invalid_argument("unknown issuer event kind: " + std::string(kind));
  }
  const auto rows = tx.exec_params(
      "SELECT c.issuer_id, c.id, c.last4, d.kiosk_id FROM deposits d "
      "JOIN cards c ON c.id = d.card_id WHERE d.id = $1::uuid",
      depositId);
  if (rows.empty()) {
    return;  // no card known: no issuer to tell
  }
  v1::IssuerEvent event;
  event.set_event_id(wire::newUuid());
  event.set_type(type);
  event.set_issuer_id(rows[0][0].as<std::string>());
  event.set_card_id(rows[0][1].as<std::int64_t>());
  event.set_last4(rows[0][2].as<std::string>());
  event.set_kiosk_id(rows[0][3].as<std::string>());
  event.set_deposit_id(depositId);
  event.set_at(rfc3339(now));
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(event, &json, options).ok()) {
    throw std::runtime_error("cannot write an issuer event as JSON");
  }
  const std::string now_sql = detail::pgTimestamp(now);
  const auto inserted = tx.exec_params(
      "INSERT INTO issuer_event_outbox (id, issuer_id, deposit_id, kind, payload, "
      "                                 next_attempt_at, created_at) "
      "VALUES ($1::uuid, $2, $3::uuid, $4, $5::jsonb, $6::timestamptz, $6::timestamptz) "
      "ON CONFLICT (deposit_id, kind) DO NOTHING RETURNING id",
      event.event_id(), event.issuer_id(), depositId, std::string(kind), json, now_sql);
  if (!inserted.empty()) {
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(kIssuerEventChannel), event.event_id());
    wire::componentLogger("cloud.registry")
        ->info("deposit {}: issuer event {} ({}) queued for issuer {} (card ending {})", depositId,
               event.event_id(), type, event.issuer_id(), event.last4());
  }
}

void queueIssuerEvent(pqxx::work& tx, const std::string& depositId, std::string_view kind) {
  queueIssuerEvent(tx, depositId, kind, std::chrono::system_clock::now());
}

std::string newWebhookSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool setIssuerWebhook(const std::string& conninfo, const std::string& issuer_id,
                      const std::string& url, const std::string& secret) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    throw std::invalid_argument("the webhook URL must start with http:// or https://");
  }
  if (secret.size() < 16) {
    throw std::invalid_argument("the webhook secret must have at least 16 characters");
  }
  pqxx::connection c(conninfo);
  pqxx::work tx(c);
  const auto r =
      tx.exec_params("UPDATE issuers SET webhook_url = $2, webhook_secret = $3 WHERE id = $1",
                     issuer_id, url, secret);
  tx.commit();
  return r.affected_rows() == 1;
}

}  // namespace lostcard::cloud
