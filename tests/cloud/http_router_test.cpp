// The HTTP API's router without a server or a database: matching, authentication, content
// types, errors as JSON; and docs/openapi.yaml naming exactly the v1 routes.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <pqxx/except>
#include <set>
#include <stdexcept>

#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/http_api.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/v1/api.pb.h"

using namespace lostcard::cloud;
namespace v1 = lostcard::v1;

namespace {

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1714564800));

// Knows one token, "good", of a holder.
std::optional<AuthenticatedSession> fakeAuthenticate(std::string_view token,
                                                     std::chrono::system_clock::time_point) {
  if (token != "good") {
    return std::nullopt;
  }
  AuthenticatedSession session;
  session.principal.account_id = 7;
  session.principal.role = Role::kHolder;
  session.principal.holder_id = "ada";
  session.expires_at = kNow + std::chrono::minutes(15);
  return session;
}

HttpRouter testRouter() {
  HttpRouter router(fakeAuthenticate, [] { return kNow; });
  router.add(http::verb::get, "/v1/echo/{id}/things", Auth::kNone, [](const ApiRequest& r) {
    v1::ErrorBody body;  // any message will do: error = the id, reason = the query's q
    body.set_error(r.params.at("id"));
    body.set_reason(r.query.count("q") ? r.query.at("q") : "-");
    return jsonReply(body);
  });
  router.add(http::verb::post, "/v1/login", Auth::kNone, [](const ApiRequest& r) {
    v1::LoginRequest body;
    if (auto bad = parseJsonBody(r, body)) {
      return *bad;
    }
    return errorReply(418, "teapot", body.login());
  });
  router.add(http::verb::get, "/v1/private", Auth::kRequired,
             [](const ApiRequest& r) { return errorReply(200, "ok", r.principal().holder_id); });
  router.add(http::verb::get, "/v1/throws", Auth::kNone,
             [](const ApiRequest&) -> ApiReply { throw std::runtime_error("secret detail"); });
  router.add(http::verb::get, "/v1/db-down", Auth::kNone,
             [](const ApiRequest&) -> ApiReply { throw pqxx::broken_connection("gone"); });
  return router;
}

HttpResponse call(const HttpRouter& router, http::verb method, const std::string& target,
                  const std::string& body = "", const std::string& token = "",
                  const std::string& content_type = "application/json") {
  HttpRequest request{method, target, 11};
  if (!body.empty()) {
    request.set(http::field::content_type, content_type);
    request.body() = body;
    request.prepare_payload();
  }
  if (!token.empty()) {
    request.set(http::field::authorization, "Bearer " + token);
  }
  return router.handle(request, "test");
}

v1::ErrorBody errorOf(const HttpResponse& response) {
  v1::ErrorBody body;
  INFO(response.body());
  REQUIRE(google::protobuf::util::JsonStringToMessage(response.body(), &body).ok());
  return body;
}

}  // namespace

TEST_CASE("path parameters and queries are decoded") {
  const auto router = testRouter();
  const auto r = call(router, http::verb::get, "/v1/echo/kiosk%2D1/things?q=a+b%21&x=1");
  REQUIRE(r.result_int() == 200);
  CHECK(r[http::field::content_type] == "application/json");
  CHECK(r[http::field::cache_control] == "no-store");
  CHECK(errorOf(r).error() == "kiosk-1");
  CHECK(errorOf(r).reason() == "a b!");
  // An encoded slash does not make a segment of its own, and does not match.
  CHECK(call(router, http::verb::get, "/v1/echo/a%2Fb/things").result_int() == 404);
  CHECK(call(router, http::verb::get, "/v1/echo/%4/things").result_int() == 400);
  CHECK(call(router, http::verb::get, "/v1/echo/x/things?q=%zz").result_int() == 400);
  CHECK(call(router, http::verb::get, "/v1/echo//things").result_int() == 404);
  CHECK(call(router, http::verb::get, "/v1/echo/%00/things").result_int() == 400);
  // Bytes that are not UTF-8 (a lone continuation byte, an overlong '/', a surrogate, a cut-off
  // sequence) are refused here, before any of them reaches the database as text.
  for (const char* bad : {"%95", "%C0%AF", "%ED%A0%80", "caf%C3", "%F4%90%80%80"}) {
    INFO(bad);
    CHECK(call(router, http::verb::get, std::string("/v1/echo/") + bad + "/things").result_int() ==
          400);
    CHECK(call(router, http::verb::get, std::string("/v1/echo/x/things?q=") + bad).result_int() ==
          400);
  }
  // Well-formed UTF-8 passes.
  const auto accented = call(router, http::verb::get, "/v1/echo/caf%C3%A9/things?q=%F0%9F%92%B3");
  REQUIRE(accented.result_int() == 200);
  CHECK(errorOf(accented).error() == "caf\xC3\xA9");
  CHECK(errorOf(accented).reason() == "\xF0\x9F\x92\xB3");
}

