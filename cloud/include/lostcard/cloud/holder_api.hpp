#pragma once
// The holder's own endpoints of the people's API (issue 6), added to the v1 router by
// makeApiV1Router when given a HolderApi:
//
//   GET  /v1/holder/cards                 the holder's cards (card id, issuer, last four)
//   POST /v1/holder/cards                 add a card, with the issuer's proof (card_proof.hpp)
//   POST /v1/holder/card-queries          "is my card in a box?" {card_id} or {number}
//   GET  /v1/holder/notices               the inbox: the holder's notices, newest first
//   GET  /v1/holder/notices/stream        the inbox live: server-sent events, one per notice
//   POST /v1/holder/deposits/{id}/new-code  a new pickup code for a card waiting in a slot
//   GET  /v1/kiosks/{id}                  a box: name, address, coordinates, hours, map link
//   and, given HolderContacts, sign-up and the contact channel (holder_contact.hpp)
//
//   HolderData data({.conninfo = db, .notice_vault = &vault}, store, hasher);
//   NoticeStreams streams({.conninfo = db, .notice_vault = &vault});
//   streams.start();
//   HttpRouter router = makeApiV1Router(accounts, reader, issuer, clock, &holder_api);
//
// Every holder endpoint acts on the caller's own holder id only (mayUseHolderApi); a deposit, a
// card or a notice of someone else gets the same 404 as one that does not exist, and a typed
// number that is not one of the caller's cards gets the same answer as one of theirs that no box
// holds. Every call is audited (audit.hpp) in the transaction that reads or changes the rows,
// never with a number or a code. Numbers typed are only hashed (CardHasher), never kept.
//
// New pickup codes (POST .../new-code, and the notice a card query pushes) are limited to
// max_new_codes_per_hour per holder, counted in the audit log (429 with Retry-After beyond it).
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lostcard/cloud/card_data.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/holder_contact.hpp"
#include "lostcard/cloud/http_api.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::cloud {

struct HolderDataOptions {
  std::string conninfo;
  int pool_size = 2;
  int max_rows = 200;  // notices and cards listed at most
  // Opens the outbox's sealed notices for the inbox (delivery.hpp: loadNoticeVault); must
  // outlive the HolderData. Null: processNoticeVault().
  const ImageVault* notice_vault = nullptr;
  int max_new_codes_per_hour = 5;
};

// The holder's reads and requests, each audited. Thread-safe (a small connection pool).
class HolderData {
 public:
  // `store` (new pickup codes) and `hasher` (typed numbers) must outlive it.
  HolderData(HolderDataOptions options, Store& store, const CardHasher& hasher);
  ~HolderData();
  HolderData(const HolderData&) = delete;
  HolderData& operator=(const HolderData&) = delete;

  CardDataRead<v1::HolderCardList> cards(const Principal& who,
                                         std::chrono::system_clock::time_point now);
  // The card of `request.number` enrolled to the caller for `request.issuer_id`, if the proof is
  // the issuer's (card_proof.hpp). Created: 201 with the card; already the caller's for that
  // issuer: 200 with it (a repeat changes nothing). Refusals: 400 (a number that is not 8 to 19
  // digits, no issuer), 403 (the proof does not match: for this holder, issuer and number),
  // 404 (no such issuer), 409 (the card is enrolled to someone else, or by another issuer:
  // never re-pointed here; the caller proved they know the number and hold the issuer's word).
  CardDataRead<v1::HolderCard> addCard(const Principal& who, const v1::AddCardRequest& request,
                                       std::chrono::system_clock::time_point now,
                                       bool* created = nullptr);
  // Refusals: 400 (neither or both of card_id and number, or a number that is not 8 to 19
  // digits), 404 (a card_id that is not one of the caller's cards).
  CardDataRead<v1::CardQueryResult> queryCard(const Principal& who, const v1::CardQuery& query,
                                              std::chrono::system_clock::time_point now);
  CardDataRead<v1::HolderNoticeList> notices(const Principal& who,
                                             std::chrono::system_clock::time_point now);
  // Refusals: 404 (not a deposit of the caller's), 409 (the card is not waiting in a slot),
  // 429 (too many new codes in the last hour; Access::reason says so).
  CardDataRead<v1::NewCodeResult> newCode(const Principal& who, const std::string& deposit_id,
                                          std::chrono::system_clock::time_point now);
  std::optional<v1::KioskInfo> kiosk(const std::string& kiosk_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct NoticeStreamOptions {
  std::string conninfo;
  const ImageVault* notice_vault = nullptr;  // as HolderDataOptions::notice_vault
  // A comment line (": keep-alive") this often on every stream, so proxies keep it open and a
  // gone client is noticed.
  std::chrono::milliseconds keepalive{15'000};
  // How long the listening thread waits for a NOTIFY before it looks at new subscribers.
  std::chrono::milliseconds listen_slice{100};
  int max_catch_up = 200;  // notices sent at most when a stream resumes (Last-Event-ID)
};

// The live inbox: one thread and ONE database connection for every open stream. The thread
// LISTENs on Store::kNoticeChannel (whose payload is the id of each notice queued, sent when its
// transaction commits), reads that notice once and sends it to the streams of its holder as an
// event "id: <notice id>\nevent: notice\ndata: <HolderNotice JSON>\n\n". A stream that resumes
// (Last-Event-ID: a notice id of its holder) first gets the holder's notices queued after that
// one, by the outbox's stream_seq (migration 9); a broken connection is replaced and every
// stream caught up the same way, so no notice is lost to a reconnection. A stream is dropped
// when its client goes (EventSink::isOpen).
class NoticeStreams {
 public:
  explicit NoticeStreams(NoticeStreamOptions options);
  ~NoticeStreams();  // stops
  NoticeStreams(const NoticeStreams&) = delete;
  NoticeStreams& operator=(const NoticeStreams&) = delete;

  void start();
  void stop();

  // From any thread, without blocking: `sink` gets the holder's notices queued after the one
  // `after_notice_id` names (none of the past when it is "" or not one of theirs), then every
  // new one. Its first event is a comment (": stream open") once it is listening.
  void subscribe(const std::string& holder_id, const std::string& after_notice_id,
                 std::shared_ptr<EventSink> sink);
  std::size_t openStreams() const;

 private:
  void run();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

// What makeApiV1Router needs for the holder's endpoints. All must outlive the router.
struct HolderApi {
  HolderData& data;
  NoticeStreams& streams;
  // Sign-up and the contact's endpoints (holder_contact.hpp); none without it.
  HolderContacts* contacts = nullptr;
};

void addHolderRoutes(HttpRouter& router, const HolderApi& holder);

}  // namespace lostcard::cloud
