// The lostcard-kiosk program itself, with a simulated box, against a fake cloud that speaks the
// real protocol over mutual TLS on a loopback port (certificates from tools/pki).
#include <catch2/catch.hpp>

// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fake_cloud.hpp"
#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/uplink.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/tls.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace v1 = lostcard::v1;
using lostcard::kiosk::TlsStream;
using lostcard::kiosk::test::BasicCloudEnd;
using lostcard::kiosk::test::runUntil;
using lostcard::test::ChildProcess;

namespace {

using lostcard::test::readFile;

// The fleet CA, the cloud's certificate for "localhost" and 127.0.0.1, and one kiosk's.
struct Pki {
  explicit Pki(const fs::path& dir) : dir(dir) {
    const std::string tool = lostcard::test::sourceDir() + "/tools/pki";
    for (const std::string& args :
         {std::string("init ") + dir.string(), "server " + dir.string() + " localhost 127.0.0.1",
          "kiosk " + dir.string() + " kiosk-test"}) {
      REQUIRE(std::system((tool + " " + args + " >/dev/null").c_str()) == 0);
    }
  }
  lostcard::wire::TlsFiles server() const {
    return {(dir / "ca.crt").string(), (dir / "server/localhost.crt").string(),
            (dir / "server/localhost.key").string()};
  }
  lostcard::wire::TlsFiles kiosk() const {
    return {(dir / "ca.crt").string(), (dir / "kiosks/kiosk-test.crt").string(),
            (dir / "kiosks/kiosk-test.key").string()};
  }
  fs::path dir;
};

// A cloud that accepts mutual-TLS connections and records the client certificates' names.
class TlsCloud {
 public:
  TlsCloud(asio::io_context& io, const lostcard::wire::TlsFiles& files)
      : io_(io),
        context_(lostcard::wire::makeServerContext(files)),
        acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(io, acceptLoop(), asio::detached);
  }
  ~TlsCloud() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& end : ends) {
      end->hangUp();
    }
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  std::vector<std::shared_ptr<BasicCloudEnd<TlsStream>>> ends;
  std::vector<std::string> client_names;
  std::vector<std::string> failed_handshakes;

 private:
  asio::awaitable<void> acceptLoop() {
    while (true) {
      boost::system::error_code ec;
      auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        co_return;
      }
      TlsStream stream(std::move(socket), context_);
      co_await stream.async_handshake(asio::ssl::stream_base::server,
                                      asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        failed_handshakes.push_back(ec.message());
        continue;
      }
      client_names.push_back(lostcard::wire::peerCommonName(stream.native_handle()));
      ends.push_back(lostcard::kiosk::test::startCloudEnd(io_, std::move(stream)));
    }
  }

  asio::io_context& io_;
  asio::ssl::context context_;
  asio::ip::tcp::acceptor acceptor_;
};

fs::path makeCard(const fs::path& dir, const std::string& name) {
  const fs::path card = dir / name;
  fs::create_directories(card);
  for (const char* face : {"front", "back"}) {
    cv::Mat image(60, 96, CV_8UC3, cv::Scalar(40, 90, 120));
    cv::putText(image, face, {8, 30}, cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(255, 255, 255));
    REQUIRE(cv::imwrite((card / (std::string(face) + ".jpg")).string(), image));
  }
  return card;
}

}  // namespace

TEST_CASE("the TLS connector checks the cloud's name and shows the kiosk's certificate",
          "[daemon][tls]") {
  const fs::path dir = lostcard::test::makeTestDir("kiosk_daemon_simtest/connector");
  Pki pki(dir / "pki");
  asio::io_context io;
  TlsCloud cloud(io, pki.server());
  auto client = lostcard::wire::makeClientContext(pki.kiosk());

  auto attempt = [&](const std::string& server_name) {
    auto connector = lostcard::kiosk::makeTlsConnector(
        io.get_executor(), client, {"127.0.0.1", std::to_string(cloud.port()), server_name});
    std::optional<lostcard::kiosk::Connected<TlsStream>> result;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result.emplace(co_await connector()); },
        asio::detached);
    REQUIRE(runUntil(io, [&] { return result.has_value(); }));
    return std::move(*result);
  };

  auto good = attempt("localhost");
  CHECK(good.error.empty());
  CHECK(good.stream.has_value());
  REQUIRE(runUntil(io, [&] { return cloud.client_names.size() == 1; }));
  CHECK(cloud.client_names[0] == "kiosk-test");

  auto wrong = attempt("cloud.elsewhere.example");
  CHECK_FALSE(wrong.stream.has_value());
  CHECK_THAT(wrong.error, Catch::Contains("handshake"));
}

