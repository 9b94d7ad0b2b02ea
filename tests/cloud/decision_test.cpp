#include <catch2/catch.hpp>

#include "lostcard/cloud/decision.hpp"
#include "lostcard/cloud/deposit_service.hpp"

using namespace lostcard::cloud;
namespace v1 = lostcard::v1;

namespace {
const std::string kDeposit = "0b6f5c1e-3a4d-4f5e-9a7b-1c2d3e4f5a6b";

CardReading readNumber(std::string number, double confidence = 0.9) {
  CardReading r;
  r.outcome = ReadOutcome::kRead;
  r.number = std::move(number);
  r.confidence = confidence;
  return r;
}

CardOwner owner(std::int64_t card_id, std::string holder) {
  CardOwner o;
  o.card_id = card_id;
  o.holder_id = std::move(holder);
  o.last4 = "0366";
  return o;
}
}  // namespace

TEST_CASE("a checked number with exactly one enrolled card is stored for its holder",
          "[decision]") {
  const auto d = decideDeposit(kDeposit, "kiosk-a", readNumber("4539578763621486"),
                               {owner(7, "holder-1")}, {});
  CHECK(d.store);
  REQUIRE(d.card_id);
  CHECK(*d.card_id == 7);
  CHECK(d.last4 == "1486");
  CHECK(d.deposit_id == kDeposit);
  CHECK(d.kiosk_id == "kiosk-a");
}

TEST_CASE("every doubt makes a difficult card", "[decision]") {
  SECTION("no holder known") {
    const auto d = decideDeposit(kDeposit, "k", readNumber("4539578763621486"), {}, {});
    CHECK_FALSE(d.store);
    CHECK(d.reason == v1::DIFFICULT_REASON_NO_HOLDER);
    CHECK(d.last4 == "1486");
    CHECK_FALSE(d.card_id);
  }
  SECTION("two enrolled cards match") {
    const auto d = decideDeposit(kDeposit, "k", readNumber("4539578763621486"),
                                 {owner(1, "a"), owner(2, "b")}, {});
    CHECK_FALSE(d.store);
    CHECK(d.reason == v1::DIFFICULT_REASON_AMBIGUOUS);
  }
  SECTION("confidence below the policy's minimum, even with a holder") {
    DecisionPolicy policy;
    policy.min_confidence = 0.8;
    const auto d = decideDeposit(kDeposit, "k", readNumber("4539578763621486", 0.79),
                                 {owner(1, "a")}, policy);
    CHECK_FALSE(d.store);
    CHECK(d.reason == v1::DIFFICULT_REASON_UNREADABLE);
    CHECK_THAT(d.detail, Catch::Contains("low confidence"));
  }
  SECTION("the recognizer could not read the card") {
    CardReading r;
    r.outcome = ReadOutcome::kUnreadable;
    r.detail = "no number line found";
    const auto d = decideDeposit(kDeposit, "k", r, {}, {});
    CHECK(d.reason == v1::DIFFICULT_REASON_UNREADABLE);
    CHECK(d.detail == "no number line found");
  }
  SECTION("frames disagree") {
    CardReading r;
    r.outcome = ReadOutcome::kAmbiguous;
    CHECK(decideDeposit(kDeposit, "k", r, {owner(1, "a")}, {}).reason ==
          v1::DIFFICULT_REASON_AMBIGUOUS);
  }
  SECTION("images that cannot be used") {
    CardReading r;
    r.outcome = ReadOutcome::kBadImage;
    r.detail = "front frame 1: not a JPEG";
    const auto d = decideDeposit(kDeposit, "k", r, {}, {});
    CHECK(d.reason == v1::DIFFICULT_REASON_BAD_IMAGE);
    CHECK(d.detail == "front frame 1: not a JPEG");
  }
  SECTION("a reader that claims success without a number") {
    CardReading r;
    r.outcome = ReadOutcome::kRead;
    CHECK_FALSE(decideDeposit(kDeposit, "k", r, {owner(1, "a")}, {}).store);
  }
}

TEST_CASE("decisions are described without the card number", "[decision]") {
  const auto stored = decideDeposit(kDeposit, "k", readNumber("4539578763621486"),
                                    {owner(1, "a")}, {});
  CHECK(describeDecision(stored) == "store (card ending 1486)");
  const auto unknown = decideDeposit(kDeposit, "k", readNumber("4539578763621486"), {}, {});
  CHECK(describeDecision(unknown).find("4539578763621486") == std::string::npos);
  CHECK_THAT(describeDecision(unknown), Catch::Contains("NO_HOLDER"));
}

TEST_CASE("a decision becomes the Disposition the kiosk receives", "[decision]") {
  const auto stored = decideDeposit(kDeposit, "k", readNumber("4539578763621486"),
                                    {owner(1, "a")}, {});
  const auto d1 = toDisposition(stored);
  CHECK(d1.deposit_id() == kDeposit);
  REQUIRE(d1.has_store());
  CHECK(d1.store().last4() == "1486");
  CardReading unreadable;
  const auto d2 = toDisposition(decideDeposit(kDeposit, "k", unreadable, {}, {}));
  REQUIRE(d2.has_difficult());
  CHECK(d2.difficult().reason() == v1::DIFFICULT_REASON_UNREADABLE);
}
