// NoticeDelivery against a real PostgreSQL (ctest fixture "pg") and a small webhook server that
// runs inside the test.

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on

#include <sys/wait.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/cloud/registry_http_client.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/cloud/webhook_signature.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/test/webhook_sink_process.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

using lostcard::test::readFile;

constexpr const char* kSecret = "ada-secret-0123456789";

struct ReceivedRequest {
  std::string target, content_type, idempotency_key, signature, body;
  int answered = 0;
};

// An HTTP(S) server on 127.0.0.1 (a free port) standing for the holders' phones: answers each
// POST with the next status from `statuses` (the last one repeats) and records the request.
// With a certificate and key (PEM files) it speaks HTTPS.
class WebhookServer {
 public:
  explicit WebhookServer(std::vector<int> statuses, const std::string& cert_file = "",
                         const std::string& key_file = "")
      : statuses_(std::move(statuses)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    if (!cert_file.empty()) {
      tls_.emplace(asio::ssl::context::tls_server);
      tls_->use_certificate_chain_file(cert_file);
      tls_->use_private_key_file(key_file, asio::ssl::context::pem);
    }
    asio::co_spawn(ioc_, acceptLoop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~WebhookServer() {
    ioc_.stop();
    thread_.join();
  }

  std::string url(const std::string& holder_id) const {
    return std::string(tls_ ? "https" : "http") +
           "://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/holders/" +
           holder_id;
  }
  std::vector<ReceivedRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  asio::awaitable<void> acceptLoop() {
    while (true) {
      auto socket = co_await acceptor_.async_accept(asio::use_awaitable);
      asio::co_spawn(ioc_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
    if (!tls_) {
      co_await exchange(socket);
      beast::error_code ignored;
      socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      co_return;
    }
    asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), *tls_);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
    co_await exchange(stream);
    beast::error_code ignored;
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ignored));
  }

  template <class Stream>
  asio::awaitable<void> exchange(Stream& stream) {
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    co_await http::async_read(stream, buffer, request, asio::use_awaitable);
    ReceivedRequest r;
    r.target = std::string(request.target());
    r.content_type = std::string(request[http::field::content_type]);
    r.idempotency_key = std::string(request["Idempotency-Key"]);
    r.signature = std::string(request[kSignatureHeader]);
    r.body = request.body();
    {
      std::lock_guard lock(mutex_);
      r.answered = statuses_[std::min(requests_.size(), statuses_.size() - 1)];
      requests_.push_back(r);
    }
    http::response<http::string_body> response{static_cast<http::status>(r.answered), 11};
    response.body() = r.answered == 200 ? "ok" : "try later";
    response.keep_alive(false);
    response.prepare_payload();
    co_await http::async_write(stream, response, asio::use_awaitable);
  }

  std::vector<int> statuses_;
  asio::io_context ioc_;
  std::optional<asio::ssl::context> tls_;
  asio::ip::tcp::acceptor acceptor_;
  std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  std::thread thread_;
};

struct Fixture {
  lostcard::test::PgTestDb db;
  Store store{StoreOptions{.conninfo = db.conninfo()}};
  CardHasher hasher{"test-key", std::string(32, 'k')};
  std::int64_t card_id = 0;

  explicit Fixture(const std::string& webhook_url) {
    store.migrate();
    store.upsertIssuer("northwind", "Northwind Bank");
    store.upsertHolder("ada", "Ada Lovelace", webhook_url, kSecret);
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.378177, 8.540192,
                       "Mo-Su 05:00-24:00", 24});
    card_id = store.enrollCard(hasher, "northwind", "ada", "4000056655665556");
  }

  // A stored card with its notice queued; returns the deposit id.
  std::string queueNotice(std::uint32_t slot) {
    DepositDecision d;
    d.deposit_id = lostcard::wire::newUuid();
    d.kiosk_id = "kiosk-1";
    d.store = true;
    d.card_id = card_id;
    d.last4 = "5556";
    const auto now = std::chrono::system_clock::now();
    store.recordDecision(d, now);
    lostcard::v1::Location location;
    location.set_slot(slot);
    REQUIRE(store.recordStored("kiosk-1", d.deposit_id, location, now).notice_queued);
    return d.deposit_id;
  }

  pqxx::row outbox(const std::string& deposit_id) {
    pqxx::connection c(db.conninfo());
    pqxx::read_transaction tx(c);
    return tx.exec_params1(
        "SELECT id::text, attempts, delivered_at IS NOT NULL, gave_up_at IS NOT NULL, "
        "payload_sealed IS NOT NULL, last_error, "
        "payload IS NULL AND payload_key_id IS NULL AND payload_nonce IS NULL "
        "FROM notice_outbox WHERE deposit_id = $1::uuid",
        deposit_id);
  }
};

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("back-off doubles from the initial wait up to the cap") {
  DeliveryOptions o;
  o.initial_backoff = 500ms;
  o.max_backoff = 60000ms;
  CHECK(deliveryBackoff(1, o) == 500ms);
  CHECK(deliveryBackoff(2, o) == 1000ms);
  CHECK(deliveryBackoff(3, o) == 2000ms);
  CHECK(deliveryBackoff(8, o) == 60000ms);
  CHECK(deliveryBackoff(1000, o) == 60000ms);
}

