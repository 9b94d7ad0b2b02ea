// libFuzzer target: the kiosk's handling of what the cloud sends, through the real Uplink (over
// an in-memory stream) and the real Controller with its SQLite journal and a simulated box
// (hw::SimBox, folders in a scratch directory made afresh for every input).
//
// A network attacker cannot get past mutual TLS, but a box must not trust its cloud blindly
// either: a bug or a compromised cloud node must not make it lose track of a card. Each input
// is one connection to the cloud:
//
//   byte 0    flags: bit 0: the harness sends a valid HelloAck first;
//                    bit 1: the rest is the raw byte stream (framing errors included);
//                           otherwise records [2-byte little-endian length][bytes], each sent
//                           as one well-framed message;
//                    bit 2: a card was dropped before the connection: its CardCaptured waits
//                           for an answer. In a record that parses as an Envelope, the
//                           deposit id "@deposit" and the message id "@captured" are replaced
//                           by that card's, so the fuzzer can answer it without guessing UUIDs.
//
// Checked: the uplink ends the session by itself and nothing escapes as an exception; what the
// kiosk wrote decodes as whole frames, Hello first; the dropped card is in exactly one physical
// place and the journal says the same place; the journal keeps at most four digits of a number.
// clang-format off
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cctype>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>

#include "fuzz_check.hpp"
#include "fuzz_logs.hpp"
#include "lostcard/hw/sim_box.hpp"
#include "lostcard/kiosk/controller.hpp"
#include "lostcard/kiosk/journal.hpp"
#include "lostcard/kiosk/uplink.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/framing.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Stream = boost::beast::test::stream;
using namespace lostcard;
using namespace lostcard::kiosk;

constexpr const char* kKioskId = "kiosk-a";

