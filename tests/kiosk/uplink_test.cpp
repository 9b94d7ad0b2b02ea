// The uplink's session logic over in-memory streams: a fake cloud end per connection.
#include <catch2/catch.hpp>

// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <chrono>
#include <memory>

#include "fake_cloud.hpp"
#include "lostcard/kiosk/uplink.hpp"
#include "lostcard/wire/envelope.hpp"

namespace asio = boost::asio;
namespace v1 = lostcard::v1;
using lostcard::kiosk::Uplink;
using lostcard::kiosk::UplinkHandlers;
using lostcard::kiosk::UplinkOptions;
using lostcard::kiosk::test::CloudEnd;
using lostcard::kiosk::test::FakeCloud;
using lostcard::kiosk::test::runUntil;
using lostcard::kiosk::test::Stream;

namespace {

v1::Envelope captured(const std::string& deposit_id) {
  auto env = lostcard::wire::makeEnvelope(0);
  env.mutable_card_captured()->set_deposit_id(deposit_id);
  env.mutable_card_captured()->add_front()->set_jpeg("jpeg");
  return env;
}

v1::Envelope heartbeat(std::uint32_t used) {
  auto env = lostcard::wire::makeEnvelope(0);
  env.mutable_heartbeat()->set_slots_used(used);
  return env;
}

// An uplink connected to a fake cloud.
struct Harness {
  asio::io_context io;
  FakeCloud cloud{io};
  std::vector<v1::Envelope> backlog;  // stands for the journal's unanswered messages
  std::vector<v1::Envelope> inbound;  // what reached the daemon
  std::unique_ptr<Uplink<Stream>> uplink;

  explicit Harness(UplinkOptions options = {}) {
    options.kiosk_id = "kiosk-test";
    options.backoff_initial = std::chrono::milliseconds(1);
    options.backoff_max = std::chrono::milliseconds(4);
    uplink = std::make_unique<Uplink<Stream>>(
        io.get_executor(), cloud.connector(), options,
        UplinkHandlers{.backlog = [this] { return backlog; },
                       .on_message = [this](const v1::Envelope& env) { inbound.push_back(env); },
                       .on_link = {},
                       .clock_ms = [] { return std::int64_t{42}; }});
    asio::co_spawn(io, uplink->run(), asio::detached);
  }

  ~Harness() {
    uplink->stop();
    io.run_for(std::chrono::milliseconds(20));
  }

  CloudEnd& end(std::size_t i) { return cloud.end(i); }
  bool hasGot(std::size_t i, std::size_t n) { return cloud.hasGot(i, n); }
};

}  // namespace

TEST_CASE("Hello goes first, then the backlog after HelloAck, then live messages", "[uplink]") {
  Harness h;
  h.backlog = {captured("dep-1"), captured("dep-2")};
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  auto& cloud = h.end(0);
  REQUIRE(cloud.got[0].has_hello());
  CHECK(cloud.got[0].hello().kiosk_id() == "kiosk-test");
  CHECK_FALSE(cloud.got[0].hello().firmware_version().empty());
  CHECK(cloud.got[0].version() == v1::PROTOCOL_VERSION_1);
  CHECK_FALSE(h.uplink->connected());

  // Before HelloAck nothing else is sent: this heartbeat is dropped.
  h.uplink->send(heartbeat(99));
  cloud.helloAck();
  REQUIRE(runUntil(h.io, [&] { return cloud.got.size() >= 3; }));
  CHECK(h.uplink->connected());
  CHECK(cloud.got[1].message_id() == h.backlog[0].message_id());
  CHECK(cloud.got[2].message_id() == h.backlog[1].message_id());

  h.uplink->send(heartbeat(7));
  REQUIRE(runUntil(h.io, [&] { return cloud.got.size() >= 4; }));
  REQUIRE(cloud.got[3].has_heartbeat());
  CHECK(cloud.got[3].heartbeat().slots_used() == 7);  // not the dropped 99
  CHECK(h.uplink->sessionsEstablished() == 1);
}

TEST_CASE("Dispositions and Acks from the cloud reach the daemon", "[uplink]") {
  Harness h;
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  auto& cloud = h.end(0);
  cloud.helloAck();
  auto disposition = lostcard::wire::makeEnvelope(0);
  disposition.mutable_disposition()->set_deposit_id("dep-1");
  disposition.mutable_disposition()->mutable_store()->set_last4("1234");
  cloud.send(disposition);
  cloud.send(lostcard::wire::makeAck("msg-1", 0));
  cloud.send(heartbeat(1));  // not for the kiosk: ignored
  REQUIRE(runUntil(h.io, [&] { return h.inbound.size() >= 2; }));
  CHECK(h.inbound[0].disposition().deposit_id() == "dep-1");
  CHECK(h.inbound[1].ack().message_id() == "msg-1");
  CHECK(h.uplink->connected());
}