TEST_CASE("webhook URLs are parsed for http and https") {
  auto u = parseHttpUrl("https://app.example/holders/ada?x=1#frag");
  REQUIRE(u.has_value());
  CHECK(u->tls);
  CHECK(u->host == "app.example");
  CHECK(u->port == "443");
  CHECK(u->target == "/holders/ada?x=1");
  u = parseHttpUrl("http://127.0.0.1:8080");
  REQUIRE(u.has_value());
  CHECK_FALSE(u->tls);
  CHECK(u->port == "8080");
  CHECK(u->target == "/");
  u = parseHttpUrl("http://[::1]:9/x");
  REQUIRE(u.has_value());
  CHECK(u->host == "::1");
  CHECK_FALSE(parseHttpUrl("ftp://x/").has_value());
  CHECK_FALSE(parseHttpUrl("http://:80/").has_value());
  CHECK_FALSE(parseHttpUrl("http://host:99999/").has_value());
  CHECK_FALSE(parseHttpUrl("http://user:pw@host/").has_value());
}

TEST_CASE("a notice is retried after a 500 and delivered, signed, with one idempotency key") {
  WebhookServer server({500, 200});
  Fixture f(server.url("ada"));
  NoticeDelivery delivery({.conninfo = f.db.conninfo(),
                           .initial_backoff = 50ms,
                           .max_backoff = 200ms,
                           .request_timeout = 5000ms,
                           .allow_internal_webhooks = true});
  delivery.start();
  const std::string deposit_id = f.queueNotice(7);

  REQUIRE(lostcard::test::eventually([&] { return f.outbox(deposit_id)[2].as<bool>(); }, 30s));
  delivery.stop();

  const auto row = f.outbox(deposit_id);
  const std::string notice_id = row[0].as<std::string>();
  CHECK(row[1].as<int>() == 2);
  CHECK_FALSE(row[3].as<bool>());
  CHECK_FALSE(row[4].as<bool>());  // the payload, pickup code and all, is wiped
  CHECK(row[5].is_null());
  CHECK(row[6].as<bool>());

  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].answered == 500);
  CHECK(requests[1].answered == 200);
  for (const auto& r : requests) {
    CHECK(r.target == "/holders/ada");
    CHECK(r.content_type == "application/json");
    CHECK(r.idempotency_key == notice_id);
    const auto check = verifyWebhook(kSecret, r.body, r.signature, unixNow());
    CHECK(check.ok);
    CHECK_FALSE(verifyWebhook("wrong-secret-0123456789", r.body, r.signature, unixNow()).ok);
    const auto sent = noticeFromJson(r.body);
    REQUIRE(sent.has_value());
    CHECK(sent->notice_id() == notice_id);
    CHECK(sent->deposit_id() == deposit_id);
    CHECK(normalizePickupCode(sent->pickup_code()).size() == 10);
    // Slot index 7 is the door labelled 8.
    CHECK_THAT(sent->message(), Catch::Contains("slot 8 opens"));
  }
  CHECK(requests[0].body == requests[1].body);
}

