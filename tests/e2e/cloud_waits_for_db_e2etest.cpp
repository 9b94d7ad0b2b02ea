// lostcard-cloud started while PostgreSQL is unreachable (restarting after a crash, say) waits for
// it and then serves, instead of exiting. tools/chaos found this: a kill -9 of the cloud followed
// by a PostgreSQL restart left no cloud running. The database is put out of reach by a
// lostcard-fault-proxy in front of it that refuses connections until told otherwise.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "lostcard/test/box_system.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using lostcard::test::readFile;

void writeControl(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

}  // namespace

TEST_CASE("the cloud waits for an unreachable database, then serves", "[e2e]") {
  const fs::path dir = test::makeTestDir("cloud_waits_for_db_e2etest");
  const std::string bin = test::binDir();
  const std::string tools = test::sourceDir() + "/tools";
  test::PgTestDb db;

  std::smatch port_match;
  const std::string conninfo = db.conninfo();
  REQUIRE(std::regex_search(conninfo, port_match, std::regex("port=([0-9]+)")));
  const std::string pg_port = port_match[1];

  test::runProgram({tools + "/pki", "init", (dir / "pki").string()});
  test::runProgram({tools + "/pki", "server", (dir / "pki").string(), "localhost", "127.0.0.1"});
  std::ofstream(dir / "card.key") << "e2e-1 " << std::string(64, 'b') << "\n";

  // The database, behind a proxy that refuses every connection for now.
  writeControl(dir / "faults.conf", "refuse = 1\n");
  test::ChildProcess proxy({bin + "/lostcard-fault-proxy", "--listen", "127.0.0.1:0", "--port-file",
                            (dir / "proxy.port").string(), "--target", "127.0.0.1:" + pg_port,
                            "--control", (dir / "faults.conf").string(), "--poll-ms", "20"},
                           (dir / "proxy.log").string());
  REQUIRE(test::eventually([&] { return fs::exists(dir / "proxy.port"); }, 30s));
  const std::string proxy_port = std::to_string(std::stoi(readFile(dir / "proxy.port")));
  // libpq takes the last value of a repeated keyword: the same database, through the proxy.
  const std::string gated = conninfo + " port=" + proxy_port;

  test::ChildProcess cloud(
      test::cloudArgv(dir, gated,
                      {"--listen", "127.0.0.1:0", "--port-file", (dir / "cloud.port").string(),
                       "--db-wait-ms", "600000"}),
      (dir / "cloud.log").string());

  // It says it is waiting, and is still there.
  REQUIRE(test::eventually(
      [&] {
        return readFile(dir / "cloud.log").find("database not reachable") != std::string::npos;
      },
      60s));
  CHECK(cloud.running());
  CHECK_FALSE(fs::exists(dir / "cloud.port"));

  // The database comes back: the cloud migrates it and starts serving.
  writeControl(dir / "faults.conf", "refuse = 0\n");
  REQUIRE(test::eventually([&] { return !readFile(dir / "cloud.port").empty(); }, 60s));
  CHECK(cloud.running());
  CHECK(cloud.terminate() == 0);
}
