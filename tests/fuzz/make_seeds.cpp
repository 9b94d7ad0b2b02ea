// Writes the seed inputs of the fuzz targets (tests/fuzz/corpus/<target>/seed-*), made with the
// project's own encoders so they stay valid as the protocol grows. Run it again after a protocol
// change; the fuzzers' own finds (other file names) are left alone.
//
//   lostcard-fuzz-seeds tests/fuzz/corpus
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lostcard/cloud/notice.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"
#include "lostcard/wire/framing.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lostcard;

// Fixed ids, so the seeds are the same on every run.
constexpr const char* kDeposit = "0b6f2a8e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
constexpr const char* kOtherDeposit = "7d2c9e10-5a6b-4c7d-9e8f-a0b1c2d3e4f5";
int message_counter = 0;

v1::Envelope envelope() {
  v1::Envelope env;
  env.set_version(v1::PROTOCOL_VERSION_1);
  char id[40];
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", ++message_counter);
  env.set_message_id(id);
  env.set_sent_at_ms(1'700'000'000'000);
  return env;
}

std::string jpeg(int width, int height, bool grey, bool progressive) {
  cv::Mat image(height, width, grey ? CV_8UC1 : CV_8UC3, cv::Scalar(90, 140, 200));
  cv::putText(image, "4921", {2, height - 4}, cv::FONT_HERSHEY_SIMPLEX, 0.3, cv::Scalar(0, 0, 0));
  std::vector<uchar> out;
  cv::imencode(".jpg", image, out,
               {cv::IMWRITE_JPEG_QUALITY, 60, cv::IMWRITE_JPEG_PROGRESSIVE, progressive ? 1 : 0});
  return {out.begin(), out.end()};
}

// A small JPEG whose frame header claims width x height (a decompression bomb's header).
std::string claimingSize(int width, int height) {
  std::string j = jpeg(16, 16, false, false);
  for (std::size_t i = 2; i + 9 < j.size(); ++i) {
    if (static_cast<unsigned char>(j[i]) == 0xFF && static_cast<unsigned char>(j[i + 1]) == 0xC0) {
      j[i + 5] = static_cast<char>(height >> 8);
      j[i + 6] = static_cast<char>(height & 0xFF);
      j[i + 7] = static_cast<char>(width >> 8);
      j[i + 8] = static_cast<char>(width & 0xFF);
      break;
    }
  }
  return j;
}

// A record of the kiosk_session and uplink targets: 2-byte little-endian length, bytes.
std::string record(const std::string& bytes) {
  std::string out;
  out += static_cast<char>(bytes.size() & 0xFF);
  out += static_cast<char>((bytes.size() >> 8) & 0xFF);
  return out + bytes;
}
std::string record(const v1::Envelope& env) { return record(env.SerializeAsString()); }

// An envelope body by field number, for bodies this tree's schema may not have yet (a newer
// peer's message): `body` is the serialized inner message.
v1::Envelope withRawBody(int field, const std::string& body) {
  auto env = envelope();
  env.GetReflection()->MutableUnknownFields(&env)->AddLengthDelimited(field, body);
  return env;
}

// PickupRequest (kiosk_stream.proto, field 18 of Envelope) by hand: request_id, slot, code.
std::string pickupRequest(const std::string& request_id, std::uint32_t slot,
                          const std::string& code) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream s(&out);
    google::protobuf::io::CodedOutputStream c(&s);
    c.WriteTag((1 << 3) | 2);
    c.WriteVarint32(static_cast<std::uint32_t>(request_id.size()));
    c.WriteString(request_id);
    c.WriteTag(2 << 3);
    c.WriteVarint32(slot);
    c.WriteTag((3 << 3) | 2);
    c.WriteVarint32(static_cast<std::uint32_t>(code.size()));
    c.WriteString(code);
  }
  return out;
}

v1::Envelope captured(const std::string& deposit, const std::string& front,
                      const std::string& back) {
  auto env = envelope();
  auto* c = env.mutable_card_captured();
  c->set_deposit_id(deposit);
  auto* f = c->add_front();
  f->set_jpeg(front);
  f->set_width_px(64);
  f->set_height_px(40);
  auto* b = c->add_back();
  b->set_jpeg(back);
  c->mutable_metadata()->set_camera_id("cam0");
  (*c->mutable_metadata()->mutable_settings())["exposure"] = "auto";
  return env;
}

