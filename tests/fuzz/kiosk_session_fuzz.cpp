// libFuzzer target: the cloud's handling of what a kiosk sends, through the real KioskSession,
// DepositService and Store on a real PostgreSQL (a fresh database in the cluster of
// $LOSTCARD_TEST_PG_DIR, as the pg tests use), over an in-memory stream.
//
// A kiosk with a valid certificate can still be stolen or reprogrammed, so everything after the
// TLS handshake is untrusted input: frames, envelopes, ids, locations, inventories, images.
// Each input is one connection from "kiosk-a" (enrolled, 4 slots):
//
//   byte 0    flags: bit 0: the harness sends a valid Hello first;
//                    bit 1: the rest is the raw byte stream (framing errors included);
//                           otherwise it is records [2-byte little-endian length][bytes], each
//                           sent as one well-framed message (so the fuzzer spends its time on
//                           the messages, not on length prefixes)
//
// The stream then ends. Checked: the session ends by itself, with a reason, without an
// exception escaping; everything it wrote decodes as whole frames of envelopes a cloud may send,
// with version 1 and a UUID message id; Dispositions name a UUID deposit, carry at most four
// digits of a number and no long digit run in their detail.
// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cctype>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/cloud/kiosk_session.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/framing.hpp"

namespace {

namespace asio = boost::asio;
using Stream = boost::beast::test::stream;
using namespace lostcard;

constexpr const char* kKioskId = "kiosk-a";

// The cloud side, made once: a database with two enrolled kiosks, the store and the service.
struct World {
  test::PgTestDb db;
  cloud::Store store;
  cloud::CardHasher hasher{"fuzz-key", std::string(32, 'k')};
  cloud::DepositService service;

  World() : store(storeOptions(db.conninfo())), service(store, hasher, recognizer(), {}) {
    store.migrate();
    for (const char* id : {"kiosk-a", "kiosk-b"}) {
      cloud::KioskRecord k;
      k.id = id;
      k.name = std::string("Box ") + id;
      k.address = "Fuzz street 1";
      k.slot_count = 4;
      store.upsertKiosk(k);
    }
  }

  static cloud::StoreOptions storeOptions(const std::string& conninfo) {
    cloud::StoreOptions o;
    o.conninfo = conninfo;
    o.pool_size = 1;
    return o;
  }
  // Small images only: an image the limits let through is recognized (Tesseract), which is
  // slow; the image intake itself is fuzzed by jpeg_intake_fuzz.
  static cloud::RecognizerOptions recognizer() {
    cloud::RecognizerOptions o;
    o.limits.max_jpeg_bytes = 64 * 1024;
    o.limits.max_width_px = 160;
    o.limits.max_height_px = 160;
    return o;
  }
};

// Made by LLVMFuzzerInitialize, deleted by an atexit handler registered after it: that runs
// before the destructors of libpqxx's own statics, which dropping the database still needs.
World* world = nullptr;

std::string frameOf(std::string_view message_bytes) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream s(&out);
    google::protobuf::io::CodedOutputStream coded(&s);
    coded.WriteVarint32(static_cast<std::uint32_t>(message_bytes.size()));
    coded.WriteRaw(message_bytes.data(), static_cast<int>(message_bytes.size()));
  }
  return out;
}

// The kiosk's byte stream for one input (see the layout above).
std::string kioskBytes(std::string_view input) {
  const std::uint8_t flags = input.empty() ? 0 : static_cast<std::uint8_t>(input[0]);
  input.remove_prefix(input.empty() ? 0 : 1);
  std::string out;
  if ((flags & 1) != 0) {
    auto hello = wire::makeEnvelope(1'700'000'000'000);
    hello.mutable_hello()->set_kiosk_id(kKioskId);
    hello.mutable_hello()->set_firmware_version("fuzz");
    out += wire::encodeFrame(hello);
  }
  if ((flags & 2) != 0) {
    out += input;
    return out;
  }
  while (input.size() >= 2) {
    const std::size_t n = static_cast<std::uint8_t>(input[0]) |
                          (static_cast<std::size_t>(static_cast<std::uint8_t>(input[1])) << 8);
    input.remove_prefix(2);
    const std::size_t take = std::min(n, input.size());
    out += frameOf(input.substr(0, take));
    input.remove_prefix(take);
  }
  return out;
}

