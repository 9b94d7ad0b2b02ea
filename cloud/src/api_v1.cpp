#include "lostcard/cloud/api_v1.hpp"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <stdexcept>

#include "lostcard/v1/api.pb.h"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

using detail::rfc3339;

AccountStoreOptions accountOptions(const PeopleApiOptions& api) {
  AccountStoreOptions options;
  options.conninfo = api.conninfo;
  options.pool_size = api.threads;
  options.token_ttl = api.token_ttl;
  return options;
}

template <class T>
ApiReply replyFor(const CardDataRead<T>& read) {
  if (!read.access.allowed) {
    return errorReply(read.access.status, read.access.status == 404 ? "not_found" : "forbidden",
                      read.access.reason);
  }
  return jsonReply(read.value);
}

const CardHasher& requiredHasher(const PeopleApiOptions& options) {
  if (options.card_hasher == nullptr) {
    throw std::invalid_argument("the people's API needs the card key (bulk enrollment)");
  }
  return *options.card_hasher;
}

// The tenant a request is about: the `name` query parameter, else the caller's own.
std::string tenantOf(const ApiRequest& request, const char* name, const std::string& own) {
  const auto it = request.query.find(name);
  return it == request.query.end() ? own : it->second;
}

// 1234567 -> "1,234,567": counts in the audit log's detail, whose runs of 6 or more digits are
// masked as possible card numbers (audit.hpp).
std::string withCommas(std::uint64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<std::size_t>(i), ",");
  }
  return digits;
}

std::string reportSummary(const v1::EnrollmentReport& report) {
  return "rows " + withCommas(report.rows()) + ", enrolled " + withCommas(report.enrolled()) +
         ", unchanged " + withCommas(report.unchanged()) + ", rejected " +
         withCommas(report.rejected());
}

const char* bodyErrorCode(unsigned status) {
  switch (status) {
    case 408:
      return "request_timeout";
    case 413:
      return "payload_too_large";
    case 503:
      return "unavailable";
    default:
      return "bad_request";
  }
}

// POST /v1/issuer/enrollments: the body read piece by piece, parsed row by row, written batch
// by batch (card_import.hpp, card_enrollment.hpp); the import audited with its counts.
ApiReply enrollCards(const IssuerApi& issuer, AccountStore& accounts, std::atomic<int>& running,
                     const ApiRequest& r, RequestBodyStream& body) {
  const auto& who = r.principal();
  const auto issuer_id = tenantOf(r, "issuer_id", who.issuer_id);
  if (issuer_id.empty() && who.role == Role::kAdmin) {
    return errorReply(400, "bad_request", "name the issuer: ?issuer_id=ID");
  }
  AuditEntry entry = auditBy(who);
  entry.action = "cards.enroll";
  entry.object_kind = "issuer";
  entry.object_ids = {issuer_id};
  const auto access = mayEnrollIssuerCards(who, issuer_id);
  if (!access.allowed) {
    entry.result = "refused";
    entry.detail = access.reason;
    accounts.audit(entry, r.now);
    return errorReply(access.status, "forbidden", access.reason);
  }
  const auto format = importFormatFromContentType(r.content_type);
  if (!format) {
    return errorReply(415, "unsupported_media_type",
                      "send the rows as text/csv or application/x-ndjson");
  }
  if (!issuer.enrollment.issuerExists(issuer_id)) {
    return errorReply(404, "not_found", "no such issuer");
  }
  if (running.fetch_add(1) >= issuer.max_concurrent_imports) {
    running.fetch_sub(1);
    auto reply = errorReply(429, "too_many_requests",
                            "another enrollment is being imported; try again in a few seconds");
    reply.headers.emplace_back("Retry-After", "5");
    return reply;
  }
  struct Release {
    std::atomic<int>& count;
    ~Release() { count.fetch_sub(1); }
  } release{running};

  CardImportParser parser(*format, issuer.card_formats);
  auto import = issuer.enrollment.begin(issuer_id);
  const auto sink = [&](ImportRow&& row) { import->add(std::move(row)); };
  for (;;) {
    const auto piece = body.next();
    if (!piece.ok) {
      // The batches written so far stay: re-sending the whole body finishes the import.
      import->abandon();
      entry.result = "failed";
      entry.detail = reportSummary(import->report()) + "; the body failed: " + piece.reason;
      accounts.audit(entry, r.now);
      return errorReply(piece.status, bodyErrorCode(piece.status),
                        piece.reason + "; the rows read before line " +
                            std::to_string(parser.lines() + 1) +
                            " may be enrolled: re-send the whole body (enrollment is idempotent)");
    }
    if (piece.data.empty()) {
      break;
    }
    parser.feed(piece.data, sink);
    if (parser.fatal()) {
      break;
    }
  }
  if (!parser.fatal()) {
    parser.finish(sink);
  }
  if (parser.fatal()) {
    import->abandon();
    entry.result = "refused";
    entry.detail = *parser.fatal();
    accounts.audit(entry, r.now);
    return errorReply(400, "bad_request", *parser.fatal());
  }
  import->finish();
  entry.result = "ok";
  entry.detail = reportSummary(import->report());
  accounts.audit(entry, r.now);
  return jsonReply(import->report());
}

}  // namespace