TEST_CASE("unknown paths are 404, known paths with another method 405 with Allow") {
  const auto router = testRouter();
  const auto missing = call(router, http::verb::get, "/v1/nothing");
  CHECK(missing.result_int() == 404);
  CHECK(errorOf(missing).error() == "not_found");
  const auto wrong = call(router, http::verb::delete_, "/v1/login");
  CHECK(wrong.result_int() == 405);
  CHECK(wrong[http::field::allow] == "POST");
  CHECK(call(router, http::verb::get, "http://elsewhere/v1/login").result_int() == 400);
  CHECK(call(router, http::verb::get, "*").result_int() == 400);
}

TEST_CASE("bodies must be JSON and parse into the route's message") {
  const auto router = testRouter();
  const auto ok = call(router, http::verb::post, "/v1/login", R"({"login": "ada"})");
  CHECK(ok.result_int() == 418);
  CHECK(errorOf(ok).reason() == "ada");
  CHECK(call(router, http::verb::post, "/v1/login", R"({"login": "ada"})", "",
             "application/json; charset=utf-8")
            .result_int() == 418);
  CHECK(call(router, http::verb::post, "/v1/login", R"({"login": "ada"})", "", "text/plain")
            .result_int() == 415);
  const auto bad =
      call(router, http::verb::post, "/v1/login", R"({"login": "ada", "password": "hunter2)");
  CHECK(bad.result_int() == 400);
  // The parser's quote of the input (which may hold a password) is not sent back.
  CHECK(bad.body().find("hunter2") == std::string::npos);
  CHECK(call(router, http::verb::post, "/v1/login", R"({"nope": 1})").result_int() == 400);
  CHECK(call(router, http::verb::post, "/v1/login").result_int() == 400);
}

TEST_CASE("authenticated routes need a known bearer token") {
  const auto router = testRouter();
  const auto none = call(router, http::verb::get, "/v1/private");
  CHECK(none.result_int() == 401);
  CHECK(std::string(none[http::field::www_authenticate]).rfind("Bearer", 0) == 0);
  const auto bad = call(router, http::verb::get, "/v1/private", "", "bad");
  CHECK(bad.result_int() == 401);
  CHECK(std::string(bad[http::field::www_authenticate]).find("invalid_token") != std::string::npos);
  const auto good = call(router, http::verb::get, "/v1/private", "", "good");
  CHECK(good.result_int() == 200);
  CHECK(errorOf(good).reason() == "ada");
  HttpRequest basic{http::verb::get, "/v1/private", 11};
  basic.set(http::field::authorization, "Basic Z29vZA==");
  CHECK(router.handle(basic, "test").result_int() == 401);
}

TEST_CASE("a handler's exception is a 500 (503 for the database) with nothing of its text") {
  const auto router = testRouter();
  const auto thrown = call(router, http::verb::get, "/v1/throws");
  CHECK(thrown.result_int() == 500);
  CHECK(thrown.body().find("secret") == std::string::npos);
  CHECK(errorOf(thrown).error() == "internal");
  CHECK(call(router, http::verb::get, "/v1/db-down").result_int() == 503);
}

