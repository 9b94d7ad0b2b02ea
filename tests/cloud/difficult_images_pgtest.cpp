// The photos kept of difficult cards in PostgreSQL (migration 4): stored sealed with their
// decision in one transaction, read back and opened, deleted after the retention period by the
// store, the sweep and lostcard-admin purge-images; lostcard-admin difficult-image decrypts one.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "lostcard/cloud/image_retention.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/test/files.hpp"
#include "lostcard/test/pg_test_db.hpp"

using namespace lostcard::cloud;
using namespace std::chrono_literals;
namespace test = lostcard::test;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1714564800s);  // 2024-05-01T12:00:00Z
constexpr const char* kKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

struct Fixture {
  test::PgTestDb db;
  Store store{[this] {
    StoreOptions options;
    options.conninfo = db.conninfo();
    options.pool_size = 2;
    return options;
  }()};
  std::string dir = test::makeTestDir("difficult_images_pgtest");
  std::string key_file = dir + "/image.key";
  std::optional<ImageVault> vault;

  Fixture() {
    std::ofstream(key_file) << "img-1 " << kKeyHex << "\n";
    vault.emplace(ImageVault::fromFile(key_file));
    store.migrate();
    store.upsertKiosk({"kiosk-1", "Main Station", "Station Square 1", 47.378177, 8.540192,
                       "Mo-Su 05:00-24:00", 24});
  }

  DepositDecision difficult(const std::string& deposit_id) {
    DepositDecision d;
    d.deposit_id = deposit_id;
    d.kiosk_id = "kiosk-1";
    d.store = false;
    d.reason = lostcard::v1::DIFFICULT_REASON_UNREADABLE;
    d.detail = "front frame 1: no digits in the line";
    return d;
  }

  DifficultImage sealed(const std::string& deposit_id, const std::string& face, int frame,
                        const std::string& photo) {
    SealedImage s = vault->seal(photo, deposit_id);
    DifficultImage image;
    image.face = face;
    image.frame = frame;
    image.straightened = true;
    image.blacked_out = face == "back";
    image.key_id = s.key_id;
    image.nonce = s.nonce;
    image.ciphertext = s.ciphertext;
    return image;
  }

  int count(const std::string& sql) {
    pqxx::connection c(db.conninfo());
    pqxx::read_transaction tx(c);
    return tx.exec1(sql)[0].as<int>();
  }

  std::vector<std::string> admin(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {test::binDir() + "/lostcard-admin", "--db", db.conninfo(),
                                     "--image-key-file", key_file};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::nonEmptyLines(test::runProgram(argv));
  }
};

constexpr const char* kDeposit = "11111111-2222-4333-8444-555555555555";
constexpr const char* kOtherDeposit = "11111111-2222-4333-8444-666666666666";

}  // namespace

TEST_CASE("a difficult decision stores its sealed photos in the same transaction") {
  Fixture f;
  const auto recorded = f.store.recordDecision(
      f.difficult(kDeposit), kNow,
      {f.sealed(kDeposit, "front", 0, "FRONT-PHOTO"), f.sealed(kDeposit, "back", 0, "BACK-PHOTO"),
       f.sealed(kDeposit, "back", 1, "BACK-PHOTO-2")});
  CHECK_FALSE(recorded.store);

  const auto images = f.store.difficultImages(kDeposit);
  REQUIRE(images.size() == 3);
  CHECK(images[0].face == "front");
  CHECK(images[1].face == "back");
  CHECK(images[2].frame == 1);
  CHECK(images[0].created_at == kNow);
  CHECK(images[1].blacked_out);
  CHECK(images[0].key_id == "img-1");
  std::string why;
  CHECK(f.vault->open({images[0].key_id, images[0].nonce, images[0].ciphertext}, kDeposit, &why) ==
        std::optional<std::string>("FRONT-PHOTO"));
  CHECK(f.vault->open({images[2].key_id, images[2].nonce, images[2].ciphertext}, kDeposit) ==
        std::optional<std::string>("BACK-PHOTO-2"));
  // Moved to another deposit, a photo does not open.
  CHECK_FALSE(f.vault->open({images[0].key_id, images[0].nonce, images[0].ciphertext},
                            kOtherDeposit));

  SECTION("the database holds no photo in clear") {
    CHECK(f.count("SELECT count(*) FROM difficult_images WHERE position('PHOTO'::bytea IN "
                  "ciphertext) > 0") == 0);
    CHECK(f.count("SELECT count(*) FROM difficult_images WHERE octet_length(nonce) = 12") == 3);
  }

  SECTION("a repeated decision keeps the first photos") {
    f.store.recordDecision(f.difficult(kDeposit), kNow + 1h,
                           {f.sealed(kDeposit, "front", 0, "OTHER"),
                            f.sealed(kDeposit, "front", 1, "OTHER-2")});
    const auto again = f.store.difficultImages(kDeposit);
    REQUIRE(again.size() == 3);
    CHECK(f.vault->open({again[0].key_id, again[0].nonce, again[0].ciphertext}, kDeposit) ==
          std::optional<std::string>("FRONT-PHOTO"));
  }

  SECTION("listing shows sizes, not ciphertext") {
    const auto listed = f.store.listDifficultImages(std::nullopt);
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].ciphertext.empty());
    CHECK(listed[0].ciphertext_bytes == std::string("FRONT-PHOTO").size() + ImageVault::kTagBytes);
    CHECK(f.store.listDifficultImages(std::string(kOtherDeposit)).empty());
    CHECK(f.store.listDifficultImages(std::string("not-a-uuid")).empty());
  }
}

