#pragma once
// The endpoints of the people's API, version 1 (docs/openapi.yaml describes them):
//
//   POST /v1/auth/login                      {login, password} -> {token, expires_at, role}
//   POST /v1/auth/logout                     ends the token (204)
//   GET  /v1/me                              who the token belongs to
//   GET  /v1/holder/deposits                 a holder's own deposits
//   GET  /v1/operator/kiosks/{id}/deposits   an operator's kiosk's deposits
//   GET  /v1/issuer/cards                    issuer staff: their issuer's cards
//   POST /v1/issuer/enrollments              issuer staff: bulk enrollment, a CSV or NDJSON
//                                            body read streamed (card_enrollment.hpp) -> report
//   and, given a HolderApi, the holder's own endpoints and GET /v1/kiosks/{id} (holder_api.hpp)
//
//   AccountStore accounts({.conninfo = db});
//   CardDataReader reader({.conninfo = db});
//   IssuerKeyStore keys({.conninfo = db});
//   CardEnrollment enrollment({.conninfo = db}, hasher);
//   HttpRouter router = makeApiV1Router(accounts, reader, {keys, enrollment, formats});
//
// A bearer credential is either a person's token ("lc_...", accounts.hpp) or an issuer's API
// key ("lck_...", issuer_keys.hpp), which acts as that issuer's staff.
//
// or, all of it on one io_context (what lostcard-cloud --http-listen runs):
//
//   PeopleApi api(io, {.conninfo = db, .cert_file = crt, .key_file = key, .server = {...}});
//   api.start();   // ... api.stop() on SIGTERM
//
// Who may see what is decided in authorization.hpp; every read of card data is audited by
// CardDataReader, every login by AccountStore.
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <optional>
#include <vector>

#include "lostcard/cloud/accounts.hpp"
#include "lostcard/cloud/card_data.hpp"
#include "lostcard/cloud/card_enrollment.hpp"
#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/cloud/holder_api.hpp"
#include "lostcard/cloud/http_api.hpp"
#include "lostcard/cloud/issuer_keys.hpp"
#include "lostcard/cloud/operator_api.hpp"

namespace lostcard::cloud {

// What the issuer endpoints use. The stores must outlive the router.
struct IssuerApi {
  IssuerKeyStore& keys;
  CardEnrollment& enrollment;
  std::vector<CardFormat> card_formats = defaultCardFormats();  // models/card_formats.conf
  // Largest enrollment body (413 beyond it; a million rows of CSV are about 40 MB).
  std::uint64_t max_import_bytes = std::uint64_t{1} << 30;
  // Imports running at once, across issuers; one more gets 429 with Retry-After (an import
  // holds one of the API's threads for as long as its body takes to arrive).
  int max_concurrent_imports = 1;
};

// Adds the v1 endpoints to `router`.
void addApiV1Routes(HttpRouter& router, AccountStore& accounts, CardDataReader& reader,
                    const IssuerApi& issuer);

// A router that authenticates people's tokens with `accounts` and issuers' API keys with
// `issuer.keys`, and serves the v1 endpoints (the holder's too, with `holder`); `clock` is for
// tests.
HttpRouter makeApiV1Router(
    AccountStore& accounts, CardDataReader& reader, const IssuerApi& issuer,
    HttpRouter::Clock clock = [] { return std::chrono::system_clock::now(); },
    const HolderApi* holder = nullptr);

struct PeopleApiOptions {
  std::string conninfo;
  std::string cert_file, key_file;  // the cloud's server certificate (the kiosks' one will do)
  std::chrono::minutes token_ttl{15};
  HttpServerOptions server;
  // Threads that run requests (database calls, Argon2id at about 64 MiB each): apart from the
  // recognition workers, so logins cannot starve the kiosks, and bounded, so they bound memory.
  int threads = 2;
  // Bulk enrollment: the card key (required; must outlive the PeopleApi), the accepted card
  // formats and the limits of IssuerApi.
  const CardHasher* card_hasher = nullptr;
  std::vector<CardFormat> card_formats = defaultCardFormats();
  std::uint64_t max_import_bytes = std::uint64_t{1} << 30;
  int max_concurrent_imports = 1;
  // Operators' endpoints (operator_api.hpp): the alert thresholds, and the image key that opens
  // difficult cards' photos (null: those requests get 503; must outlive the PeopleApi).
  FleetThresholds fleet_thresholds{};
  const ImageVault* image_vault = nullptr;
  // Numbers an operator may type to resolve difficult cards, and the window (operator_api.hpp).
  int resolve_tries = 20;
  std::chrono::seconds resolve_window{3600};
  // The holder's endpoints: the notice key (loadNoticeVault; must outlive the PeopleApi; null:
  // processNoticeVault) and the rules of the new pickup codes they issue (store.hpp).
  const ImageVault* notice_vault = nullptr;
  std::chrono::hours pickup_code_ttl{24 * 14};
  int pickup_code_tries = 5;
  int max_new_codes_per_hour = 5;
  // Holders' sign-up (holder_contact.hpp): its limits, and whether http:// webhooks are accepted
  // (a demo on one machine; https only otherwise).
  int signups_per_ip_per_hour = 5;
  int signups_per_hour = 100;
  bool allow_http_webhooks = false;
};

// The whole API service: accounts, audited reads, the v1 router, its TLS context and server,
// and the threads its requests run on.
class PeopleApi {
 public:
  // Throws when the certificate or key cannot be loaded.
  PeopleApi(boost::asio::io_context& io, PeopleApiOptions options);
  ~PeopleApi();  // stops and joins its threads
  PeopleApi(const PeopleApi&) = delete;
  PeopleApi& operator=(const PeopleApi&) = delete;

  void start();  // binds; throws when the address cannot be bound
  void stop();
  boost::asio::ip::tcp::endpoint localEndpoint() const;

 private:
  PeopleApiOptions options_;
  AccountStore accounts_;
  CardDataReader reader_;
  IssuerKeyStore issuer_keys_;
  CardEnrollment enrollment_;
  OperatorApi operator_api_;
  Store store_;
  HolderData holder_data_;
  NoticeStreams notice_streams_;
  HolderContacts holder_contacts_;
  HolderApi holder_api_;
  HttpRouter router_;
  boost::asio::ssl::context tls_;
  boost::asio::thread_pool threads_;
  HttpServer server_;
};

}  // namespace lostcard::cloud