TEST_CASE("a streaming route gets its body from the stream, any content type, and its limit") {
  HttpRouter router(fakeAuthenticate, [] { return kNow; });
  router.addStreaming(http::verb::post, "/v1/upload", Auth::kRequired, 1000,
                      [](const ApiRequest& r, RequestBodyStream& body) {
                        std::string all;
                        for (auto piece = body.next(); piece.ok && !piece.data.empty();
                             piece = body.next()) {
                          all += piece.data;
                        }
                        // error = what the stream gave, reason = the Content-Type
                        return errorReply(200, all + "|" + r.body, r.content_type);
                      });
  CHECK(router.streamingLimit(http::verb::post, "/v1/upload?x=1") == 1000u);
  CHECK_FALSE(router.streamingLimit(http::verb::get, "/v1/upload"));
  CHECK_FALSE(router.streamingLimit(http::verb::post, "/v1/other"));
  // Read whole by handle() (as tests do), the body is handed to the handler as one piece.
  const auto reply = call(router, http::verb::post, "/v1/upload", "a,b\n1,2\n", "good", "text/csv");
  CHECK(reply.result_int() == 200);
  CHECK(errorOf(reply).error() == "a,b\n1,2\n|");
  CHECK(errorOf(reply).reason() == "text/csv");
  CHECK(call(router, http::verb::post, "/v1/upload", "x", "bad", "text/csv").result_int() == 401);
}

TEST_CASE("docs/openapi.yaml describes exactly the v1 routes") {
  // The stores connect lazily: never used here.
  AccountStoreOptions options;
  options.conninfo = "host=/nonexistent";
  AccountStore accounts(options);
  CardDataReader reader({.conninfo = "host=/nonexistent", .pool_size = 1, .max_rows = 10});
  IssuerKeyStore keys({.conninfo = "host=/nonexistent"});
  const CardHasher hasher("test-key", std::string(32, 'k'));
  CardEnrollment enrollment({.conninfo = "host=/nonexistent"}, hasher);
  Store store({.conninfo = "host=/nonexistent"});
  HolderData holder_data({.conninfo = "host=/nonexistent"}, store, hasher);
  NoticeStreams streams({.conninfo = "host=/nonexistent"});  // not started
  HolderContacts contacts({.conninfo = "host=/nonexistent"});
  const HolderApi holder{holder_data, streams, &contacts};
  auto router = makeApiV1Router(accounts, reader, {keys, enrollment},
                                [] { return std::chrono::system_clock::now(); }, &holder);
  OperatorApi operator_api({.conninfo = "host=/nonexistent"});
  operator_api.addRoutes(router);
  std::set<std::string> served;
  for (const auto& [method, pattern] : router.routes()) {
    std::string name(http::to_string(method));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    served.insert(name + " " + pattern);
  }
  // "  /v1/...:" starts a path, "    get:" one of its operations.
  std::set<std::string> documented;
  std::ifstream in(lostcard::test::sourceDir() + "/docs/openapi.yaml");
  REQUIRE(in);
  std::string line, path;
  while (std::getline(in, line)) {
    if (line.rfind("  /", 0) == 0 && line.back() == ':') {
      path = line.substr(2, line.size() - 3);
    } else if (line.rfind("    ", 0) == 0 && line.size() > 5 && line[4] != ' ' &&
               line.back() == ':' && !path.empty()) {
      documented.insert(line.substr(4, line.size() - 5) + " " + path);
    } else if (!line.empty() && line[0] != ' ') {
      path.clear();
    }
  }
  CHECK(documented == served);
}

TEST_CASE("the sign-up limit counts the client's address without its port") {
  CHECK(clientAddress("127.0.0.1:40112") == "127.0.0.1");
  CHECK(clientAddress("::1:40112") == "::1");
  CHECK(clientAddress("2001:db8::7:443") == "2001:db8::7");
  CHECK(clientAddress("[2001:db8::7]:443") == "2001:db8::7");
}
