// lostcard-fault-proxy as a real process between a client and an echo server: it forwards,
// keeps forwarding under delay, holds bytes while stalled without losing them, cuts open
// connections and refuses new ones when its control file says so.
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "lostcard/test/child_process.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeControl(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);
}

// A bound on blocking reads, so a broken proxy fails the test instead of hanging it.
void boundReads(tcp::socket& socket) {
  timeval limit{10, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}

// Echoes every connection until the test ends.
class EchoServer {
 public:
  EchoServer() : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      while (true) {
        tcp::socket socket(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec) {
          return;
        }
        auto shared = std::make_shared<tcp::socket>(std::move(socket));
        std::lock_guard lock(mutex_);
        sockets_.push_back(shared);
        echoes_.emplace_back([shared] {
          std::array<char, 1024> buffer;
          boost::system::error_code ec;
          while (true) {
            const auto n = shared->read_some(asio::buffer(buffer), ec);
            if (ec || asio::write(*shared, asio::buffer(buffer.data(), n), ec) != n) {
              return;
            }
          }
        });
      }
    });
  }
  ~EchoServer() {
    boost::system::error_code ec;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptor_.close(ec);
    thread_.join();
    std::lock_guard lock(mutex_);
    for (auto& socket : sockets_) {
      ::shutdown(socket->native_handle(), SHUT_RDWR);
    }
    for (auto& echo : echoes_) {
      echo.join();
    }
  }
  unsigned short port() { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> echoes_;
};

std::string echo(tcp::socket& socket, const std::string& text) {
  asio::write(socket, asio::buffer(text));
  std::string back(text.size(), '\0');
  asio::read(socket, asio::buffer(back));
  return back;
}

// Whether the peer closed the connection (reads end-of-file or a reset).
bool closedByPeer(tcp::socket& socket) {
  std::array<char, 16> buffer;
  boost::system::error_code ec;
  socket.read_some(asio::buffer(buffer), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

}  // namespace

TEST_CASE("the fault proxy forwards, delays, stalls, cuts and refuses as told") {
  const std::filesystem::path dir = lostcard::test::makeTestDir("fault_proxy_e2etest");
  const auto control = dir / "faults.conf";
  const auto port_file = dir / "proxy.port";
  const auto log_file = dir / "proxy.log";
  writeControl(control, "");
  EchoServer server;
  lostcard::test::ChildProcess proxy(
      {lostcard::test::binDir() + "/lostcard-fault-proxy", "--listen", "127.0.0.1:0",
       "--port-file", port_file.string(), "--target",
       "127.0.0.1:" + std::to_string(server.port()), "--control", control.string(),
       "--poll-ms", "10"},
      log_file.string());
  REQUIRE(lostcard::test::eventually([&] { return std::filesystem::exists(port_file); }, 30s));
  const tcp::endpoint proxy_at(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(std::stoi(readFile(port_file))));
  asio::io_context ioc;
  auto connect = [&] {
    tcp::socket socket(ioc);
    socket.connect(proxy_at);
    boundReads(socket);
    return socket;
  };
  // The proxy logs each control change it applied; waiting for that line orders the test.
  auto applied = [&](const std::string& line) {
    return lostcard::test::eventually(
        [&] { return readFile(log_file).find(line) != std::string::npos; }, 30s);
  };

  auto first = connect();
  CHECK(echo(first, "hello") == "hello");

  writeControl(control, "delay_ms = 30\n");
  REQUIRE(applied("delay_ms=30 stall=false refuse=false cut=0"));
  CHECK(echo(first, "slowly") == "slowly");

  writeControl(control, "stall = 1\n");
  REQUIRE(applied("delay_ms=0 stall=true refuse=false cut=0"));
  asio::write(first, asio::buffer(std::string("held")));
  writeControl(control, "stall = 0\n");
  REQUIRE(applied("delay_ms=0 stall=false refuse=false cut=0"));
  std::string held(4, '\0');
  asio::read(first, asio::buffer(held));
  CHECK(held == "held");

  writeControl(control, "cut = 1\n");
  REQUIRE(applied("cut=1"));
  CHECK(closedByPeer(first));
  auto second = connect();
  CHECK(echo(second, "again") == "again");

  writeControl(control, "cut = 1\nrefuse = 1\n");
  REQUIRE(applied("refuse=true cut=1"));
  CHECK(echo(second, "open ones stay") == "open ones stay");
  auto refused = connect();
  CHECK(closedByPeer(refused));

  CHECK(proxy.terminate() == 0);
}
