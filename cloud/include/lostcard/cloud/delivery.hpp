#pragma once
// The notice delivery worker: sends the retrieval notices that Store::recordStored puts in the
// outbox to the holders' webhooks, until each is delivered.
//
//   NoticeDelivery delivery({.conninfo = conninfo});
//   delivery.start();   // a thread: LISTEN for new notices, poll every second as a fallback
//   ...
//   delivery.stop();    // also done by the destructor
//
// Each notice is POSTed as JSON to its holder's webhook_url (http:// or https://) with
//   Content-Type: application/json
//   Idempotency-Key: <notice id>            (the same on every attempt)
//   X-Lostcard-Signature: t=..,v1=..        (webhook_signature.hpp, the holder's secret)
// A 2xx answer marks it delivered and clears the pickup code from the stored payload. Anything
// else is retried after an exponential back-off (deliveryBackoff), up to max_attempts; then the
// notice is given up (gave_up_at) and its code cleared too.
//
// Several workers (one per cloud node) share the outbox: due rows are claimed with
// SELECT ... FOR UPDATE SKIP LOCKED and leased (next_attempt_at pushed past the request's
// deadline), so a notice is sent by one worker at a time and picked up again if a worker dies
// mid-request. Receivers drop repeats by Idempotency-Key.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace lostcard::cloud {

struct DeliveryOptions {
  std::string conninfo;
  std::chrono::milliseconds initial_backoff{500};
  // A holder's endpoint may be down for a day: retries back off to hourly and go on for about
  // 3.7 days (13 doubling tries to reach an hour, then hourly) before the notice is given up.
  std::chrono::milliseconds max_backoff{3'600'000};
  int max_attempts = 100;
  std::chrono::milliseconds request_timeout{5000};
  // Extra CA certificates (PEM) trusted for https webhooks, besides the system's.
  std::string extra_ca_file{};
  // Notices claimed per round.
  int batch_size = 16;
};

// The wait before the next attempt after `attempts` failed ones (1, 2, ...):
// initial_backoff * 2^(attempts-1), capped at max_backoff.
std::chrono::milliseconds deliveryBackoff(int attempts, const DeliveryOptions& options);

class NoticeDelivery {
 public:
  explicit NoticeDelivery(DeliveryOptions options);
  ~NoticeDelivery();
  NoticeDelivery(const NoticeDelivery&) = delete;
  NoticeDelivery& operator=(const NoticeDelivery&) = delete;

  void start();
  void stop();

  // One round without the thread: claims the notices due now and tries each once. Returns the
  // number of attempts made. For tools and tests; do not mix with start().
  int deliverDue();

 private:
  void run();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace lostcard::cloud