TEST_CASE("a notice nobody accepts is given up after max_attempts, its payload wiped") {
  WebhookServer server({503});
  Fixture f(server.url("ada"));
  DeliveryOptions options{.conninfo = f.db.conninfo(),
                          .initial_backoff = 1ms,
                          .max_backoff = 1ms,
                          .max_attempts = 3,
                          .allow_internal_webhooks = true};
  NoticeDelivery delivery(options);
  const std::string deposit_id = f.queueNotice(2);
  REQUIRE(lostcard::test::eventually(
      [&] {
        delivery.deliverDue();
        return f.outbox(deposit_id)[3].as<bool>();
      },
      30s));
  const auto row = f.outbox(deposit_id);
  CHECK(row[1].as<int>() == 3);
  CHECK_FALSE(row[2].as<bool>());
  CHECK_FALSE(row[4].as<bool>());
  CHECK_THAT(row[5].as<std::string>(), Catch::Contains("HTTP 503"));
  CHECK(server.requests().size() == 3);
  // Given up: never tried again.
  CHECK(delivery.deliverDue() == 0);
}

TEST_CASE("an unreachable webhook is an attempt with an error, retried later") {
  // A port nothing listens on: bind one, note it, close it.
  std::string url;
  {
    asio::io_context ioc;
    asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/holders/ada";
  }
  Fixture f(url);
  NoticeDelivery delivery(
      {.conninfo = f.db.conninfo(), .initial_backoff = 60000ms, .allow_internal_webhooks = true});
  const std::string deposit_id = f.queueNotice(1);
  CHECK(delivery.deliverDue() == 1);
  const auto row = f.outbox(deposit_id);
  CHECK(row[1].as<int>() == 1);
  CHECK_FALSE(row[2].as<bool>());
  CHECK(row[4].as<bool>());  // still holds the sealed notice: it must still be delivered
  CHECK_FALSE(row[5].is_null());
  // Not due again before its back-off.
  CHECK(delivery.deliverDue() == 0);
}

TEST_CASE("two workers share the outbox and send each notice once") {
  WebhookServer server({200});
  Fixture f(server.url("ada"));
  std::vector<std::string> deposits;
  for (std::uint32_t slot = 1; slot <= 12; ++slot) {
    deposits.push_back(f.queueNotice(slot));
  }
  NoticeDelivery a({.conninfo = f.db.conninfo(), .batch_size = 2, .allow_internal_webhooks = true});
  NoticeDelivery b({.conninfo = f.db.conninfo(), .batch_size = 2, .allow_internal_webhooks = true});
  a.start();
  b.start();
  REQUIRE(lostcard::test::eventually(
      [&] {
        for (const auto& d : deposits) {
          if (!f.outbox(d)[2].as<bool>()) {
            return false;
          }
        }
        return true;
      },
      60s));
  a.stop();
  b.stop();
  std::map<std::string, int> per_key;
  for (const auto& r : server.requests()) {
    ++per_key[r.idempotency_key];
  }
  CHECK(per_key.size() == deposits.size());
  for (const auto& [key, n] : per_key) {
    INFO(key);
    CHECK(n == 1);
  }
}

namespace {

// A self-signed certificate for 127.0.0.1 made with the openssl command line.
void makeCertificate(const std::string& dir) {
  lostcard::test::ChildProcess openssl(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", dir + "/key.pem",
       "-out", dir + "/cert.pem"},
      dir + "/openssl.log");
  const auto status = openssl.waitFor(60s);
  REQUIRE(status.has_value());
  REQUIRE(WIFEXITED(*status));
  REQUIRE(WEXITSTATUS(*status) == 0);
}

}  // namespace

TEST_CASE("https webhooks are verified against the trusted CAs") {
  const std::string dir = lostcard::test::makeTestDir("delivery_https");
  makeCertificate(dir);
  WebhookServer server({200}, dir + "/cert.pem", dir + "/key.pem");
  Fixture f(server.url("ada"));
  const std::string deposit_id = f.queueNotice(6);

  // Without the server's CA the certificate is refused and nothing is sent.
  NoticeDelivery untrusting(
      {.conninfo = f.db.conninfo(), .initial_backoff = 1ms, .allow_internal_webhooks = true});
  CHECK(untrusting.deliverDue() == 1);
  auto row = f.outbox(deposit_id);
  CHECK_FALSE(row[2].as<bool>());
  CHECK_THAT(row[5].as<std::string>(), Catch::Contains("certificate", Catch::CaseSensitive::No));
  CHECK(server.requests().empty());

  NoticeDelivery trusting({.conninfo = f.db.conninfo(),
                           .extra_ca_file = dir + "/cert.pem",
                           .allow_internal_webhooks = true});
  REQUIRE(lostcard::test::eventually(
      [&] {
        trusting.deliverDue();
        return f.outbox(deposit_id)[2].as<bool>();
      },
      30s));
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(verifyWebhook(kSecret, requests[0].body, requests[0].signature, unixNow()).ok);
}

