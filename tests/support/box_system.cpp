#include "lostcard/test/box_system.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fstream>
#include <stdexcept>

#include "lostcard/test/files.hpp"

namespace lostcard::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

HttpsReply httpsRequest(unsigned short port, const std::string& ca_file, const std::string& method,
                        const std::string& target, const std::string& token,
                        const std::string& body) {
  asio::io_context io;
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.load_verify_file(ca_file);
  tls.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, tls);
  beast::get_lowest_layer(stream).expires_after(30s);
  beast::get_lowest_layer(stream).connect({asio::ip::make_address("127.0.0.1"), port});
  stream.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  stream.handshake(asio::ssl::stream_base::client);
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) {
    req.set(http::field::authorization, "Bearer " + token);
  }
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return {res.result_int(), res.body()};
}

BoxSystem::BoxSystem(fs::path dir_in, std::string conninfo)
    : dir(std::move(dir_in)),
      bin(binDir()),
      tools(sourceDir() + "/tools"),
      conninfo_(std::move(conninfo)) {}

void BoxSystem::makePki(const std::vector<std::string>& kiosk_ids) {
  runProgram({tools + "/pki", "init", (dir / "pki").string()});
  runProgram({tools + "/pki", "server", (dir / "pki").string(), "localhost", "127.0.0.1"});
  for (const auto& id : kiosk_ids) {
    runProgram({tools + "/pki", "kiosk", (dir / "pki").string(), id});
  }
}

void BoxSystem::makeCards(const std::vector<std::pair<std::string, std::string>>& cards) {
  std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'c') << "\n";
  {
    std::ofstream tsv(dir / "cards.tsv");
    for (const auto& [name, number] : cards) {
      tsv << name << "\t" << number << "\n";
    }
  }
  runProgram({bin + "/lostcard-cardgen", "--seed", "11", "--numbers", (dir / "cards.tsv").string(),
              "--out", (dir / "cards").string()});
}

std::vector<std::string> BoxSystem::adminArgv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {bin + "/lostcard-admin", "--db", conninfo_, "--card-key-file",
                                   (dir / "card.key").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string BoxSystem::admin(const std::vector<std::string>& args, const std::string& input) const {
  return runProgram(adminArgv(args), input);
}

void BoxSystem::addPeople(int slots) const {
  admin({"migrate"});
  admin({"add-issuer", "bank", "Example Bank"});
  admin({"add-holder", "holder-marie", "Marie Curie",
         "http://127.0.0.1:" + std::to_string(freeLocalPort()) + "/holders/marie", "marie-secret"});
  admin({"add-cards"}, "bank\tholder-marie\t4556737586899855\n");
  for (const std::string kiosk : {"kiosk-1", "kiosk-2"}) {
    admin({"add-kiosk", kiosk, "--name", "Box " + kiosk, "--address", "1 Road", "--lat", "48.85",
           "--lon", "2.29", "--slots", std::to_string(slots)});
  }
  admin({"add-account", "op-east", "--role", "operator", "--kiosk", "kiosk-1"}, "east-password\n");
  admin({"add-account", "op-west", "--role", "operator", "--kiosk", "kiosk-2"}, "west-password\n");
  admin({"set-operator-code", "op-east"}, "1357924680\n");
  admin({"set-operator-code", "op-west"}, "2468013579\n");
}

std::vector<std::string> cloudArgv(const fs::path& dir, const std::string& conninfo,
                                   const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {binDir() + "/lostcard-cloud",
                                   "--db",
                                   conninfo,
                                   "--ca",
                                   (dir / "pki/ca.crt").string(),
                                   "--cert",
                                   (dir / "pki/server/localhost.crt").string(),
                                   "--key",
                                   (dir / "pki/server/localhost.key").string(),
                                   "--card-key-file",
                                   (dir / "card.key").string(),
                                   "--models-dir",
                                   sourceDir() + "/models",
                                   "--allow-internal-webhooks"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::unique_ptr<ChildProcess> BoxSystem::startCloud(bool http,
                                                    const std::vector<std::string>& extra) {
  std::vector<std::string> argv = cloudArgv(
      dir, conninfo_, {"--listen", "127.0.0.1:0", "--port-file", (dir / "cloud.port").string()});
  if (http) {
    argv.insert(argv.end(),
                {"--http-listen", "127.0.0.1:0", "--http-port-file", (dir / "http.port").string()});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto cloud = std::make_unique<ChildProcess>(argv, (dir / "cloud.log").string());
  const auto listening = [&](const fs::path& file) {
    return eventually([&] { return !nonEmptyLines(readFile(file)).empty(); }, 60s);
  };
  if (!listening(dir / "cloud.port") || (http && !listening(dir / "http.port"))) {
    throw std::runtime_error("lostcard-cloud did not start; see " + (dir / "cloud.log").string());
  }
  kiosk_port_ = nonEmptyLines(readFile(dir / "cloud.port")).front();
  if (http) {
    http_port_ =
        static_cast<unsigned short>(std::stoi(nonEmptyLines(readFile(dir / "http.port")).front()));
  }
  return cloud;
}

std::vector<std::string> kioskArgv(const fs::path& dir, const std::string& kiosk_id,
                                   const std::string& cloud, int slots,
                                   const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {binDir() + "/lostcard-kiosk",
                                   "--id",
                                   kiosk_id,
                                   "--cloud",
                                   cloud,
                                   "--server-name",
                                   "localhost",
                                   "--ca",
                                   (dir / "pki/ca.crt").string(),
                                   "--cert",
                                   (dir / "pki/kiosks" / (kiosk_id + ".crt")).string(),
                                   "--key",
                                   (dir / "pki/kiosks" / (kiosk_id + ".key")).string(),
                                   "--journal",
                                   (dir / (kiosk_id + ".journal")).string(),
                                   "--hw",
                                   "sim",
                                   "--sim-root",
                                   (dir / kiosk_id).string(),
                                   "--slots",
                                   std::to_string(slots),
                                   "--heartbeat-ms",
                                   "500"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::vector<std::string> BoxSystem::kioskArgv(const std::string& kiosk_id, int slots,
                                              const std::vector<std::string>& extra) const {
  return test::kioskArgv(dir, kiosk_id, "127.0.0.1:" + kiosk_port_, slots, extra);
}

}  // namespace lostcard::test
