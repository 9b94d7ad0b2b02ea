// lostcard-fault-proxy: a TCP proxy that injects network faults between kiosks and the cloud.
// It forwards bytes both ways (TLS passes through untouched) and obeys a control file that it
// re-reads every --poll-ms (see include/lostcard/fault_proxy/fault_control.hpp):
//
//   lostcard-fault-proxy --listen 127.0.0.1:0 --port-file proxy.port
//       --target 127.0.0.1:7443 --control faults.conf
//   echo "stall = 1" > faults.conf     # the network goes silent
//   echo "cut = 1" > faults.conf       # every open connection is cut, new ones are served
//
// SIGINT/SIGTERM end it with status 0.
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/program_options.hpp>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "lostcard/fault_proxy/fault_control.hpp"
#include "lostcard/wire/log.hpp"

namespace asio = boost::asio;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;
using lostcard::fault_proxy::FaultControl;

namespace {

constexpr std::size_t kChunkBytes = 16 * 1024;
constexpr auto kStallPoll = std::chrono::milliseconds(20);

tcp::endpoint parseEndpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument("want HOST:PORT, got '" + text + "'");
  }
  return {asio::ip::make_address(text.substr(0, colon)),
          static_cast<unsigned short>(std::stoi(text.substr(colon + 1)))};
}

// One proxied connection: the kiosk's socket and ours to the cloud. Closing it ends both pumps.
struct Session {
  Session(tcp::socket c, tcp::socket u) : client(std::move(c)), upstream(std::move(u)) {}
  void close() {
    if (closed) {
      return;
    }
    closed = true;
    boost::system::error_code ignored;
    client.shutdown(tcp::socket::shutdown_both, ignored);
    upstream.shutdown(tcp::socket::shutdown_both, ignored);
    client.close(ignored);
    upstream.close(ignored);
  }
  tcp::socket client;
  tcp::socket upstream;
  bool closed = false;
};

class Proxy {
 public:
  Proxy(asio::io_context& ioc, tcp::endpoint listen, tcp::endpoint target,
        std::filesystem::path control_file, std::chrono::milliseconds poll)
      : ioc_(ioc),
        acceptor_(ioc, listen),
        target_(target),
        control_file_(std::move(control_file)),
        poll_(poll),
        log_(lostcard::wire::componentLogger("tools.fault_proxy")) {
    readControl();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void start() {
    asio::co_spawn(ioc_, acceptLoop(), asio::detached);
    asio::co_spawn(ioc_, controlLoop(), asio::detached);
  }

 private:
  void readControl() {
    if (control_file_.empty()) {
      return;
    }
    std::ifstream in(control_file_);
    std::stringstream text;
    if (in) {
      text << in.rdbuf();
    }
    auto parsed = lostcard::fault_proxy::parseFaultControl(text.str());
    for (const auto& problem : parsed.problems) {
      log_->warn("{}: {}", control_file_.string(), problem);
    }
    const FaultControl before = control_;
    control_ = parsed.control;
    if (control_ == before) {
      return;
    }
    log_->info("faults now: delay_ms={} stall={} refuse={} cut={}", control_.delay_ms,
               control_.stall, control_.refuse, control_.cut_generation);
    if (control_.cut_generation != before.cut_generation) {
      log_->info("cutting {} connection(s)", sessions_.size());
      for (const auto& session : sessions_) {
        session->close();
      }
      sessions_.clear();
    }
  }

  asio::awaitable<void> controlLoop() {
    asio::steady_timer timer(ioc_);
    while (true) {
      timer.expires_after(poll_);
      co_await timer.async_wait(asio::use_awaitable);
      readControl();
    }
  }

  asio::awaitable<void> acceptLoop() {
    while (true) {
      auto client = co_await acceptor_.async_accept(asio::use_awaitable);
      if (control_.refuse) {
        boost::system::error_code ignored;
        client.close(ignored);
        log_->info("refused a connection");
        continue;
      }
      asio::co_spawn(ioc_, serve(std::move(client)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket client) {
    tcp::socket upstream(ioc_);
    boost::system::error_code ec;
    co_await upstream.async_connect(target_, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      log_->info("cannot reach {}:{}: {}", target_.address().to_string(), target_.port(),
                 ec.message());
      client.close(ec);
      co_return;
    }
    auto session = std::make_shared<Session>(std::move(client), std::move(upstream));
    sessions_.insert(session);
    asio::co_spawn(ioc_, pump(session, true), asio::detached);
    co_await pump(session, false);
  }

  // Copies one direction until either side closes or the session is cut.
  asio::awaitable<void> pump(std::shared_ptr<Session> session, bool to_cloud) {
    std::array<char, kChunkBytes> buffer;
    asio::steady_timer timer(ioc_);
    boost::system::error_code ec;
    while (!session->closed) {
      auto& from = to_cloud ? session->client : session->upstream;
      auto& to = to_cloud ? session->upstream : session->client;
      const auto n = co_await from.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || session->closed) {
        break;
      }
      if (control_.delay_ms > 0) {
        timer.expires_after(std::chrono::milliseconds(control_.delay_ms));
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      while (control_.stall && !session->closed) {
        timer.expires_after(kStallPoll);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (session->closed) {
        break;
      }
      co_await asio::async_write(to, asio::buffer(buffer.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        break;
      }
    }
    session->close();
    sessions_.erase(session);
  }

  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  tcp::endpoint target_;
  std::filesystem::path control_file_;
  std::chrono::milliseconds poll_;
  std::shared_ptr<spdlog::logger> log_;
  FaultControl control_;
  std::set<std::shared_ptr<Session>> sessions_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  std::string target;
  std::string control_file;
  std::string port_file;
  int poll_ms = 50;
  po::options_description options("lostcard-fault-proxy options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("listen", po::value(&listen)->default_value("127.0.0.1:0"), "HOST:PORT to listen on (PORT 0: any free)")
      ("port-file", po::value(&port_file), "write the bound port to this file once listening")
      ("target", po::value(&target)->required(), "HOST:PORT to forward to (an IP address)")
      ("control", po::value(&control_file), "control file (delay_ms, stall, refuse, cut); none: no faults")
      ("poll-ms", po::value(&poll_ms)->default_value(50), "how often the control file is re-read");
  // clang-format on
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    if (vm.count("help") != 0) {
      std::cout << options;
      return 0;
    }
    po::notify(vm);
    if (poll_ms <= 0) {
      throw po::error("--poll-ms must be positive");
    }
  } catch (const std::exception& e) {
    std::cerr << "lostcard-fault-proxy: " << e.what() << "\n" << options;
    return 2;
  }

  auto log = lostcard::wire::componentLogger("tools.fault_proxy");
  try {
    asio::io_context ioc;
    Proxy proxy(ioc, parseEndpoint(listen), parseEndpoint(target), control_file,
                std::chrono::milliseconds(poll_ms));
    proxy.start();
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
    if (!port_file.empty()) {
      const auto tmp = port_file + ".tmp";
      std::ofstream(tmp) << proxy.port() << "\n";
      std::filesystem::rename(tmp, port_file);
    }
    log->info("listening on port {}, forwarding to {}", proxy.port(), target);
    ioc.run();
    return 0;
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return 1;
  }
}
