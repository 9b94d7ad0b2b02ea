// `tools/demo.py --serve`: the whole demo, then the system keeps running with the people's
// HTTPS API of the real lostcard-cloud process (--http-listen) until SIGTERM. The test waits for
// the "serving: kiosk=HOST:PORT http=HOST:PORT" line, logs in as the demo's operator, issuer
// staff and holder (passwords from the run's accounts.tsv) over real TLS, checks what each may
// and may not see, then stops the demo with SIGTERM and expects a clean exit.
#include <google/protobuf/util/json_util.h>
#include <sys/wait.h>

#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <regex>
#include <string>

#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/v1/api.pb.h"

namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
namespace test = lostcard::test;
namespace v1 = lostcard::v1;
using namespace std::chrono_literals;

namespace {

using Reply = test::HttpsReply;

Reply request(unsigned short port, const std::string& ca_file, http::verb method,
              const std::string& target, const std::string& token, const std::string& body = "") {
  return test::httpsRequest(port, ca_file, std::string(http::to_string(method)), target, token,
                            body);
}

template <class M>
M parse(const Reply& reply) {
  M m;
  INFO(reply.body);
  REQUIRE(google::protobuf::util::JsonStringToMessage(reply.body, &m).ok());
  return m;
}

}  // namespace

TEST_CASE("tools/demo --serve keeps the system and its API running until SIGTERM") {
  const fs::path dir = test::makeTestDir("demo_serve_e2etest");
  const fs::path run = dir / "run";
  const fs::path log = dir / "demo.log";
  test::ChildProcess demo({"/usr/bin/env", "python3", test::sourceDir() + "/tools/demo.py",
                           "--keep", run.string(), "--serve"},
                          log.string());

  std::smatch serving;
  const std::regex kServing(R"(serving: kiosk=127\.0\.0\.1:(\d+) http=127\.0\.0\.1:(\d+))");
  std::string output;
  REQUIRE(test::eventually(
      [&] {
        output = test::readFile(log);
        return std::regex_search(output, serving, kServing) || !demo.running();
      },
      900s));
  INFO(output);
  REQUIRE(demo.running());
  CHECK(output.find("demo: dropped=7 notified=5 difficult=3 picked_up=1 lost=0") !=
        std::string::npos);
  const auto http_port = static_cast<unsigned short>(std::stoi(serving[2].str()));
  const auto ca = (run / "pki" / "ca.crt").string();

  std::map<std::string, std::string> passwords;
  for (const auto& line : test::readLines(run / "accounts.tsv")) {
    const auto tab = line.find('\t');
    passwords[line.substr(0, tab)] = line.substr(tab + 1);
  }
  REQUIRE(passwords.size() == 3);
  const auto login = [&](const std::string& who) {
    const auto reply =
        request(http_port, ca, http::verb::post, "/v1/auth/login", "",
                R"({"login": ")" + who + R"(", "password": ")" + passwords[who] + R"("})");
    REQUIRE(reply.status == 200);
    return parse<v1::LoginResponse>(reply).token();
  };
  CHECK(request(http_port, ca, http::verb::post, "/v1/auth/login", "",
                R"({"login": "olga", "password": "not-her-password"})")
            .status == 401);

  // The operator serves kiosk-hbf only.
  const auto olga = login("olga");
  const auto hbf =
      request(http_port, ca, http::verb::get, "/v1/operator/kiosks/kiosk-hbf/deposits", olga);
  REQUIRE(hbf.status == 200);
  CHECK(parse<v1::DepositList>(hbf).deposits_size() == 4);
  CHECK(request(http_port, ca, http::verb::get, "/v1/operator/kiosks/kiosk-campus/deposits", olga)
            .status == 403);

  // Issuer staff of nordbank: nordbank's cards, another issuer's refused.
  const auto ines = login("ines");
  const auto cards = request(http_port, ca, http::verb::get, "/v1/issuer/cards", ines);
  REQUIRE(cards.status == 200);
  CHECK(parse<v1::IssuerCardList>(cards).issuer_id() == "nordbank");
  CHECK(parse<v1::IssuerCardList>(cards).cards_size() > 0);
  CHECK(request(http_port, ca, http::verb::get, "/v1/issuer/cards?issuer_id=citytransit", ines)
            .status == 403);

  // The holder: her own deposit only.
  const auto ada = login("ada");
  const auto own = request(http_port, ca, http::verb::get, "/v1/holder/deposits", ada);
  REQUIRE(own.status == 200);
  REQUIRE(parse<v1::DepositList>(own).deposits_size() == 1);
  CHECK(parse<v1::DepositList>(own).deposits(0).status() == "collected");  // she took it back
  CHECK(request(http_port, ca, http::verb::get, "/v1/holder/deposits?holder_id=holder-alan", ada)
            .status == 403);

  const int status = demo.terminate(120s);
  const auto after = test::readFile(log);
  INFO(after);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(after.find("demo: signal 15: stopping") != std::string::npos);
  CHECK(test::readFile(run / "cloud.log").find("people's API on port") != std::string::npos);
}
