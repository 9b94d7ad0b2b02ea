// libFuzzer target: HTTP request handling of the webhook receiver (tools/webhook_sink): the
// bytes a client sends on one connection, parsed by Boost.Beast's request parser with the
// receiver's body limit, each request mapped to a SinkRequest as lostcard-webhook-sink's serve()
// does and handed to WebhookSink::handle().
//
//   byte 0    flags: bit 0: the harness signs each request's body with the holder's secret at
//                           the current time (replacing the signature header), so requests get
//                           past the signature check to the notice parsing and the
//                           Idempotency-Key handling (the fuzzer cannot forge an HMAC);
//   the rest  the raw bytes of the connection (requests one after another, keep-alive)
//
// Checked: every request gets a status the receiver documents and a reason; a notice is written
// only with status 200 "received", as one JSON line that parses, once per Idempotency-Key; a
// request the parser refuses ends the connection, nothing else.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <set>
#include <sstream>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/cloud/webhook_signature.hpp"
#include "webhook_sink.hpp"

namespace {

namespace http = boost::beast::http;

// As lostcard-webhook-sink (tools/webhook_sink/main.cpp).
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
constexpr std::int64_t kNowUnixS = 1'700'000'000;
constexpr const char* kSecret = "fuzz-secret";

std::size_t countLines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lostcard::fuzz::quietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = lostcard::fuzz::asView(data, size);
  const bool sign = !input.empty() && (static_cast<std::uint8_t>(input[0]) & 1) != 0;
  input.remove_prefix(input.empty() ? 0 : 1);

  std::ostringstream jsonl;
  std::ostringstream screen;
  lostcard::tools::WebhookSink sink({{"ada", kSecret}, {"bob", "other-secret"}}, jsonl, screen);
  std::set<std::string> accepted_keys;

  boost::asio::io_context io;
  boost::beast::test::stream stream(io);
  stream.append({input.data(), input.size()});
  stream.close_remote();
  boost::beast::flat_buffer buffer;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    boost::beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) {
      break;  // closed, or not HTTP: the connection ends
    }
    const auto& request = parser.get();
    lostcard::tools::SinkRequest in;
    in.method = std::string(request.method_string());
    in.target = std::string(request.target());
    in.signature = std::string(request[lostcard::cloud::kSignatureHeader]);
    in.idempotency_key = std::string(request["Idempotency-Key"]);
    in.body = request.body();
    if (sign) {
      in.signature = lostcard::cloud::signWebhook(kSecret, in.body, kNowUnixS);
    }

    const std::size_t lines_before = countLines(jsonl.str());
    const auto reply = sink.handle(in, kNowUnixS);
    const std::size_t written = countLines(jsonl.str()) - lines_before;

    FUZZ_CHECK(reply.status == 200 || reply.status == 400 || reply.status == 401 ||
               reply.status == 404 || reply.status == 405 || reply.status == 500);
    FUZZ_CHECK(!reply.body.empty());
    if (reply.status == 200 && reply.body == "received") {
      FUZZ_CHECK(written == 1);
      FUZZ_CHECK(accepted_keys.insert(in.idempotency_key).second);  // once per key
      const std::string text = jsonl.str();
      const auto start = text.rfind('\n', text.size() - 2);
      google::protobuf::Struct line;
      FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(
                     text.substr(start == std::string::npos ? 0 : start + 1), &line)
                     .ok());
    } else {
      FUZZ_CHECK(written == 0);
    }
    if (!request.keep_alive()) {
      break;
    }
  }
  return 0;
}