TEST_CASE("lostcard-kiosk takes a card over TLS, prints its journal and stops on SIGTERM",
          "[daemon][sim]") {
  const fs::path dir = lostcard::test::makeTestDir("kiosk_daemon_simtest/daemon");
  Pki pki(dir / "pki");
  asio::io_context io;
  TlsCloud cloud(io, pki.server());
  const fs::path box_root = dir / "box";
  const fs::path journal = dir / "state" / "journal.sqlite";
  const auto kiosk_files = pki.kiosk();

  // Options from a config file, as a deployment would have them, plus the command line.
  std::ofstream(dir / "kiosk.conf") << "id = kiosk-test\n"
                                    << "ca = " << kiosk_files.ca_file << "\n"
                                    << "cert = " << kiosk_files.cert_file << "\n"
                                    << "key = " << kiosk_files.key_file << "\n"
                                    << "hw = sim\n"
                                    << "slots = 3\n";
  ChildProcess daemon(
      {lostcard::test::binDir() + "/lostcard-kiosk", "--config", (dir / "kiosk.conf").string(),
       "--cloud", "127.0.0.1:" + std::to_string(cloud.port()), "--server-name", "localhost",
       "--journal", journal.string(), "--sim-root", box_root.string(), "--poll-ms", "10",
       "--heartbeat-ms", "100", "--log-level", "debug",
       // This fake cloud answers only what the test tells it to (no heartbeat acks).
       "--peer-timeout-ms", "-1"},
      (dir / "kiosk.log").string());

  REQUIRE(runUntil(io, [&] { return !cloud.ends.empty() && !cloud.ends[0]->got.empty(); }));
  auto& end = *cloud.ends[0];
  REQUIRE(end.got[0].has_hello());
  CHECK(end.got[0].hello().kiosk_id() == "kiosk-test");
  CHECK(cloud.client_names[0] == "kiosk-test");
  end.helloAck();

  // The finder drops a card into the running box.
  lostcard::hw::SimBox box({.root = box_root, .slot_count = 3});
  box.dropCard(makeCard(dir / "cards", "card-a"));
  REQUIRE(runUntil(io, [&] { return !end.all(v1::Envelope::kCardCaptured).empty(); }));
  const auto captured = end.all(v1::Envelope::kCardCaptured).front();
  const std::string id = captured.card_captured().deposit_id();
  CHECK(captured.card_captured().front_size() == 2);  // --frames defaults to 2
  CHECK(captured.card_captured().back_size() == 2);

  auto disposition = lostcard::wire::makeEnvelope(0);
  disposition.mutable_disposition()->set_deposit_id(id);
  disposition.mutable_disposition()->mutable_store()->set_last4("4242");
  end.send(disposition);
  REQUIRE(runUntil(io, [&] { return !end.all(v1::Envelope::kCardStored).empty(); }));
  const auto stored = end.all(v1::Envelope::kCardStored).front();
  CHECK(stored.card_stored().location().slot() == 0);
  CHECK(box.cardInSlot(0) == std::optional<std::string>("card-a"));
  end.send(lostcard::wire::makeAck(stored.message_id(), 0));

  // Heartbeats tell the cloud how full the box is.
  REQUIRE(runUntil(io, [&] {
    for (const auto& hb : end.all(v1::Envelope::kHeartbeat)) {
      if (hb.heartbeat().slots_used() == 1) {
        return true;
      }
    }
    return false;
  }));
  const auto hb = end.all(v1::Envelope::kHeartbeat).back().heartbeat();
  CHECK(hb.slots_total() == 3);
  CHECK(hb.bin_capacity() == 100);

  const int status = daemon.terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(box.shutterState() == "closed");

  const fs::path printed = dir / "print.log";
  ChildProcess print({lostcard::test::binDir() + "/lostcard-kiosk", "--journal", journal.string(),
                      "--print-journal"},
                     printed.string());
  const auto print_status = print.waitFor(std::chrono::seconds(30));
  REQUIRE(print_status);
  CHECK(WEXITSTATUS(*print_status) == 0);
  CHECK(readFile(printed) == id + "\tstored\tslot:0\t4242\t\n");

  const std::string log = readFile(dir / "kiosk.log");
  CHECK_THAT(log, Catch::Contains(id + " is in slot:0"));
}

TEST_CASE("lostcard-kiosk refuses incomplete options", "[daemon]") {
  const fs::path dir = lostcard::test::makeTestDir("kiosk_daemon_simtest/options");
  ChildProcess missing({lostcard::test::binDir() + "/lostcard-kiosk", "--journal",
                        (dir / "j.sqlite").string(), "--hw", "sim"},
                       (dir / "missing.log").string());
  auto status = missing.waitFor(std::chrono::seconds(30));
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 2);
  CHECK_THAT(readFile(dir / "missing.log"), Catch::Contains("--id is required"));
}