v1::Envelope stored(const std::string& deposit, std::optional<std::uint32_t> slot) {
  auto env = envelope();
  env.mutable_card_stored()->set_deposit_id(deposit);
  if (slot) {
    env.mutable_card_stored()->mutable_location()->set_slot(*slot);
  } else {
    env.mutable_card_stored()->mutable_location()->mutable_bin();
  }
  return env;
}

v1::Envelope inventory() {
  auto env = envelope();
  auto* inv = env.mutable_inventory();
  inv->set_journal_seq(7);
  inv->set_taken_at_ms(1'700'000'000'000);
  inv->set_journal_updated_at_ms(1'699'999'999'000);
  inv->set_slots_total(4);
  inv->set_bin_capacity(10);
  auto* s = inv->add_slots();
  s->set_deposit_id(kDeposit);
  s->set_slot(1);
  auto* b = inv->add_bin();
  b->set_deposit_id(kOtherDeposit);
  b->set_flagged(true);
  auto* u = inv->add_uncertain();
  u->set_deposit_id("3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  u->set_last_known("slot:3");
  u->set_detail("move from tray to slot:3 not finished");
  return env;
}

v1::Envelope heartbeat() {
  auto env = envelope();
  auto* hb = env.mutable_heartbeat();
  hb->set_slots_total(4);
  hb->set_slots_used(1);
  hb->set_bin_capacity(10);
  hb->set_bin_count(1);
  return env;
}

v1::Envelope ack(const std::string& id, const std::string& error = "") {
  auto env = envelope();
  env.mutable_ack()->set_message_id(id);
  env.mutable_ack()->set_error(error);
  return env;
}

v1::Envelope hello(const std::string& kiosk) {
  auto env = envelope();
  env.mutable_hello()->set_kiosk_id(kiosk);
  env.mutable_hello()->set_firmware_version("0.1.0");
  return env;
}

void write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / ("seed-" + name), std::ios::binary) << bytes;
}

std::string flags(int f) { return std::string(1, static_cast<char>(f)); }

void frameSeeds(const fs::path& dir) {
  const std::string small = jpeg(64, 40, false, false);
  write(dir, "hello", wire::encodeFrame(hello("kiosk-a")));
  write(dir, "hello-heartbeat-inventory",
        wire::encodeFrame(hello("kiosk-a")) + wire::encodeFrame(heartbeat()) +
            wire::encodeFrame(inventory()));
  write(dir, "captured", wire::encodeFrame(captured(kDeposit, small, small)));
  write(dir, "stored-ack", wire::encodeFrame(stored(kDeposit, 2)) + wire::encodeFrame(ack("x")));
  write(dir, "truncated", wire::encodeFrame(captured(kDeposit, small, small)).substr(0, 100));
  write(dir, "over-limit", "\x80\x80\x04" + std::string(32, 'x'));  // 65536 announced
  write(dir, "long-prefix", std::string(11, '\x80'));
  write(dir, "empty-frame", std::string(1, '\0'));
  write(dir, "garbage", "\x05\xff\xff\xff\xff\xff\xff");
}

