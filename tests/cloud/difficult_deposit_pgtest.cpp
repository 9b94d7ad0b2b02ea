// DepositService with an image vault, on rendered cards and a real PostgreSQL: a difficult card
// keeps its photos (straightened, the signature band blacked out on every face but the number's,
// sealed); a card that goes to its holder keeps none; without a vault nothing is kept.
#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "lostcard/cardgen/card_renderer.hpp"
#include "lostcard/cloud/deposit_service.hpp"
#include "lostcard/cloud/image_redaction.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/recognition_stages.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/pg_test_db.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace cardgen = lostcard::cardgen;
namespace v1 = lostcard::v1;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1714564800s);
constexpr const char* kEnrolled = "4539148803436467";
constexpr const char* kStranger = "5425233430109903";

std::string jpeg(const cv::Mat& image) {
  std::vector<unsigned char> out;
  REQUIRE(cv::imencode(".jpg", image, out, {cv::IMWRITE_JPEG_QUALITY, 90}));
  return std::string(out.begin(), out.end());
}

cv::Mat decode(const std::string& bytes) {
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat image = cv::imdecode(raw, cv::IMREAD_GRAYSCALE);
  REQUIRE_FALSE(image.empty());
  return image;
}

struct Fixture {
  lostcard::test::PgTestDb db;
  Store store{[this] {
    StoreOptions options;
    options.conninfo = db.conninfo();
    options.pool_size = 2;
    return options;
  }()};
  CardHasher hasher{"test-key", std::string(32, 'k')};
  ImageVault vault{{{"img-1", std::string(32, 'v')}}};
  RecognizerOptions recognizer{.tessdata_dir = "",
                               .models_dir = lostcard::test::sourceDir() + "/models",
                               .limits = {}};
  cardgen::CardRenderer renderer;

  Fixture() {
    store.migrate();
    store.upsertIssuer("bank", "Bank");
    store.upsertHolder("ada", "Ada", "http://127.0.0.1:9/ada", "ada-secret-0123");
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.37, 8.54, "", 24});
    store.enrollCard(hasher, "bank", "ada", kEnrolled);
  }

  // The kiosk's CardCaptured for a rendered card; *number_face: where its number is printed.
  v1::CardCaptured captured(const std::string& name, const std::string& number,
                            CardFace* number_face = nullptr) {
    const cardgen::CardPhotos photos =
        renderer.render({name, number}, cardgen::cardSeed(5, name));
    if (number_face != nullptr) {
      *number_face = photos.traits.back_up ? CardFace::kBack : CardFace::kFront;
    }
    v1::CardCaptured c;
    c.set_deposit_id(lostcard::wire::newUuid());
    c.add_front()->set_jpeg(jpeg(photos.front));
    c.add_back()->set_jpeg(jpeg(photos.back));
    return c;
  }
};

}  // namespace

TEST_CASE("only difficult cards keep photos, redacted and sealed") {
  Fixture f;
  DepositService service(f.store, f.hasher, f.recognizer, DecisionPolicy{}, &f.vault);

  SECTION("a card that goes to its holder keeps none") {
    const auto card = f.captured("enrolled", kEnrolled);
    const auto answer = service.handleCaptured("kiosk-1", card, kNow);
    REQUIRE(std::holds_alternative<v1::Disposition>(answer));
    REQUIRE(std::get<v1::Disposition>(answer).has_store());
    CHECK(f.store.difficultImages(card.deposit_id()).empty());
  }

  SECTION("an unreadable card keeps every frame, blacked out on both faces") {
    const auto card = f.captured("scratched", "");
    const auto answer = service.handleCaptured("kiosk-1", card, kNow);
    REQUIRE(std::holds_alternative<v1::Disposition>(answer));
    REQUIRE(std::get<v1::Disposition>(answer).has_difficult());
    const auto images = f.store.difficultImages(card.deposit_id());
    REQUIRE(images.size() == 2);
    for (const auto& image : images) {
      CHECK(image.straightened);
      CHECK(image.blacked_out);
      CHECK(image.key_id == "img-1");
      const auto photo =
          f.vault.open({image.key_id, image.nonce, image.ciphertext}, card.deposit_id());
      REQUIRE(photo);
      const cv::Mat gray = decode(*photo);
      CHECK(gray.cols == kCardWidthPx);
      for (const auto& rows : signatureBandRows(gray.rows)) {
        double lo = 0, hi = 0;
        cv::minMaxLoc(gray.rowRange(rows), &lo, &hi);
        CHECK(hi <= 8);
      }
    }
    // Seen again (the kiosk resent it): the recorded decision, the same photos.
    service.handleCaptured("kiosk-1", card, kNow + 1min);
    CHECK(f.store.difficultImages(card.deposit_id()).size() == 2);
  }

  SECTION("a card of nobody keeps the number's face whole") {
    CardFace number_face = CardFace::kFront;
    const auto card = f.captured("stranger", kStranger, &number_face);
    const auto answer = service.handleCaptured("kiosk-1", card, kNow);
    REQUIRE(std::holds_alternative<v1::Disposition>(answer));
    const auto& disposition = std::get<v1::Disposition>(answer);
    REQUIRE(disposition.has_difficult());
    CHECK(disposition.difficult().reason() == v1::DIFFICULT_REASON_NO_HOLDER);
    const auto images = f.store.difficultImages(card.deposit_id());
    REQUIRE(images.size() == 2);
    for (const auto& image : images) {
      CHECK(image.blacked_out == (image.face != faceName(number_face)));
    }
  }
}

TEST_CASE("without an image vault no photo is kept") {
  Fixture f;
  DepositService service(f.store, f.hasher, f.recognizer, DecisionPolicy{});
  const auto card = f.captured("scratched-too", "");
  const auto answer = service.handleCaptured("kiosk-1", card, kNow);
  REQUIRE(std::holds_alternative<v1::Disposition>(answer));
  CHECK(std::get<v1::Disposition>(answer).has_difficult());
  CHECK(f.store.difficultImages(card.deposit_id()).empty());
}