TEST_CASE("unanswered messages are resent after a reconnect, answered ones are not", "[uplink]") {
  Harness h;
  h.backlog = {captured("dep-1")};
  const auto first_id = h.backlog[0].message_id();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 2); }));
  CHECK(h.end(0).got[1].message_id() == first_id);

  // The link breaks before the cloud answered.
  h.end(0).hangUp();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 1); }));
  CHECK_FALSE(h.uplink->connected());
  CHECK(h.end(1).got[0].has_hello());
  h.end(1).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 2); }));
  CHECK(h.end(1).got[1].message_id() == first_id);  // the same message, the same id
  CHECK(h.end(1).got[1].card_captured().deposit_id() == "dep-1");

  // Answered now (the journal drops it from the backlog); the next session sends nothing old.
  h.backlog.clear();
  h.end(1).hangUp();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(2, 1); }));
  h.end(2).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.uplink->connected(); }));
  h.uplink->send(heartbeat(3));
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(2, 2); }));
  CHECK(h.end(2).got[1].has_heartbeat());
  CHECK(h.uplink->sessionsEstablished() == 3);
}

TEST_CASE("a malformed frame from the cloud closes the session", "[uplink]") {
  Harness h;
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.uplink->connected(); }));
  // A frame announcing 5 bytes that are not a protobuf message.
  const char garbage[] = {5, '\xff', '\xff', '\xff', '\xff', '\xff'};
  h.end(0).conn->stream().write_some(asio::buffer(garbage, sizeof(garbage)));
  REQUIRE(runUntil(h.io, [&] { return h.end(0).ended.has_value(); }));
  CHECK(h.inbound.empty());
  // ... and the uplink comes back on a new connection.
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 1); }));
  CHECK(h.end(1).got[0].has_hello());
}

TEST_CASE("anything but HelloAck as the cloud's first answer closes the session", "[uplink]") {
  Harness h;
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  auto disposition = lostcard::wire::makeEnvelope(0);
  disposition.mutable_disposition()->set_deposit_id("dep-1");
  h.end(0).send(disposition);
  REQUIRE(runUntil(h.io, [&] { return h.end(0).ended.has_value(); }));
  CHECK(h.inbound.empty());
  CHECK(h.uplink->sessionsEstablished() == 0);
}

TEST_CASE("a cloud that never answers Hello is left and tried again", "[uplink]") {
  Harness h(
      UplinkOptions{.kiosk_id = "kiosk-test", .hello_timeout = std::chrono::milliseconds(10)});
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  REQUIRE(runUntil(h.io, [&] { return h.end(0).ended.has_value(); }));
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 1); }));
  CHECK(h.end(1).got[0].has_hello());
}

TEST_CASE("a cloud that goes silent with a heartbeat unanswered is left and tried again",
          "[uplink][peer]") {
  Harness h(UplinkOptions{.kiosk_id = "kiosk-test",
                          .peer_timeout = std::chrono::milliseconds(30)});
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.uplink->connected(); }));
  // The connection stays open, but the cloud answers nothing: a half-open or stalled link.
  h.uplink->send(heartbeat(1));
  REQUIRE(runUntil(h.io, [&] { return h.end(0).ended.has_value(); }));
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 1); }));
  CHECK(h.end(1).got[0].has_hello());
  CHECK(h.uplink->sessionsEstablished() == 1);
}

TEST_CASE("an unanswered CardCaptured is resent after the peer timeout ends a silent link",
          "[uplink][peer]") {
  Harness h(UplinkOptions{.kiosk_id = "kiosk-test",
                          .peer_timeout = std::chrono::milliseconds(30)});
  h.backlog = {captured("dep-1")};
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 2); }));
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 1); }));
  h.end(1).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(1, 2); }));
  CHECK(h.end(1).got[1].message_id() == h.backlog[0].message_id());
}

TEST_CASE("an idle link with nothing unanswered is never left for silence", "[uplink][peer]") {
  Harness h(UplinkOptions{.kiosk_id = "kiosk-test",
                          .peer_timeout = std::chrono::milliseconds(1)});
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.uplink->connected(); }));
  // However long this runs, nothing was sent, so nothing is awaited.
  h.io.run_for(std::chrono::milliseconds(100));
  CHECK(h.uplink->connected());
  CHECK(h.uplink->sessionsEstablished() == 1);
  CHECK_FALSE(h.end(0).ended.has_value());
}

