// lostcard-webhook-sink: the holders' phones of the demo. An HTTP server (Boost.Beast) that
// receives signed retrieval notices, shows each on stdout as the holder would read it and
// appends it to a JSON-lines file. See webhook_sink.hpp for what it accepts.
//
//   lostcard-webhook-sink --listen 127.0.0.1:PORT --secrets FILE --out FILE.jsonl
//       [--raw-log FILE.tsv]
//
// --raw-log records every request as received, before any deduplication, one
// "<Idempotency-Key>\t<status>" line each, so a fault-injection run (tools/chaos) can count how
// often the same notice was sent.
// The secrets file is read again whenever it changes (its size or modification time), so a holder
// who signs up while the sink runs is known once their secret is appended to it.
// PORT 0 picks a free port; the address it listens on is printed as "listening on HOST:PORT".
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
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "lostcard/cloud/webhook_signature.hpp"
#include "webhook_sink.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(30);

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The secrets file as last read: read again when it has changed since.
class SecretsFile {
 public:
  explicit SecretsFile(std::string path) : path_(std::move(path)) {}

  // Gives `sink` the file's secrets when the file changed; a file that does not parse now keeps
  // the old list (and says why on stderr).
  void refresh(lostcard::tools::WebhookSink& sink) {
    std::error_code ec;
    const auto stamp = std::filesystem::last_write_time(path_, ec);
    const auto size = std::filesystem::file_size(path_, ec);
    if (ec || (stamp == stamp_ && size == size_)) {
      return;
    }
    try {
      sink.setSecrets(lostcard::tools::loadSecrets(path_));
      stamp_ = stamp;
      size_ = size;
    } catch (const std::exception& e) {
      std::cerr << "lostcard-webhook-sink: keeping the secrets read before: " << e.what() << "\n";
    }
  }

 private:
  std::string path_;
  std::filesystem::file_time_type stamp_{};
  std::uintmax_t size_ = 0;
};

asio::awaitable<void> serve(tcp::socket socket, lostcard::tools::WebhookSink& sink,
                            SecretsFile& secrets, std::ofstream* raw_log) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  while (true) {
    stream.expires_after(kIdleTimeout);
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    beast::error_code ec;
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      break;  // closed, timed out or not HTTP
    }
    const auto& request = parser.get();
    lostcard::tools::SinkRequest in;
    in.method = std::string(request.method_string());
    in.target = std::string(request.target());
    in.signature = std::string(request[lostcard::cloud::kSignatureHeader]);
    in.idempotency_key = std::string(request["Idempotency-Key"]);
    in.body = request.body();
    secrets.refresh(sink);
    const auto reply = sink.handle(in, unixNow());
    if (raw_log != nullptr) {
      *raw_log << in.idempotency_key << '\t' << reply.status << std::endl;
    }

    http::response<http::string_body> response{static_cast<http::status>(reply.status),
                                               request.version()};
    response.set(http::field::content_type, "text/plain");
    response.body() = reply.body + "\n";
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response.keep_alive()) {
      break;
    }
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor, lostcard::tools::WebhookSink& sink,
                                 SecretsFile& secrets, std::ofstream* raw_log) {
  while (true) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), sink, secrets, raw_log),
                   asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  std::string secrets_file;
  std::string out_file;
  std::string raw_log_file;
  po::options_description options("lostcard-webhook-sink options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("listen", po::value(&listen)->required(), "HOST:PORT to listen on (PORT 0: any free)")
      ("secrets", po::value(&secrets_file)->required(), "holder_id<TAB>secret lines")
      ("out", po::value(&out_file)->required(), "JSON-lines file the notices are appended to")
      ("raw-log", po::value(&raw_log_file), "append '<Idempotency-Key>\\t<status>' per request");
  // clang-format on
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    if (vm.count("help")) {
      std::cout << options;
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "lostcard-webhook-sink: " << e.what() << "\n" << options;
    return 2;
  }

  try {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      throw std::runtime_error("--listen wants HOST:PORT");
    }
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    const auto port = static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)));

    // Notices written before a restart are not shown or written again.
    const auto already_written = lostcard::tools::noticeIdsIn(out_file);
    std::ofstream out(out_file, std::ios::app);
    if (!out) {
      throw std::runtime_error("cannot open " + out_file);
    }
    lostcard::tools::WebhookSink sink(lostcard::tools::loadSecrets(secrets_file), out, std::cout);
    sink.remember(already_written);
    SecretsFile secrets(secrets_file);
    secrets.refresh(sink);

    std::ofstream raw_log;
    if (!raw_log_file.empty()) {
      raw_log.open(raw_log_file, std::ios::app);
      if (!raw_log) {
        throw std::runtime_error("cannot open " + raw_log_file);
      }
    }

    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, {asio::ip::make_address(host), port});
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
    asio::co_spawn(ioc,
                   acceptLoop(acceptor, sink, secrets, raw_log_file.empty() ? nullptr : &raw_log),
                   asio::detached);
    const auto endpoint = acceptor.local_endpoint();
    std::cout << "listening on " << endpoint.address().to_string() << ":" << endpoint.port()
              << std::endl;
    ioc.run();
    std::cout << "received " << sink.accepted() << " notice(s)" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lostcard-webhook-sink: " << e.what() << "\n";
    return 1;
  }
}
