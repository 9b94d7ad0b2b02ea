#include "webhook_sink.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "lostcard/cloud/notice.hpp"
#include "lostcard/cloud/webhook_signature.hpp"
#include "lostcard/test/child_process.hpp"

using namespace lostcard::tools;
using namespace std::chrono_literals;

namespace {
constexpr std::int64_t kNow = 1714564800;
const std::string kSecret = "ada-secret-0123456789";

std::string noticeJson(const std::string& notice_id) {
  lostcard::cloud::NoticeInput in;
  in.notice_id = notice_id;
  in.deposit_id = "0b7e7c55-3c1f-4f9e-8a53-0d5c0e2b9f11";
  in.holder_name = "Ada \"Countess\" Lovelace";
  in.card_last4 = "4242";
  in.issuer_name = "Northwind Bank";
  in.kiosk.set_name("Main Station");
  in.kiosk.set_address("Station Square 1");
  in.slot = 3;
  in.pickup_code = "314-159-2653";
  in.stored_at = std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
  in.pickup_code_expires_at = in.stored_at + 24h;
  return lostcard::cloud::noticeToJson(lostcard::cloud::buildNotice(in));
}

SinkRequest signedRequest(const std::string& body, const std::string& key = "n1") {
  return {"POST", "/holders/ada", lostcard::cloud::signWebhook(kSecret, body, kNow), key, body};
}

struct Fixture {
  std::ostringstream jsonl, screen;
  WebhookSink sink{{{"ada", kSecret}}, jsonl, screen};
};
}  // namespace

TEST_CASE("a signed notice is shown once and written down once") {
  Fixture f;
  const auto request = signedRequest(noticeJson("n1"));
  const auto reply = f.sink.handle(request, kNow);
  CHECK(reply.status == 200);
  CHECK_THAT(f.screen.str(), Catch::Contains("To: Ada \"Countess\" Lovelace"));
  CHECK_THAT(f.screen.str(), Catch::Contains("314-159-2653"));
  // Slot index 3 is the door labelled 4.
  CHECK_THAT(f.screen.str(), Catch::Contains("slot 4 opens"));
  const std::string line = f.jsonl.str();
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  INFO(line);
  CHECK(line.rfind("{\"holder_id\":\"ada\",\"notice\":{", 0) == 0);
  CHECK_THAT(line, Catch::Contains("\"noticeId\":\"n1\""));
  CHECK_THAT(line, Catch::Contains("Ada \\\"Countess\\\" Lovelace"));

  // The same Idempotency-Key again: acknowledged, not shown again.
  const auto repeat = f.sink.handle(request, kNow + 5);
  CHECK(repeat.status == 200);
  CHECK(f.jsonl.str() == line);
  CHECK(f.sink.accepted() == 1);
}

TEST_CASE("bad or missing signatures are 401 with a reason") {
  Fixture f;
  auto request = signedRequest(noticeJson("n1"));
  request.body += " ";
  auto reply = f.sink.handle(request, kNow);
  CHECK(reply.status == 401);
  CHECK(reply.body == "signature mismatch");
  request = signedRequest(noticeJson("n1"));
  request.signature.clear();
  reply = f.sink.handle(request, kNow);
  CHECK(reply.status == 401);
  CHECK_THAT(reply.body, Catch::Contains("missing"));
  CHECK(f.sink.handle(signedRequest(noticeJson("n1")), kNow + 3600).status == 401);
  CHECK(f.jsonl.str().empty());
  CHECK(f.screen.str().empty());
}

TEST_CASE("other requests are refused") {
  Fixture f;
  auto request = signedRequest(noticeJson("n1"));
  request.target = "/holders/bob";
  CHECK(f.sink.handle(request, kNow).status == 404);
  request.target = "/elsewhere";
  CHECK(f.sink.handle(request, kNow).status == 404);
  request = signedRequest(noticeJson("n1"));
  request.method = "GET";
  CHECK(f.sink.handle(request, kNow).status == 405);
  CHECK(f.sink.handle(signedRequest("{not json"), kNow).status == 400);
  CHECK(f.sink.handle(signedRequest(noticeJson("n1"), ""), kNow).status == 400);
  CHECK(f.sink.accepted() == 0);
}