void kioskSessionSeeds(const fs::path& dir) {
  const std::string small = jpeg(64, 40, false, false);
  const std::string grey = jpeg(48, 30, true, false);
  write(dir, "heartbeat", flags(1) + record(heartbeat()));
  write(dir, "captured-stored-slot",
        flags(1) + record(captured(kDeposit, small, grey)) + record(stored(kDeposit, 1)));
  write(dir, "captured-stored-bin", flags(1) + record(captured(kOtherDeposit, "not a jpeg", "")) +
                                        record(stored(kOtherDeposit, std::nullopt)));
  write(dir, "stored-slot-out-of-range", flags(1) + record(stored(kDeposit, 99)));
  write(dir, "inventory", flags(1) + record(inventory()) + record(heartbeat()));
  write(dir, "ack", flags(1) + record(ack("00000000-0000-4000-8000-000000000001")));
  write(dir, "pickup", flags(1) + record(withRawBody(18, pickupRequest(
                                                         "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
                                                         1, "123-456-7890"))));
  auto done = envelope();
  done.mutable_pickup_done()->set_request_id("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b");
  done.mutable_pickup_done()->set_deposit_id(kDeposit);
  done.mutable_pickup_done()->set_slot(1);
  done.mutable_pickup_done()->set_outcome(v1::PICKUP_OUTCOME_TAKEN);
  write(dir, "pickup-done", flags(1) + record(done));
  auto operator_auth = envelope();
  operator_auth.mutable_operator_auth_request()->set_request_id(
      "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c");
  operator_auth.mutable_operator_auth_request()->set_code("1357924680");
  write(dir, "operator-auth", flags(1) + record(operator_auth));
  auto emptied = envelope();
  emptied.mutable_bin_emptied()->set_request_id("6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c");
  emptied.mutable_bin_emptied()->add_deposit_ids(kOtherDeposit);
  write(dir, "bin-emptied", flags(1) + record(emptied));
  auto returned = envelope();
  returned.mutable_return_collected()->set_request_id("6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c");
  returned.mutable_return_collected()->add_deposit_ids(kDeposit);
  write(dir, "return-collected", flags(1) + record(returned));
  auto restock = envelope();
  restock.mutable_restock_check()->set_request_id("7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d");
  restock.mutable_restock_check()->set_deposit_id(kDeposit);
  restock.mutable_restock_check()->set_number("4000 0566 5566 5556");
  write(dir, "restock-check", flags(1) + record(restock));
  write(dir, "newer-message", flags(1) + record(withRawBody(99, "\x08\x01")));
  auto no_version = heartbeat();
  no_version.set_version(v1::PROTOCOL_VERSION_UNSPECIFIED);
  write(dir, "no-version", flags(1) + record(no_version));
  auto no_id = heartbeat();
  no_id.clear_message_id();
  write(dir, "no-id", flags(1) + record(no_id));
  auto disposition = envelope();
  disposition.mutable_disposition()->set_deposit_id(kDeposit);
  write(dir, "cloud-only-message", flags(1) + record(disposition));
  write(dir, "hello-again", flags(1) + record(hello("kiosk-a")));
  write(dir, "own-hello", flags(0) + record(hello("kiosk-a")) + record(heartbeat()));
  write(dir, "hello-of-another-kiosk", flags(0) + record(hello("kiosk-b")));
  write(dir, "raw-garbage-after-hello", flags(3) + "\x05\xff\xff\xff\xff\xff\xff");
  write(dir, "raw-truncated", flags(3) + wire::encodeFrame(heartbeat()).substr(0, 5));
}

void uplinkSeeds(const fs::path& dir) {
  auto store = envelope();
  store.mutable_disposition()->set_deposit_id("@deposit");
  store.mutable_disposition()->mutable_store()->set_last4("4242");
  auto difficult = envelope();
  difficult.mutable_disposition()->set_deposit_id("@deposit");
  difficult.mutable_disposition()->mutable_difficult()->set_reason(
      v1::DIFFICULT_REASON_NO_HOLDER);
  difficult.mutable_disposition()->mutable_difficult()->set_detail("no enrolled card");
  auto empty_decision = envelope();
  empty_decision.mutable_disposition()->set_deposit_id("@deposit");
  auto hello_ack = envelope();
  hello_ack.mutable_hello_ack()->set_kiosk_id("kiosk-a");
  hello_ack.mutable_hello_ack()->set_max_frame_bytes(1000);
  write(dir, "store", flags(5) + record(store));
  write(dir, "difficult", flags(5) + record(difficult));
  write(dir, "no-decision", flags(5) + record(empty_decision));
  write(dir, "store-then-difficult", flags(5) + record(store) + record(difficult));
  write(dir, "refused-capture", flags(5) + record(ack("@captured", "deposit id is not a UUID")));
  write(dir, "acked-capture", flags(5) + record(ack("@captured")));
  write(dir, "heartbeat-repeat-helloack", flags(1) + record(heartbeat()) + record(hello_ack));
  // Answers to requests the kiosk never made: ignored.
  auto pickup_answer = envelope();
  pickup_answer.mutable_pickup_answer()->set_request_id("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b");
  pickup_answer.mutable_pickup_answer()->set_result(v1::PICKUP_RESULT_OPEN);
  pickup_answer.mutable_pickup_answer()->set_deposit_id("@deposit");
  write(dir, "pickup-answer-unknown", flags(1) + record(pickup_answer));
  auto operator_answer = envelope();
  operator_answer.mutable_operator_auth_answer()->set_request_id("@deposit");
  operator_answer.mutable_operator_auth_answer()->set_result(v1::OPERATOR_AUTH_RESULT_OK);
  auto* return_slot = operator_answer.mutable_operator_auth_answer()->add_return_slots();
  return_slot->set_slot(0);
  return_slot->set_deposit_id("@deposit");
  auto* restock = operator_answer.mutable_operator_auth_answer()->add_restock();
  restock->set_restock_number(1);
  restock->set_deposit_id("@deposit");
  restock->set_last4("1234");
  write(dir, "operator-answer-unknown", flags(1) + record(operator_answer));
  write(dir, "newer-message", flags(1) + record(withRawBody(99, "\x08\x01")));
  write(dir, "no-helloack", flags(4) + record(store));
  write(dir, "own-helloack", flags(4) + record(hello_ack) + record(store));
  write(dir, "raw-garbage", flags(3) + "\x05\xff\xff\xff\xff\xff\xff");
}