void addApiV1Routes(HttpRouter& router, AccountStore& accounts, CardDataReader& reader,
                    const IssuerApi& issuer) {
  router.add(http::verb::post, "/v1/auth/login", Auth::kNone, [&accounts](const ApiRequest& r) {
    v1::LoginRequest body;
    if (auto bad = parseJsonBody(r, body)) {
      return *bad;
    }
    if (body.login().empty() || body.password().empty()) {
      return errorReply(400, "bad_request", "login and password are required");
    }
    const auto login = accounts.login(body.login(), body.password(), r.now);
    if (!login.session) {
      return errorReply(401, "unauthorized", "wrong login or password");
    }
    v1::LoginResponse out;
    out.set_token(login.token);
    out.set_expires_at(rfc3339(login.session->expires_at));
    out.set_role(roleName(login.session->principal.role));
    return jsonReply(out);
  });

  router.add(http::verb::post, "/v1/auth/logout", Auth::kRequired,
             [&accounts](const ApiRequest& r) {
               accounts.logout(r.token);
               ApiReply reply;
               reply.status = 204;
               return reply;
             });

  router.add(http::verb::get, "/v1/me", Auth::kRequired, [](const ApiRequest& r) {
    const auto& who = r.principal();
    v1::Me me;
    me.set_account_id(who.account_id);
    me.set_login(who.login);
    me.set_role(roleName(who.role));
    me.set_holder_id(who.holder_id);
    me.set_issuer_id(who.issuer_id);
    for (const auto& kiosk : who.kiosk_ids) {
      me.add_kiosk_ids(kiosk);
    }
    me.set_api_key_id(who.api_key_id);
    // An issuer's API key does not expire (it is revoked).
    me.set_token_expires_at(who.api_key_id.empty() ? rfc3339(r.session->expires_at) : "");
    return jsonReply(me);
  });

  router.add(http::verb::get, "/v1/holder/deposits", Auth::kRequired,
             [&reader](const ApiRequest& r) {
               const auto holder = tenantOf(r, "holder_id", r.principal().holder_id);
               if (holder.empty() && r.principal().role == Role::kAdmin) {
                 return errorReply(400, "bad_request", "name the holder: ?holder_id=ID");
               }
               return replyFor(reader.holderDeposits(r.principal(), holder, r.now));
             });

  router.add(http::verb::get, "/v1/operator/kiosks/{id}/deposits", Auth::kRequired,
             [&reader](const ApiRequest& r) {
               return replyFor(reader.kioskDeposits(r.principal(), r.params.at("id"), r.now));
             });

  router.add(http::verb::get, "/v1/issuer/cards", Auth::kRequired, [&reader](const ApiRequest& r) {
    const auto issuer = tenantOf(r, "issuer_id", r.principal().issuer_id);
    if (issuer.empty() && r.principal().role == Role::kAdmin) {
      return errorReply(400, "bad_request", "name the issuer: ?issuer_id=ID");
    }
    return replyFor(reader.issuerCards(r.principal(), issuer, r.now));
  });

  router.addStreaming(http::verb::post, "/v1/issuer/enrollments", Auth::kRequired,
                      issuer.max_import_bytes,
                      [issuer, &accounts, running = std::make_shared<std::atomic<int>>(0)](
                          const ApiRequest& r, RequestBodyStream& body) {
                        return enrollCards(issuer, accounts, *running, r, body);
                      });
}

