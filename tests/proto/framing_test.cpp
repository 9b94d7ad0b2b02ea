#include <catch2/catch.hpp>

#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/framing.hpp"
#include "lostcard/wire/log.hpp"

using lostcard::wire::encodeFrame;
using lostcard::wire::FrameReader;
using lostcard::wire::FrameStatus;
namespace v1 = lostcard::v1;

namespace {
v1::Envelope capturedEnvelope(std::size_t jpeg_bytes) {
  auto env = lostcard::wire::makeEnvelope(1700000000000);
  auto* cap = env.mutable_card_captured();
  cap->set_deposit_id(lostcard::wire::newUuid());
  cap->add_front()->set_jpeg(std::string(jpeg_bytes, '\xff'));
  return env;
}
}  // namespace

TEST_CASE("frames round-trip one byte at a time", "[framing]") {
  const auto a = capturedEnvelope(1000);
  auto b = lostcard::wire::makeEnvelope(1);
  b.mutable_heartbeat()->set_slots_used(3);
  const std::string bytes = encodeFrame(a) + encodeFrame(b);

  FrameReader reader(4096);
  std::vector<v1::Envelope> got;
  for (char c : bytes) {
    reader.append(&c, 1);
    v1::Envelope env;
    auto r = reader.next(env);
    REQUIRE(r.status != FrameStatus::kError);
    if (r.status == FrameStatus::kFrame) {
      got.push_back(env);
    }
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0].card_captured().deposit_id() == a.card_captured().deposit_id());
  CHECK(got[0].card_captured().front(0).jpeg().size() == 1000);
  CHECK(got[1].heartbeat().slots_used() == 3);
  CHECK(reader.buffered() == 0);
}

TEST_CASE("several frames in one read are all returned", "[framing]") {
  std::string bytes;
  for (int i = 0; i < 5; ++i) {
    auto env = lostcard::wire::makeEnvelope(i);
    env.mutable_heartbeat()->set_bin_count(i);
    bytes += encodeFrame(env);
  }
  FrameReader reader;
  reader.append(bytes);
  v1::Envelope env;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(reader.next(env).status == FrameStatus::kFrame);
    CHECK(env.heartbeat().bin_count() == static_cast<unsigned>(i));
  }
  CHECK(reader.next(env).status == FrameStatus::kNeedMore);
}

TEST_CASE("an oversized frame is refused from its prefix alone", "[framing]") {
  const std::string bytes = encodeFrame(capturedEnvelope(10000));
  FrameReader reader(1000);
  reader.append(bytes.substr(0, 3));  // the length prefix and nothing of the body
  v1::Envelope env;
  auto r = reader.next(env);
  REQUIRE(r.status == FrameStatus::kError);
  CHECK_THAT(r.error, Catch::Contains("exceeds the limit of 1000 bytes"));
  // The reader stays failed: the stream is out of sync.
  CHECK(reader.next(env).status == FrameStatus::kError);
}

TEST_CASE("a truncated frame waits for more bytes", "[framing]") {
  const std::string bytes = encodeFrame(capturedEnvelope(500));
  FrameReader reader;
  reader.append(bytes.substr(0, bytes.size() - 1));
  v1::Envelope env;
  CHECK(reader.next(env).status == FrameStatus::kNeedMore);
  reader.append(bytes.substr(bytes.size() - 1));
  CHECK(reader.next(env).status == FrameStatus::kFrame);
}

TEST_CASE("garbage is a malformed frame, not a crash", "[framing]") {
  SECTION("a body that is not an Envelope") {
    // Length 4, then a field tag with wire type 7, which does not exist.
    const std::string bytes = std::string("\x04", 1) + std::string("\x0f\x01\x02\x03", 4);
    FrameReader reader;
    reader.append(bytes);
    v1::Envelope env;
    auto r = reader.next(env);
    REQUIRE(r.status == FrameStatus::kError);
    CHECK_THAT(r.error, Catch::Contains("malformed"));
  }
  SECTION("a length prefix that never ends") {
    FrameReader reader;
    reader.append(std::string(12, '\xff'));
    v1::Envelope env;
    auto r = reader.next(env);
    REQUIRE(r.status == FrameStatus::kError);
    CHECK_THAT(r.error, Catch::Contains("length prefix"));
  }
  SECTION("an incomplete prefix is not yet an error") {
    FrameReader reader;
    reader.append(std::string(3, '\xff'));
    v1::Envelope env;
    CHECK(reader.next(env).status == FrameStatus::kNeedMore);
  }
}

TEST_CASE("message ids are UUIDs", "[envelope]") {
  const auto env = lostcard::wire::makeEnvelope(5);
  CHECK(lostcard::wire::isUuid(env.message_id()));
  CHECK(env.version() == v1::PROTOCOL_VERSION_1);
  CHECK_FALSE(lostcard::wire::isUuid("not-a-uuid"));
  // One spelling only, so ids compare as text everywhere.
  CHECK(lostcard::wire::isUuid("0b6f5c1e-3a4d-4f5e-9a7b-1c2d3e4f5a6b"));
  CHECK_FALSE(lostcard::wire::isUuid("0B6F5C1E-3A4D-4F5E-9A7B-1C2D3E4F5A6B"));
  CHECK(lostcard::wire::bodyName(lostcard::wire::makeAck("x", 1)) == "ack");
}

TEST_CASE("masked numbers keep only the last four digits", "[log]") {
  CHECK(lostcard::wire::maskedNumber("4000 1234 5678 9010") == "**** 9010");
  CHECK(lostcard::wire::maskedNumber("123") == "****");
}