bool hasLongDigitRun(const std::string& text, std::size_t run) {
  std::size_t digits = 0;
  for (const char c : text) {
    digits = std::isdigit(static_cast<unsigned char>(c)) != 0 ? digits + 1 : 0;
    if (digits >= run) {
      return true;
    }
  }
  return false;
}

// What the cloud wrote to the kiosk must be what a cloud may send, well formed.
void checkAnswers(const std::string& written) {
  wire::FrameReader reader(wire::kDefaultMaxFrameBytes);
  reader.append(written);
  while (true) {
    v1::Envelope env;
    const auto r = reader.next(env);
    FUZZ_CHECK(r.status != wire::FrameStatus::kError);
    if (r.status == wire::FrameStatus::kNeedMore) {
      break;
    }
    FUZZ_CHECK(env.version() == v1::PROTOCOL_VERSION_1);
    FUZZ_CHECK(wire::isUuid(env.message_id()));
    FUZZ_CHECK(!env.has_hello() && !env.has_card_captured() && !env.has_card_stored() &&
               !env.has_inventory());
    FUZZ_CHECK(env.body_case() != v1::Envelope::BODY_NOT_SET);
    if (env.has_disposition()) {
      const auto& d = env.disposition();
      FUZZ_CHECK(wire::isUuid(d.deposit_id()));
      FUZZ_CHECK(d.has_store() || d.has_difficult());
      if (d.has_store()) {
        FUZZ_CHECK(d.store().last4().size() <= 4);
      } else {
        FUZZ_CHECK(!hasLongDigitRun(d.difficult().detail(), 8));
      }
    }
  }
  FUZZ_CHECK(reader.buffered() == 0);  // no frame left half-written
}

}  // namespace

// LeakSanitizer (clang builds): Tesseract keeps the dictionaries it loads in a process-wide
// cache that it never frees; not a leak of ours, nor one that grows.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:tesseract::DawgLoader::Load\nleak:tesseract::SquishedDawg::read_squished_dawg\n";
}

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lostcard::fuzz::quietLogs();
  world = new World();
  std::atexit([] {
    delete world;
    world = nullptr;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  asio::io_context io;
  Stream kiosk(io);
  Stream cloud_end(io);
  kiosk.connect(cloud_end);
  cloud_end.append(kioskBytes(fuzz::asView(data, size)));
  cloud_end.close_remote();  // the kiosk has said everything: EOF after it

  cloud::SessionOptions options;
  options.max_frame_bytes = 256 * 1024;
  options.hello_timeout = std::chrono::hours(1);  // nothing waits: the stream ends by itself
  options.idle_timeout = std::chrono::hours(1);
  options.busy_keepalive = std::chrono::milliseconds(0);
  cloud::SessionHooks hooks;
  hooks.clock = [] { return std::chrono::system_clock::time_point(std::chrono::hours(475'000)); };

  auto session = std::make_shared<cloud::KioskSession<Stream>>(
      std::move(cloud_end), kKioskId, "fuzz", world->service, io.get_executor(), options, hooks);
  bool ended = false;
  std::string reason;
  asio::co_spawn(io, session->run(), [&](std::exception_ptr e, std::string why) {
    FUZZ_CHECK(!e);
    ended = true;
    reason = std::move(why);
  });
  io.run();
  FUZZ_CHECK(ended);
  FUZZ_CHECK(!reason.empty());
  const auto written = kiosk.str();
  checkAnswers(std::string(written.data(), written.size()));
  return 0;
}