TEST_CASE("a restarted sink remembers the notices it already wrote") {
  const std::string path = lostcard::test::makeTestDir("webhook_sink_test") + "/notices.jsonl";
  {
    std::ofstream out(path);
    WebhookSink first({{"ada", kSecret}}, out, std::cout);
    REQUIRE(first.handle(signedRequest(noticeJson("n1"), "n1"), kNow).status == 200);
    out << "not json\n";
  }
  CHECK(noticeIdsIn(path) == std::vector<std::string>{"n1"});
  CHECK(noticeIdsIn(path + ".missing").empty());

  Fixture f;
  f.sink.remember(noticeIdsIn(path));
  CHECK(f.sink.handle(signedRequest(noticeJson("n1"), "n1"), kNow).status == 200);
  CHECK(f.jsonl.str().empty());
  CHECK(f.sink.handle(signedRequest(noticeJson("n2"), "n2"), kNow).status == 200);
  CHECK_THAT(f.jsonl.str(), Catch::Contains("\"noticeId\":\"n2\""));
}

TEST_CASE("an issuer's event is checked against its issuer's secret and kept once") {
  const std::string secret = "northwind-secret-0123456789";
  std::ostringstream jsonl, screen;
  WebhookSink sink{{{"issuer:northwind", secret}, {"ada", kSecret}}, jsonl, screen};
  const std::string body =
      R"({"event_id":"e1","type":"card.found","issuer_id":"northwind","card_id":"7",)"
      R"("last4":"5556","kiosk_id":"k1","deposit_id":"d1","at":"2024-05-01T12:00:00Z"})";
  const auto to = [&](const std::string& target, const std::string& with, const std::string& b) {
    return SinkRequest{"POST", target, lostcard::cloud::signWebhook(with, b, kNow), "e1", b};
  };
  CHECK(sink.handle(to("/issuers/northwind", kSecret, body), kNow).status == 401);  // ada's
  CHECK(sink.handle(to("/issuers/contoso", secret, body), kNow).status == 404);
  CHECK(sink.handle(to("/issuers/northwind", secret, "{\"pickup\":1}"), kNow).status == 400);
  CHECK(jsonl.str().empty());
  CHECK(sink.handle(to("/issuers/northwind", secret, body), kNow).status == 200);
  CHECK(sink.handle(to("/issuers/northwind", secret, body), kNow).status == 200);  // a repeat
  CHECK(jsonl.str() ==
        R"({"issuer_id":"northwind","event":{"event_id":"e1","type":"card.found",)"
        R"("issuer_id":"northwind","card_id":"7","last4":"5556","kiosk_id":"k1",)"
        R"("deposit_id":"d1","at":"2024-05-01T12:00:00Z"}})" "\n");
  CHECK(screen.str().find("card.found: card 7 ending 5556, kiosk k1") != std::string::npos);
}

TEST_CASE("a contact code is taken for a holder whose secret arrived later, once") {
  std::ostringstream jsonl, screen;
  WebhookSink sink({{"ada", kSecret}}, jsonl, screen);
  const std::string body =
      R"({"kind": "contact.verify", "message_id": "m1", "holder_id": "h-9", "holder_name": "Grace",)"
      R"( "code": "271-828-1828", "code_expires_at": "2024-05-01T12:30:00Z", "message": "Type it"})";
  const SinkRequest request{"POST", "/holders/grace?v=2",
                            lostcard::cloud::signWebhook("grace-secret-0123456789", body, kNow),
                            "m1", body};
  CHECK(sink.handle(request, kNow).status == 404);  // not known yet
  sink.setSecrets({{"ada", kSecret}, {"grace", "grace-secret-0123456789"}});
  CHECK(sink.handle(request, kNow).status == 200);
  CHECK(sink.handle(request, kNow).body == "already received");
  CHECK_THAT(screen.str(), Catch::Contains("Code for Grace"));
  const std::string line = jsonl.str();
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  CHECK(line.rfind("{\"holder_id\":\"grace\",\"contact\":{", 0) == 0);
  CHECK_THAT(line, Catch::Contains("\"code\":\"271-828-1828\""));
  // Another kind is not a contact code (nor a notice).
  const std::string other = R"({"kind": "contact.other", "message_id": "m2"})";
  CHECK(sink.handle({"POST", "/holders/grace",
                     lostcard::cloud::signWebhook("grace-secret-0123456789", other, kNow), "m2",
                     other},
                    kNow)
            .status == 400);
}
