// lostcard-enroll-bench: bulk enrollment through the real HTTPS API, for figures (not a test).
// Streams N generated CSV rows (valid Luhn numbers, holders taken in turn) to
// POST /v1/issuer/enrollments as one chunked body, in 64 KiB chunks generated as they are sent,
// and prints the report's counts, rows per second, and the cloud process's resident memory
// (VmRSS and peak VmHWM from /proc/PID/status) before and after.
//
//   lostcard-enroll-bench --port 8443 --ca ca.crt --api-key-file key --rows 1000000
//                         --holders ada,bob --cloud-pid 1234 [--first 0]
//
// tools/enroll_bench/run sets up a throwaway database and cloud and runs this against it.
#include <google/protobuf/util/json_util.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "lostcard/cloud/luhn.hpp"
#include "lostcard/v1/api.pb.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;

namespace {

// kB of a "VmRSS:" / "VmHWM:" line of /proc/PID/status; -1 when unreadable.
long statusKib(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stol(line.substr(field.size() + 1));
    }
  }
  return -1;
}

std::string number(std::uint64_t n) {
  std::string payload = std::to_string(n);
  payload = "4" + std::string(14 - std::min<std::size_t>(14, payload.size()), '0') + payload;
  return payload + *lostcard::cloud::luhnCheckDigit(payload);
}

std::string mib(long kib) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.1f MiB", kib / 1024.0);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host, ca, key_file, holders_text;
  unsigned short port = 0;
  std::uint64_t rows = 0, first = 0;
  int cloud_pid = 0;
  po::options_description options("lostcard-enroll-bench options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("host", po::value(&host)->default_value("127.0.0.1"), "the API's address")
      ("port", po::value(&port)->required(), "the API's port")
      ("ca", po::value(&ca)->required(), "CA certificate that signed the API's certificate")
      ("api-key-file", po::value(&key_file)->required(), "file holding the issuer's API key")
      ("rows", po::value(&rows)->default_value(100000), "rows to import")
      ("first", po::value(&first)->default_value(0), "number of the first generated card")
      ("holders", po::value(&holders_text)->default_value("ada"), "holder ids, comma-separated, taken in turn")
      ("cloud-pid", po::value(&cloud_pid)->default_value(0), "the cloud's process id, for its memory");
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
    std::cerr << "lostcard-enroll-bench: " << e.what() << "\n" << options;
    return 2;
  }
  std::vector<std::string> holders;
  std::stringstream split(holders_text);
  for (std::string h; std::getline(split, h, ',');) {
    holders.push_back(h);
  }
  std::string key;
  std::getline(std::ifstream(key_file), key);

  try {
    asio::io_context io;
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.load_verify_file(ca);
    tls.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, tls);
    beast::get_lowest_layer(stream).connect(tcp::endpoint(asio::ip::make_address(host), port));
    stream.handshake(asio::ssl::stream_base::client);

    const long rss_before = cloud_pid ? statusKib(cloud_pid, "VmRSS") : -1;
    const long hwm_before = cloud_pid ? statusKib(cloud_pid, "VmHWM") : -1;
    const auto start = std::chrono::steady_clock::now();
    const std::string head = "POST /v1/issuer/enrollments HTTP/1.1\r\nHost: " + host +
                             "\r\nAuthorization: Bearer " + key +
                             "\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n";
    asio::write(stream, asio::buffer(head));
    std::string chunk = "holder_id,number\n";
    std::uint64_t body_bytes = 0;
    const auto send = [&](bool last) {
      if (!chunk.empty()) {
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
        asio::write(stream, asio::buffer(size + chunk + "\r\n"));
        body_bytes += chunk.size();
        chunk.clear();
      }
      if (last) {
        asio::write(stream, asio::buffer(std::string("0\r\n\r\n")));
      }
    };
    for (std::uint64_t i = 0; i < rows; ++i) {
      chunk += holders[i % holders.size()] + "," + number(first + i) + "\n";
      if (chunk.size() >= 64 * 1024) {
        send(false);
      }
    }
    send(true);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::read(stream, buffer, parser);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto& response = parser.get();
    if (response.result_int() != 200) {
      std::cerr << "lostcard-enroll-bench: HTTP " << response.result_int() << ": "
                << response.body() << "\n";
      return 1;
    }
    lostcard::v1::EnrollmentReport report;
    google::protobuf::util::JsonStringToMessage(response.body(), &report);
    std::printf("rows=%u enrolled=%u unchanged=%u rejected=%u body=%.1f MiB\n", report.rows(),
                report.enrolled(), report.unchanged(), report.rejected(),
                body_bytes / (1024.0 * 1024.0));
    std::printf("time=%.2f s rate=%.0f rows/s\n", seconds, rows / seconds);
    if (cloud_pid) {
      const long rss_after = statusKib(cloud_pid, "VmRSS");
      const long hwm_after = statusKib(cloud_pid, "VmHWM");
      std::printf("cloud VmRSS before=%s after=%s; peak VmHWM before=%s after=%s (delta %s)\n",
                  mib(rss_before).c_str(), mib(rss_after).c_str(), mib(hwm_before).c_str(),
                  mib(hwm_after).c_str(), mib(hwm_after - hwm_before).c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lostcard-enroll-bench: " << e.what() << "\n";
    return 1;
  }
}