TEST_CASE("a large message on a slow link is given time to arrive before silence counts",
          "[uplink][peer]") {
  // 1 byte/s: the CardCaptured below needs minutes to arrive at that rate.
  Harness h(UplinkOptions{.kiosk_id = "kiosk-test",
                          .peer_timeout = std::chrono::milliseconds(1),
                          .min_upload_bytes_per_s = 1});
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.uplink->connected(); }));
  auto big = captured("dep-big");
  big.mutable_card_captured()->mutable_front(0)->set_jpeg(std::string(500, 'f'));
  h.uplink->send(big);
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 2); }));
  h.io.run_for(std::chrono::milliseconds(100));
  CHECK(h.uplink->connected());
  CHECK_FALSE(h.end(0).ended.has_value());
}

TEST_CASE("heartbeat and inventory acks and the cloud's heartbeats only prove the link alive",
          "[uplink][peer]") {
  Harness h;
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  auto& cloud = h.end(0);
  cloud.helloAck();
  REQUIRE(runUntil(h.io, [&] { return h.uplink->connected(); }));
  for (std::uint32_t i = 0; i < 3; ++i) {
    h.uplink->send(heartbeat(i));
    REQUIRE(runUntil(h.io, [&] { return cloud.got.size() >= 2 + i; }));
    cloud.send(lostcard::wire::makeAck(cloud.got.back().message_id(), 0));
  }
  // An inventory is not durable either: its Ack, even one saying the cloud could not record it,
  // is nothing for the journal.
  for (const char* error : {"", "inventory not recorded: database away"}) {
    auto inventory = lostcard::wire::makeEnvelope(0);
    inventory.mutable_inventory()->set_slots_total(4);
    const auto before = cloud.got.size();
    h.uplink->send(inventory);
    REQUIRE(runUntil(h.io, [&] { return cloud.got.size() > before; }));
    cloud.send(lostcard::wire::makeAck(inventory.message_id(), 0, error));
  }
  auto busy = lostcard::wire::makeEnvelope(0);
  busy.mutable_heartbeat();
  cloud.send(busy);
  cloud.send(lostcard::wire::makeAck("msg-1", 0));  // not a heartbeat's: for the daemon
  REQUIRE(runUntil(h.io, [&] { return !h.inbound.empty(); }));
  REQUIRE(h.inbound.size() == 1);
  CHECK(h.inbound[0].ack().message_id() == "msg-1");
  CHECK(h.uplink->connected());
  CHECK(h.uplink->sessionsEstablished() == 1);
}

TEST_CASE("a CardCaptured too big for the cloud loses frames, never the message", "[uplink]") {
  Harness h;
  auto big = captured("dep-big");
  big.mutable_card_captured()->clear_front();
  for (int i = 0; i < 3; ++i) {
    big.mutable_card_captured()->add_front()->set_jpeg(std::string(1000, 'f'));
    big.mutable_card_captured()->add_back()->set_jpeg(std::string(1000, 'b'));
  }
  h.backlog = {big};
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 1); }));
  h.end(0).helloAck(2600);
  REQUIRE(runUntil(h.io, [&] { return h.hasGot(0, 2); }));
  const auto& sent = h.end(0).got[1];
  CHECK(sent.message_id() == big.message_id());
  CHECK(sent.ByteSizeLong() + 10 <= 2600);
  CHECK(sent.card_captured().front_size() >= 1);
  CHECK(sent.card_captured().back_size() >= 1);
}

TEST_CASE("fitToFrameLimit drops frames from the end, back and front in turn", "[uplink]") {
  auto env = captured("dep");
  env.mutable_card_captured()->clear_front();
  for (int i = 0; i < 2; ++i) {
    env.mutable_card_captured()->add_front()->set_jpeg(std::string(500, 'f'));
    env.mutable_card_captured()->add_back()->set_jpeg(std::string(500, 'b'));
  }
  auto small = env;
  CHECK(lostcard::kiosk::fitToFrameLimit(small, 1 << 20) == 0);
  CHECK(lostcard::kiosk::fitToFrameLimit(small, 1600) == 1);
  CHECK(small.card_captured().front_size() == 2);
  CHECK(small.card_captured().back_size() == 1);
  CHECK(lostcard::kiosk::fitToFrameLimit(small, 100) == 3);
  CHECK(small.card_captured().deposit_id() == "dep");
  auto hb = heartbeat(1);
  CHECK(lostcard::kiosk::fitToFrameLimit(hb, 1) == 0);
}