void webhookSeeds(const fs::path& dir) {
  cloud::NoticeInput in;
  in.notice_id = "n-1";
  in.deposit_id = kDeposit;
  in.holder_name = "Ada";
  in.card_last4 = "4242";
  in.issuer_name = "Bank";
  in.kiosk.set_kiosk_id("kiosk-a");
  in.kiosk.set_name("Market square");
  in.slot = 2;
  in.pickup_code = "123-456-7890";
  const std::string body = cloud::noticeToJson(cloud::buildNotice(in));
  const auto post = [&](const std::string& target, const std::string& key,
                        const std::string& extra) {
    return "POST " + target + " HTTP/1.1\r\nHost: sink\r\nContent-Type: application/json\r\n" +
           "X-Lostcard-Signature: t=1700000000,v1=00\r\n" +
           (key.empty() ? "" : "Idempotency-Key: " + key + "\r\n") + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  write(dir, "notice", flags(1) + post("/holders/ada", "n-1", ""));
  write(dir, "notice-twice", flags(1) + post("/holders/ada", "n-1", "") +
                                 post("/holders/ada", "n-1", "Connection: close\r\n"));
  write(dir, "bad-signature", flags(0) + post("/holders/ada", "n-1", ""));
  write(dir, "unknown-holder", flags(1) + post("/holders/eve", "n-1", ""));
  write(dir, "no-key", flags(1) + post("/holders/ada", "", ""));
  write(dir, "get", flags(1) + "GET /holders/ada HTTP/1.1\r\nHost: sink\r\n\r\n");
  write(dir, "not-json", flags(1) +
                             "POST /holders/ada HTTP/1.1\r\nIdempotency-Key: k\r\n"
                             "Content-Length: 5\r\n\r\n{\"a\":");
  write(dir, "chunked", flags(1) +
                            "POST /holders/ada HTTP/1.1\r\nIdempotency-Key: k\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
  write(dir, "too-long", flags(1) +
                             "POST /holders/ada HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{}");
  write(dir, "not-http", flags(0) + "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
}

void jpegSeeds(const fs::path& dir) {
  write(dir, "colour", jpeg(64, 40, false, false));
  write(dir, "grey", jpeg(48, 30, true, false));
  write(dir, "progressive", jpeg(40, 64, false, true));
  const std::string c = jpeg(64, 40, false, false);
  write(dir, "cut-off", c.substr(0, c.size() / 2));
  write(dir, "bomb-header", claimingSize(60000, 60000));
  write(dir, "claims-larger", claimingSize(640, 480));
  write(dir, "png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
}

// A photo of a card lying on the tray: a light card of ID-1 proportions on a dark background, so
// the card finder finds its outline; and a tight crop of a card.
std::string cardPhoto(bool crop) {
  cv::Mat tray(240, 320, CV_8UC3, cv::Scalar(30, 30, 30));
  const cv::Rect card(60, 60, 200, 126);
  tray(card).setTo(cv::Scalar(210, 200, 190));
  cv::putText(tray, "4921 0000", {80, 150}, cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(20, 20, 20));
  std::vector<uchar> out;
  cv::imencode(".jpg", crop ? cv::Mat(tray(card)) : tray, out, {cv::IMWRITE_JPEG_QUALITY, 80});
  return {out.begin(), out.end()};
}

void keptImageSeeds(const fs::path& dir) {
  write(dir, "tray-no-face", flags(0) + cardPhoto(false));
  write(dir, "tray-front", flags(1) + cardPhoto(false));
  write(dir, "crop-back", flags(2) + cardPhoto(true));
  write(dir, "crop-no-face", flags(0) + cardPhoto(true));
  write(dir, "small-front", flags(1) + jpeg(64, 40, false, false));
  write(dir, "grey-no-face", flags(0) + jpeg(48, 30, true, false));
  write(dir, "bomb-header", flags(0) + claimingSize(60000, 60000));
}

void httpApiSeeds(const fs::path& dir) {
  const auto get = [](const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer @token\r\n\r\n";
  };
  const auto post = [](const std::string& target, const std::string& type,
                       const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer @token\r\n" +
           "Content-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  };
  write(dir, "holder-me-deposits", flags(0) + get("/v1/me") + get("/v1/holder/deposits"));
  write(dir, "operator-kiosks", flags(1) + get("/v1/operator/kiosks/kiosk-a/deposits") +
                                    get("/v1/operator/kiosks/kiosk-b/deposits?limit=5&x=%41"));
  write(dir, "issuer-cards", flags(2) + get("/v1/issuer/cards"));
  write(dir, "holder-reads-issuer", flags(0) + get("/v1/issuer/cards"));
  write(dir, "no-token", flags(3) + get("/v1/holder/deposits"));
  write(dir, "login-wrong", flags(3) + post("/v1/auth/login", "application/json",
                                            R"({"login":"ada","password":"wrong"})"));
  write(dir, "login-bad-json", flags(3) + post("/v1/auth/login", "application/json",
                                               R"({"login":"ada","password":)"));
  write(dir, "login-unknown-field", flags(3) + post("/v1/auth/login", "application/json",
                                                    R"({"login":"ada","pin":1})"));
  write(dir, "login-not-json", flags(3) + post("/v1/auth/login", "text/plain", "ada:pw"));
  write(dir, "logout", flags(0) + post("/v1/auth/logout", "application/json", "{}") +
                           get("/v1/me"));
  write(dir, "wrong-method", flags(0) + "DELETE /v1/me HTTP/1.1\r\nHost: api\r\n\r\n");
  write(dir, "unknown-path", flags(0) + get("/v1/operator/kiosks/%2e%2e/deposits") +
                                 get("/v2/x"));
  write(dir, "not-http", flags(3) + "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
  // The holder's endpoints (holder_api.hpp).
  write(dir, "holder-cards-notices",
        flags(0) + get("/v1/holder/cards") + get("/v1/holder/notices") + get("/v1/kiosks/kiosk-a"));
  write(dir, "holder-card-query", flags(0) + post("/v1/holder/card-queries", "application/json",
                                                  R"({"number":"4111 1111 1111 1111"})") +
                                      post("/v1/holder/card-queries", "application/json",
                                           R"({"card_id":"1"})"));
  write(dir, "holder-new-code",
        flags(0) + post("/v1/holder/deposits/11111111-1111-4111-8111-111111111111/new-code",
                        "application/json", "{}"));
  write(dir, "holder-stream", flags(0) + get("/v1/holder/notices/stream"));
  write(dir, "operator-holder-cards", flags(1) + get("/v1/holder/cards"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path corpus(argv[1]);
  frameSeeds(corpus / "frame");
  kioskSessionSeeds(corpus / "kiosk_session");
  uplinkSeeds(corpus / "uplink");
  webhookSeeds(corpus / "webhook_http");
  jpegSeeds(corpus / "jpeg_intake");
  keptImageSeeds(corpus / "kept_image");
  httpApiSeeds(corpus / "http_api");
  std::printf("seeds written under %s\n", corpus.c_str());
  return 0;
}