TEST_CASE("webhooks at internal addresses are refused unless allowed, before any connection") {
  using boost::asio::ip::make_address;
  for (const char* internal :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1",
        "::", "fe80::1", "fd00::1", "fc12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
    INFO(internal);
    CHECK(isInternalAddress(make_address(internal)));
  }
  for (const char* external : {"8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1",
                               "2001:4860:4860::8888", "::ffff:8.8.8.8"}) {
    INFO(external);
    CHECK_FALSE(isInternalAddress(make_address(external)));
  }

  // The holder's webhook is the test's server on 127.0.0.1: not sent, the reason recorded.
  WebhookServer server({200});
  Fixture f(server.url("ada"));
  const std::string deposit_id = f.queueNotice(4);
  NoticeDelivery guarded({.conninfo = f.db.conninfo(), .initial_backoff = 1ms});
  CHECK(guarded.deliverDue() == 1);
  const auto row = f.outbox(deposit_id);
  CHECK_FALSE(row[2].as<bool>());
  CHECK_THAT(row[5].as<std::string>(), Catch::Contains("internal addresses"));
  CHECK(server.requests().empty());
  // "localhost" is a name, resolved and refused the same way.
  const auto by_name = httpPost(*parseHttpUrl("http://localhost:9/x"), {}, "{}", 5000ms);
  CHECK(by_name.status == 0);
  CHECK_THAT(by_name.error, Catch::Contains("internal addresses"));

  NoticeDelivery allowed(
      {.conninfo = f.db.conninfo(), .initial_backoff = 1ms, .allow_internal_webhooks = true});
  REQUIRE(lostcard::test::eventually(
      [&] {
        allowed.deliverDue();
        return f.outbox(deposit_id)[2].as<bool>();
      },
      30s));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("lostcard-webhook-sink receives, checks and records each notice once") {
  lostcard::test::WebhookSinkProcess sink(lostcard::test::makeTestDir("delivery_sink"));
  sink.addSecret("ada", kSecret);
  const std::string base = sink.url("");

  Fixture f(base + "/holders/ada");
  NoticeDelivery delivery({.conninfo = f.db.conninfo(), .allow_internal_webhooks = true});
  delivery.start();
  const std::string deposit_id = f.queueNotice(5);
  REQUIRE(lostcard::test::eventually([&] { return f.outbox(deposit_id)[2].as<bool>(); }, 30s));
  delivery.stop();
  const std::string notice_id = f.outbox(deposit_id)[0].as<std::string>();

  REQUIRE(lostcard::test::eventually(
      [&] { return readFile(sink.logFile()).find("slot 6 opens") != std::string::npos; }, 30s));
  const std::string log = readFile(sink.logFile());
  CHECK_THAT(log, Catch::Contains("To: Ada Lovelace"));
  const std::string lines = readFile(sink.outFile());
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
  CHECK(lines.rfind("{\"holder_id\":\"ada\",\"notice\":{", 0) == 0);
  CHECK_THAT(lines, Catch::Contains("\"noticeId\":\"" + notice_id + "\""));
  CHECK_THAT(lines, Catch::Contains("\"depositId\":\"" + deposit_id + "\""));

  // A repeat with the same Idempotency-Key is acknowledged and not recorded again; a forged one
  // is refused.
  const auto url = parseHttpUrl(base + "/holders/ada");
  REQUIRE(url.has_value());
  const std::string body = R"({"notice_id":")" + notice_id + R"(","holder_name":"Ada Lovelace"})";
  const auto repeat = httpPost(*url,
                               {{"Content-Type", "application/json"},
                                {"Idempotency-Key", notice_id},
                                {kSignatureHeader, signWebhook(kSecret, body, unixNow())}},
                               body, 5000ms, "", true);
  CHECK(repeat.status == 200);
  const auto forged =
      httpPost(*url,
               {{"Idempotency-Key", "another"},
                {kSignatureHeader, signWebhook("not-the-secret-0123456789", body, unixNow())}},
               body, 5000ms, "", true);
  CHECK(forged.status == 401);
  CHECK_THAT(forged.body, Catch::Contains("signature mismatch"));
  const auto unknown = httpPost(*parseHttpUrl(base + "/holders/bob"), {}, body, 5000ms, "", true);
  CHECK(unknown.status == 404);
  CHECK(readFile(sink.outFile()) == lines);

  const int status = sink.terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
