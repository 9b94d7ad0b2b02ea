// libFuzzer target: request handling of the cloud's HTTP API for people (http_api.hpp): the
// bytes of one client connection, parsed by Boost.Beast's request parser with the server's
// limits (HttpServerOptions: 8 KiB of headers, 64 KiB of body), each request handed to the real
// v1 router (api_v1.hpp) with its real AccountStore and CardDataReader on a real PostgreSQL (a
// fresh database in the cluster of $LOSTCARD_TEST_PG_DIR): one issuer, two holders, a kiosk,
// and accounts for a holder, an operator and issuer staff.
//
//   byte 0    which account's token replaces the text "@token" anywhere in the requests (the
//             fuzzer cannot guess a token): 0 holder, 1 operator, 2 issuer staff, else none;
//   the rest  the raw bytes of the connection (requests one after another, keep-alive)
//
// Checked: every request the parser accepts gets a 2xx or a 4xx (a bad request is the client's
// error, never an internal one: 5xx fails, as would a 503 with the database up); every error is
// JSON {"error": ..., "reason": ...}; every body is JSON.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <array>
#include <cstdlib>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/cloud/api_v1.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/pg_test_db.hpp"

namespace {

namespace http = boost::beast::http;
using namespace lostcard;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::hours(475'000));

struct World {
  test::PgTestDb db;
  cloud::Store store;
  cloud::AccountStore accounts;
  cloud::CardDataReader reader;
  const cloud::CardHasher hasher{"fuzz-key", std::string(32, 'k')};
  cloud::IssuerKeyStore keys;
  cloud::CardEnrollment enrollment;
  cloud::HolderData holder_data;
  cloud::NoticeStreams streams;  // not started: an event stream's answer is its head alone
  cloud::HolderApi holder_api{holder_data, streams};
  cloud::HttpRouter router;
  std::array<std::string, 3> tokens;  // holder, operator, issuer staff

  World()
      : store(storeOptions(db.conninfo())),
        accounts(cloud::AccountStoreOptions{.conninfo = db.conninfo(), .pool_size = 1}),
        reader(cloud::CardDataOptions{.conninfo = db.conninfo(), .pool_size = 1}),
        keys(cloud::IssuerKeyStoreOptions{.conninfo = db.conninfo(), .pool_size = 1}),
        enrollment(cloud::CardEnrollmentOptions{.conninfo = db.conninfo(), .pool_size = 1}, hasher),
        holder_data(cloud::HolderDataOptions{.conninfo = db.conninfo(), .pool_size = 1}, store,
                    hasher),
        streams(cloud::NoticeStreamOptions{.conninfo = db.conninfo()}),
        router(cloud::makeApiV1Router(accounts, reader, {keys, enrollment}, [] { return kNow; },
                                      &holder_api)) {
    store.migrate();
    store.upsertIssuer("bank", "Bank");
    store.upsertHolder("ada", "Ada", "http://127.0.0.1:9/holders/ada", "secret-a");
    store.upsertHolder("bob", "Bob", "http://127.0.0.1:9/holders/bob", "secret-b");
    cloud::KioskRecord kiosk;
    kiosk.id = "kiosk-a";
    kiosk.name = "Box A";
    kiosk.slot_count = 4;
    store.upsertKiosk(kiosk);
    std::array<cloud::AccountSpec, 3> specs;
    specs[0].login = "ada";
    specs[0].role = cloud::Role::kHolder;
    specs[0].holder_id = "ada";
    specs[1].login = "olga";
    specs[1].role = cloud::Role::kOperator;
    specs[1].kiosk_ids = {"kiosk-a"};
    specs[2].login = "ivan";
    specs[2].role = cloud::Role::kIssuerStaff;
    specs[2].issuer_id = "bank";
    for (std::size_t i = 0; i < specs.size(); ++i) {
      accounts.upsertAccount(specs[i], "password-" + specs[i].login, kNow);
      logins[i] = specs[i].login;
      FUZZ_CHECK(login(i));
    }
  }

  static cloud::StoreOptions storeOptions(const std::string& conninfo) {
    cloud::StoreOptions o;
    o.conninfo = conninfo;
    o.pool_size = 1;
    return o;
  }

  // False when refused: the fuzzer's wrong passwords may have locked the account (the clock
  // stands still, so for good); its inputs then go without a token.
  bool login(std::size_t i) {
    tokens[i] = accounts.login(logins[i], "password-" + logins[i], kNow).token;
    return !tokens[i].empty();
  }

  std::array<std::string, 3> logins;
};

// See kiosk_session_fuzz.cpp: deleted by an atexit handler, before libpqxx's statics go.
World* world = nullptr;

std::string withToken(std::string_view input, const std::string& token) {
  std::string out(input);
  for (std::size_t at = out.find("@token"); at != std::string::npos;
       at = out.find("@token", at + token.size())) {
    out.replace(at, 6, token);
  }
  return out;
}

bool isJson(const std::string& body) {
  google::protobuf::Struct parsed;
  return google::protobuf::util::JsonStringToMessage(body, &parsed).ok();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz::quietLogs();
  world = new World();
  std::atexit([] {
    delete world;
    world = nullptr;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::asView(data, size);
  const std::uint8_t who = input.empty() ? 255 : static_cast<std::uint8_t>(input[0]);
  input.remove_prefix(input.empty() ? 0 : 1);
  const std::string bytes = who < 3 ? withToken(input, world->tokens[who]) : std::string(input);

  boost::asio::io_context io;
  boost::beast::test::stream stream(io);
  stream.append({bytes.data(), bytes.size()});
  stream.close_remote();
  boost::beast::flat_buffer buffer;
  const cloud::HttpServerOptions limits;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    boost::beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) {
      break;  // the server answers 400/413/431 and closes the connection
    }
    const auto response = world->router.handle(parser.get(), "127.0.0.1:40000");
    const unsigned status = response.result_int();
    FUZZ_CHECK(status >= 200 && status < 500);
    if (status >= 400) {
      google::protobuf::Struct error;
      FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(response.body(), &error).ok());
      FUZZ_CHECK(error.fields().count("error") == 1 && error.fields().count("reason") == 1);
    } else if (!response.body().empty()) {
      FUZZ_CHECK(isJson(response.body()));
    }
    if (!parser.get().keep_alive()) {
      break;
    }
  }
  // A logout the fuzzer made with a real token: log in again, so the next inputs have one.
  if (who < 3 && !world->accounts.authenticate(world->tokens[who], kNow)) {
    world->login(who);  // may be refused, see World::login
  }
  return 0;
}