// A scratch folder (in /dev/shm when there is one: every input writes a journal) and a card.
struct Scratch {
  fs::path dir;
  fs::path card;
  Scratch() {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = base / ("lostcard-uplink-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    card = dir / "card";
    fs::create_directories(card);
    for (const char* face : {"front", "back"}) {
      cv::Mat image(40, 64, CV_8UC3, cv::Scalar(40, 90, 160));
      cv::putText(image, face, {4, 24}, cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(255, 255, 255));
      std::vector<uchar> jpeg;
      cv::imencode(".jpg", image, jpeg);
      std::ofstream(card / (std::string(face) + ".jpg"), std::ios::binary)
          .write(reinterpret_cast<const char*>(jpeg.data()), static_cast<std::streamsize>(jpeg.size()));
    }
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::unique_ptr<Scratch> scratch;

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

struct Waiting {
  std::string deposit_id;
  std::string message_id;
};

// One record as a frame; placeholders replaced when it parses as an Envelope.
std::string recordFrame(std::string_view bytes, const std::optional<Waiting>& waiting) {
  v1::Envelope env;
  if (!waiting || !env.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return frameOf(bytes);
  }
  bool changed = false;
  if (env.has_disposition() && env.disposition().deposit_id() == "@deposit") {
    env.mutable_disposition()->set_deposit_id(waiting->deposit_id);
    changed = true;
  }
  if (env.has_ack() && env.ack().message_id() == "@captured") {
    env.mutable_ack()->set_message_id(waiting->message_id);
    changed = true;
  }
  return changed ? wire::encodeFrame(env) : frameOf(bytes);
}

std::string cloudBytes(std::uint8_t flags, std::string_view input,
                       const std::optional<Waiting>& waiting) {
  std::string out;
  if ((flags & 1) != 0) {
    auto ack = wire::makeEnvelope(1'700'000'000'000);
    ack.mutable_hello_ack()->set_kiosk_id(kKioskId);
    ack.mutable_hello_ack()->set_max_frame_bytes(256 * 1024);
    out += wire::encodeFrame(ack);
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
    out += recordFrame(input.substr(0, take), waiting);
    input.remove_prefix(take);
  }
  return out;
}

// The connector: the first call gives the prepared stream, the next one stops the uplink (the
// session with the fuzzed cloud is over).
struct Link {
  std::optional<Stream> stream;
  Uplink<Stream>* uplink = nullptr;
};

asio::awaitable<Connected<Stream>> connectOnce(Link* link) {
  Connected<Stream> out;
  if (link->stream) {
    out.stream.emplace(std::move(*link->stream));
    link->stream.reset();
  } else {
    link->uplink->stop();
    out.error = "fuzz session over";
  }
  co_return out;
}

std::optional<Location> physicalPlace(const hw::SimBox& box, const std::string& card, int slots) {
  std::optional<Location> where;
  int places = 0;
  auto has = [&](const std::vector<std::string>& cards) {
    return std::find(cards.begin(), cards.end(), card) != cards.end();
  };
  if (has(box.cardsInIntake())) {
    where = Location::tray();
    ++places;
  }
  for (int i = 0; i < slots; ++i) {
    if (box.cardInSlot(i) == card) {
      where = Location::inSlot(i);
      ++places;
    }
  }
  if (has(box.cardsInBin())) {
    where = Location::bin();
    ++places;
  }
  if (has(box.cardsJammed())) {
    where = Location::jam();
    ++places;
  }
  FUZZ_CHECK(places == 1);
  FUZZ_CHECK(box.cardsInTransit().empty());
  return where;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lostcard::fuzz::quietLogs();
  scratch = std::make_unique<Scratch>();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::asView(data, size);
  const std::uint8_t flags = input.empty() ? 0 : static_cast<std::uint8_t>(input[0]);
  input.remove_prefix(input.empty() ? 0 : 1);

  const fs::path run = scratch->dir / "run";
  fs::remove_all(run);
  fs::create_directories(run);
  constexpr int kSlots = 4;
  hw::SimBox box({.root = run / "box", .slot_count = kSlots, .bin_capacity = 10,
                  .frame_jitter_seed = 1});
  Journal::Options journal_options;
  journal_options.reserve_bytes = 0;  // no 4 MiB reserve file per input
  Journal journal(run / "journal.sqlite", journal_options);
  std::int64_t clock_ms = 1'700'000'000'000;
  const auto clock = [&clock_ms] { return clock_ms; };

  asio::io_context io;
  Link link;
  std::optional<Uplink<Stream>> uplink;
  std::vector<v1::Envelope> sent_while_offline;
  Controller controller(box.devices(), journal,
                        IntakeConfig{.slot_count = kSlots, .bin_capacity = 10,
                                     .frames_per_face = 1, .capture_retry_ms = 0},
                        clock, [&](const v1::Envelope& env) {
                          if (uplink) {
                            uplink->send(env);
                          }
                        });
  controller.start();

  std::optional<Waiting> waiting;
  std::string card_name;
  if ((flags & 4) != 0) {
    card_name = box.dropCard(scratch->card);
    for (int i = 0; i < 20 && !waiting; ++i) {
      clock_ms += 100;
      controller.poll();
      for (const auto& env : journal.unackedOutbox()) {
        if (env.has_card_captured()) {
          waiting = Waiting{env.card_captured().deposit_id(), env.message_id()};
        }
      }
    }
    FUZZ_CHECK(waiting);
  }

  Stream kiosk_end(io);
  Stream cloud_end(io);
  kiosk_end.connect(cloud_end);
  kiosk_end.append(cloudBytes(flags, input, waiting));
  kiosk_end.close_remote();  // the cloud has said everything: EOF after it
  link.stream.emplace(std::move(kiosk_end));

  uplink.emplace(io.get_executor(), [&link] { return connectOnce(&link); },
                 UplinkOptions{.kiosk_id = kKioskId,
                               .hello_timeout = std::chrono::hours(1),
                               .backoff_initial = std::chrono::milliseconds(0),
                               .backoff_max = std::chrono::milliseconds(0),
                               .max_inbound_frame_bytes = 64 * 1024,
                               .peer_timeout = std::chrono::milliseconds(0)},
                 UplinkHandlers{.backlog = [&] { return controller.backlog(); },
                                .on_message = [&](const v1::Envelope& env) {
                                  controller.onMessage(env);
                                },
                                .on_link = {},
                                .clock_ms = clock});
  link.uplink = &*uplink;
  bool ended = false;
  asio::co_spawn(io, uplink->run(), [&](std::exception_ptr e) {
    FUZZ_CHECK(!e);
    ended = true;
  });
  io.run();
  FUZZ_CHECK(ended);
  controller.shutdown();

  // What the kiosk wrote: whole frames, Hello first.
  wire::FrameReader reader(wire::kDefaultMaxFrameBytes);
  const auto written = cloud_end.str();
  reader.append(written.data(), written.size());
  bool first = true;
  while (true) {
    v1::Envelope env;
    const auto r = reader.next(env);
    FUZZ_CHECK(r.status != wire::FrameStatus::kError);
    if (r.status == wire::FrameStatus::kNeedMore) {
      break;
    }
    if (first) {
      FUZZ_CHECK(env.has_hello() && env.hello().kiosk_id() == kKioskId);
      first = false;
    }
  }
  FUZZ_CHECK(!first);
  FUZZ_CHECK(reader.buffered() == 0);

  // The card is in one place, the one the journal records; the journal keeps at most 4 digits.
  if (waiting) {
    const auto physical = physicalPlace(box, card_name, kSlots);
    const auto journaled = journal.whereIs(waiting->deposit_id);
    FUZZ_CHECK(journaled);
    FUZZ_CHECK(*journaled == *physical);
  }
  for (const auto& deposit : journal.deposits()) {
    if (deposit.decision) {
      const auto& last4 = deposit.decision->last4;
      FUZZ_CHECK(last4.size() <= 4);
      FUZZ_CHECK(std::all_of(last4.begin(), last4.end(),
                             [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }));
    }
  }
  return 0;
}
