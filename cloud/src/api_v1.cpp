#include "lostcard/cloud/api_v1.hpp"

#include <algorithm>
#include <ctime>

#include "lostcard/v1/api.pb.h"

namespace lostcard::cloud {

namespace {

// "2024-05-01T12:00:00Z".
std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return out;
}

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

// The tenant a request is about: the `name` query parameter, else the caller's own.
std::string tenantOf(const ApiRequest& request, const char* name, const std::string& own) {
  const auto it = request.query.find(name);
  return it == request.query.end() ? own : it->second;
}

}  // namespace

void addApiV1Routes(HttpRouter& router, AccountStore& accounts, CardDataReader& reader) {
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
    me.set_token_expires_at(rfc3339(r.session->expires_at));
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
}

HttpRouter makeApiV1Router(AccountStore& accounts, CardDataReader& reader,
                           HttpRouter::Clock clock) {
  HttpRouter router(
      [&accounts](std::string_view token, std::chrono::system_clock::time_point now) {
        return accounts.authenticate(token, now);
      },
      std::move(clock));
  addApiV1Routes(router, accounts, reader);
  return router;
}

PeopleApi::PeopleApi(boost::asio::io_context& io, PeopleApiOptions options)
    : options_(std::move(options)),
      accounts_(accountOptions(options_)),
      reader_({.conninfo = options_.conninfo, .pool_size = options_.threads, .max_rows = 1000}),
      router_(makeApiV1Router(accounts_, reader_)),
      tls_(makeHttpsServerContext(options_.cert_file, options_.key_file)),
      threads_(static_cast<std::size_t>(std::max(1, options_.threads))),
      server_(io, tls_, router_, threads_.get_executor(), options_.server) {}

PeopleApi::~PeopleApi() {
  server_.stop();
  threads_.join();
}

void PeopleApi::start() { server_.start(); }

void PeopleApi::stop() { server_.stop(); }

boost::asio::ip::tcp::endpoint PeopleApi::localEndpoint() const { return server_.localEndpoint(); }

}  // namespace lostcard::cloud
