#pragma once
// The logic of lostcard-webhook-sink, without sockets: one call per received request.
//
//   WebhookSink sink(loadSecrets("secrets.tsv"), jsonl_file, std::cout);
//   SinkReply reply = sink.handle(request, now_unix_s);   // answer with reply.status/body
//
// A request is accepted when it is a POST to /holders/<holder_id>[?query] of a known holder (the
// path names the holder as the receiver knows it: the demo uses the cloud's holder ids; a holder
// who signs up picks their own URL), carries a
// valid X-Lostcard-Signature made with that holder's secret, an Idempotency-Key, and a
// RetrievalNotice as JSON. An accepted notice is shown on `screen` ("To: <holder name>" and the
// notice text) and appended to `jsonl` as {"holder_id":..,"notice":{..}}, once per
// Idempotency-Key: repeats are answered 200 and not shown again. The sender uses the notice id
// as the key, so a restarted sink remembers what it already wrote with
// remember(noticeIdsIn(out_file)).
//
// A holder's webhook also receives the code that verifies it (v1.ContactVerification, kind
// "contact.verify", notice.proto), signed the same way: shown ("Code for <holder name>") and
// appended as {"holder_id":..,"contact":{..}}, once per Idempotency-Key (its message id). Holders
// who sign up get a secret the sink cannot know beforehand: setSecrets() replaces the list while
// it runs (lostcard-webhook-sink re-reads its secrets file when the file changes).
//
// It also stands for issuers' systems: a POST to /issuers/<issuer_id> carrying a v1.IssuerEvent
// (api.proto) of that issuer, signed with the secret listed for "issuer:<issuer_id>", is shown
// and appended as {"issuer_id":..,"event":{..}}, once per Idempotency-Key (the event id).
#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace lostcard::v1 {
class ContactVerification;
}

namespace lostcard::tools {

struct SinkRequest {
  std::string method;  // "POST"
  std::string target;  // "/holders/ada"
  std::string signature;
  std::string idempotency_key;
  std::string body;
};

struct SinkReply {
  int status = 200;
  std::string body;  // a short reason
};

// holder_id (or "issuer:<issuer_id>") -> webhook secret
using HolderSecrets = std::map<std::string, std::string>;

// Reads "holder_id<TAB>secret" lines ('#' comments and blank lines skipped). Throws
// std::runtime_error naming the file or the malformed line number.
HolderSecrets loadSecrets(const std::string& path);

// The notice ids (and contact message ids) of the JSON lines a sink wrote to `path` (none when the file does not exist;
// lines that do not parse are skipped).
std::vector<std::string> noticeIdsIn(const std::string& path);

class WebhookSink {
 public:
  WebhookSink(HolderSecrets secrets, std::ostream& jsonl, std::ostream& screen);

  SinkReply handle(const SinkRequest& request, std::int64_t now_unix_s);

  // Replaces the secrets (a new holder's added).
  void setSecrets(HolderSecrets secrets) { secrets_ = std::move(secrets); }

  // Treats these Idempotency-Keys as already received.
  void remember(const std::vector<std::string>& keys);

  // Notices shown and written by this sink (repeats and remembered ones not counted).
  std::size_t accepted() const { return accepted_; }

 private:
  SinkReply handleContact(const SinkRequest& request, const std::string& holder_id,
                          const v1::ContactVerification& message);
  SinkReply handleIssuerEvent(const SinkRequest& request, const std::string& issuer_id,
                              std::int64_t now_unix_s);

  HolderSecrets secrets_;
  std::ostream& jsonl_;
  std::ostream& screen_;
  std::set<std::string> seen_;
  std::size_t accepted_ = 0;
};

}  // namespace lostcard::tools