HttpRouter makeApiV1Router(AccountStore& accounts, CardDataReader& reader, const IssuerApi& issuer,
                           HttpRouter::Clock clock, const HolderApi* holder) {
  HttpRouter router(
      [&accounts, &keys = issuer.keys](std::string_view token,
                                       std::chrono::system_clock::time_point now) {
        if (IssuerKeyStore::looksLikeKey(token)) {
          return keys.authenticate(token, now);
        }
        return accounts.authenticate(token, now);
      },
      std::move(clock));
  addApiV1Routes(router, accounts, reader, issuer);
  if (holder != nullptr) {
    addHolderRoutes(router, *holder);
  }
  return router;
}

PeopleApi::PeopleApi(boost::asio::io_context& io, PeopleApiOptions options)
    : options_(std::move(options)),
      accounts_(accountOptions(options_)),
      reader_({.conninfo = options_.conninfo, .pool_size = options_.threads, .max_rows = 1000}),
      issuer_keys_({.conninfo = options_.conninfo, .pool_size = options_.threads}),
      enrollment_({.conninfo = options_.conninfo, .pool_size = options_.threads},
                  requiredHasher(options_)),
      operator_api_({.conninfo = options_.conninfo,
                     .pool_size = options_.threads,
                     .thresholds = options_.fleet_thresholds,
                     .card_hasher = options_.card_hasher,
                     .card_formats = options_.card_formats,
                     .image_vault = options_.image_vault,
                     .resolve_tries = options_.resolve_tries,
                     .resolve_window = options_.resolve_window}),
      store_({.conninfo = options_.conninfo,
              .pool_size = options_.threads,
              .pickup_code_ttl = options_.pickup_code_ttl,
              .pickup_code_tries = options_.pickup_code_tries,
              .notice_vault = options_.notice_vault}),
      holder_data_({.conninfo = options_.conninfo,
                    .pool_size = options_.threads,
                    .notice_vault = options_.notice_vault,
                    .max_new_codes_per_hour = options_.max_new_codes_per_hour},
                   store_, requiredHasher(options_)),
      notice_streams_({.conninfo = options_.conninfo, .notice_vault = options_.notice_vault}),
      holder_contacts_({.conninfo = options_.conninfo,
                        .pool_size = options_.threads,
                        .notice_vault = options_.notice_vault,
                        .signups_per_ip_per_hour = options_.signups_per_ip_per_hour,
                        .signups_per_hour = options_.signups_per_hour,
                        .allow_http_webhooks = options_.allow_http_webhooks}),
      holder_api_{holder_data_, notice_streams_, &holder_contacts_},
      router_(makeApiV1Router(
          accounts_, reader_,
          IssuerApi{issuer_keys_, enrollment_, options_.card_formats, options_.max_import_bytes,
                    options_.max_concurrent_imports},
          [] { return std::chrono::system_clock::now(); }, &holder_api_)),
      tls_(makeHttpsServerContext(options_.cert_file, options_.key_file)),
      threads_(static_cast<std::size_t>(std::max(1, options_.threads))),
      server_(io, tls_, router_, threads_.get_executor(), options_.server) {
  operator_api_.addRoutes(router_);
}

PeopleApi::~PeopleApi() {
  server_.stop();
  threads_.join();
}

void PeopleApi::start() {
  notice_streams_.start();
  server_.start();
}

void PeopleApi::stop() {
  server_.stop();
  notice_streams_.stop();
}

boost::asio::ip::tcp::endpoint PeopleApi::localEndpoint() const { return server_.localEndpoint(); }

}  // namespace lostcard::cloud