TEST_CASE("a store decision keeps no photo") {
  Fixture f;
  pqxx::connection c(f.db.conninfo());
  {
    pqxx::work tx(c);
    tx.exec("INSERT INTO issuers VALUES ('bank', 'Bank')");
    tx.exec("INSERT INTO holders VALUES ('ada', 'Ada', 'http://127.0.0.1:9/ada', 'secret-ada')");
    tx.exec("INSERT INTO cards (issuer_id, holder_id, number_key_id, number_hmac, last4) "
            "VALUES ('bank', 'ada', 'k', decode(repeat('ab', 32), 'hex'), '1234')");
    tx.commit();
  }
  DepositDecision d;
  d.deposit_id = kDeposit;
  d.kiosk_id = "kiosk-1";
  d.store = true;
  d.card_id = f.count("SELECT id FROM cards");
  d.last4 = "1234";
  f.store.recordDecision(d, kNow, {f.sealed(kDeposit, "front", 0, "PHOTO")});
  CHECK(f.count("SELECT count(*) FROM difficult_images") == 0);
}

TEST_CASE("photos are deleted after the retention period, not before") {
  Fixture f;
  f.store.recordDecision(f.difficult(kDeposit), kNow, {f.sealed(kDeposit, "front", 0, "OLD")});
  f.store.recordDecision(f.difficult(kOtherDeposit), kNow + 24h * 10,
                         {f.sealed(kOtherDeposit, "front", 0, "NEWER")});
  const auto retention = std::chrono::hours(24 * 30);

  CHECK(f.store.purgeDifficultImages(kNow + 24h * 30, retention) == 0);
  CHECK(f.store.purgeDifficultImages(kNow + 24h * 30 + 1s, retention) == 1);
  CHECK(f.store.difficultImages(kDeposit).empty());
  CHECK(f.store.difficultImages(kOtherDeposit).size() == 1);
  // The deposit itself stays: only its photos go.
  CHECK(f.count("SELECT count(*) FROM deposits") == 2);

  SECTION("the sweep measures the retention at its injected clock") {
    auto now = kNow + 24h * 39;
    ImageRetentionSweep sweep(f.store, {.retention = retention, .clock = [&] { return now; }});
    CHECK(sweep.sweepOnce() == 0);
    now = kNow + 24h * 41;
    CHECK(sweep.sweepOnce() == 1);
    CHECK(f.count("SELECT count(*) FROM difficult_images") == 0);
  }

  SECTION("the running sweep deletes on start") {
    ImageRetentionSweep sweep(
        f.store, {.retention = retention, .interval = 1h, .clock = [] { return kNow + 24h * 50; }});
    sweep.start();
    CHECK(test::eventually(
        [&] { return f.count("SELECT count(*) FROM difficult_images") == 0; }, 30s));
    sweep.stop();
  }
}

TEST_CASE("lostcard-admin lists, decrypts and purges kept photos") {
  Fixture f;
  const auto recent = std::chrono::system_clock::now() - 24h;
  f.store.recordDecision(f.difficult(kDeposit), recent,
                         {f.sealed(kDeposit, "front", 0, "FRONT-JPEG"),
                          f.sealed(kDeposit, "back", 0, "BACK-JPEG")});
  f.store.recordDecision(f.difficult(kOtherDeposit), kNow,
                         {f.sealed(kOtherDeposit, "front", 0, "ANCIENT")});

  const auto listed = f.admin({"difficult-images", "--deposit", kDeposit});
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].rfind(std::string(kDeposit) + "\tfront\t1\timg-1\t", 0) == 0);
  CHECK(listed[1].find("\tback\t1\timg-1\t") != std::string::npos);
  CHECK(listed[1].find("blacked-out") != std::string::npos);
  CHECK(f.admin({"difficult-images"}).size() == 3);

  const std::string out = f.dir + "/back.jpg";
  const auto wrote = f.admin({"difficult-image", kDeposit, "--face", "back", "--out", out});
  REQUIRE(wrote.size() == 1);
  CHECK(wrote[0].find("back frame 1") != std::string::npos);
  CHECK(test::readFile(out) == "BACK-JPEG");
  struct stat st {};
  REQUIRE(::stat(out.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  f.admin({"difficult-image", kDeposit, "--out", out});
  CHECK(test::readFile(out) == "FRONT-JPEG");
  // Each hand-out of a card's photos is in the audit log.
  CHECK(f.count("SELECT count(*) FROM audit_log WHERE action = 'difficult_images.read' AND "
                "actor_role = 'admin' AND object_ids = ARRAY['" +
                std::string(kDeposit) + "'] AND result = 'ok'") == 2);

  // Errors: no such photo; a key that does not open it.
  CHECK_THROWS_AS(f.admin({"difficult-image", kDeposit, "--face", "back", "--frame", "2",
                           "--out", out}),
                  std::runtime_error);
  std::ofstream(f.key_file) << "img-1 " << std::string(64, 'f') << "\n";
  try {
    f.admin({"difficult-image", kDeposit, "--out", f.dir + "/never.jpg"});
    FAIL("a wrong key decrypted a photo");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("cannot decrypt") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(f.dir + "/never.jpg"));

  CHECK(f.admin({"purge-images"}) ==
        std::vector<std::string>{"purged 1 photo(s) kept longer than 30 days"});
  CHECK(f.store.difficultImages(kOtherDeposit).empty());
  CHECK(f.store.difficultImages(kDeposit).size() == 2);
  CHECK(f.admin({"purge-images", "--retention-days", "0"}) ==
        std::vector<std::string>{"purged 2 photo(s) kept longer than 0 days"});
}
