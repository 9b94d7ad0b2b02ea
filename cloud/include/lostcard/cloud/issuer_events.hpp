#pragma once
// What issuers are told about their cards: "card.found" (one of its cards is in a box: block
// it), "card.returned" (its holder took it back) and "card.returned_to_issuer" (unclaimed for
// too long, or an operator chose so: it will be sent back). Each event is a v1.IssuerEvent
// (api.proto) in the table issuer_event_outbox (migration 10), queued in the transaction that
// changes the deposit, so an event is sent exactly when the change commits; the notice delivery
// worker (delivery.hpp) POSTs it to the issuer's webhook, signed like holders' notices
// (X-Lostcard-Signature with the issuer's webhook secret, Idempotency-Key = event id), with the
// same retries. The payload holds no secret: card id, last four, kiosk, deposit, time.
//
//   pqxx::work tx(conn);
//   ... UPDATE deposits SET status = 'to_return' ...
//   queueIssuerEvent(tx, deposit_id, "returned_to_issuer");
//   tx.commit();
//
// One event per (deposit, kind): queueing it again does nothing. A deposit whose card is not
// known (a difficult card) has no issuer to tell: nothing is queued. An issuer without a webhook
// keeps its events queued; they go out once `lostcard-admin set-issuer-webhook` gives it one.
#include <chrono>
#include <pqxx/transaction>
#include <string>
#include <string_view>

namespace lostcard::cloud {

// The channel the delivery worker LISTENs on for new issuer events; the payload is the event id.
inline constexpr const char* kIssuerEventChannel = "lostcard_issuer_event";

// `kind` is "found", "returned" or "returned_to_issuer" (std::invalid_argument otherwise); the
// event's time is `now`.
void queueIssuerEvent(pqxx::work& tx, const std::string& depositId, std::string_view kind,
                      std::chrono::system_clock::time_point now);
// The same at the system clock's now.
void queueIssuerEvent(pqxx::work& tx, const std::string& depositId, std::string_view kind);

// "found" -> "card.found", ...; "" for an unknown kind.
std::string issuerEventType(std::string_view kind);

// A new webhook signing secret: 32 random bytes (OpenSSL's RNG) as 64 hex characters.
std::string newWebhookSecret();

// Sets an issuer's webhook (lostcard-admin set-issuer-webhook). Returns false when there is no
// such issuer. Throws std::invalid_argument for a URL that is not http(s):// or a secret shorter
// than 16 characters.
bool setIssuerWebhook(const std::string& conninfo, const std::string& issuer_id,
                      const std::string& url, const std::string& secret);

}  // namespace lostcard::cloud
