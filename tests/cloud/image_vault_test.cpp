// The sealing of difficult cards' photos: AES-256-GCM round trip, tampering and a wrong deposit
// refused, key rotation, key files.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/test/child_process.hpp"

using lostcard::cloud::ImageVault;
using lostcard::cloud::SealedImage;

namespace {

constexpr const char* kDeposit = "3f2b8c1e-5a6d-4e7f-8a9b-0c1d2e3f4a5b";
constexpr const char* kOtherDeposit = "3f2b8c1e-5a6d-4e7f-8a9b-0c1d2e3f4a5c";

ImageVault::Key key(const std::string& id, char fill) {
  return {id, std::string(ImageVault::kKeyBytes, fill)};
}

std::string somePhoto() {
  std::string photo = "\xff\xd8\xff\xe0 pretend JPEG ";
  for (int i = 0; i < 5000; ++i) {
    photo.push_back(static_cast<char>(i * 7 % 251));
  }
  return photo;
}

std::string writeFile(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::path(lostcard::test::makeTestDir("image_vault_test")) / name;
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace

TEST_CASE("a sealed image opens with the same key and deposit, and only then") {
  const ImageVault vault({key("img-1", 'k')});
  const std::string photo = somePhoto();
  const SealedImage sealed = vault.seal(photo, kDeposit);

  CHECK(sealed.key_id == "img-1");
  CHECK(sealed.nonce.size() == ImageVault::kNonceBytes);
  CHECK(sealed.ciphertext.size() == photo.size() + ImageVault::kTagBytes);
  CHECK(sealed.ciphertext.find("pretend JPEG") == std::string::npos);

  std::string why;
  const auto opened = vault.open(sealed, kDeposit, &why);
  REQUIRE(opened);
  CHECK(*opened == photo);

  SECTION("a changed ciphertext byte, tag byte or nonce fails") {
    for (const std::size_t at : {std::size_t{0}, photo.size() / 2, sealed.ciphertext.size() - 1}) {
      SealedImage tampered = sealed;
      tampered.ciphertext[at] = static_cast<char>(tampered.ciphertext[at] ^ 0x01);
      CHECK_FALSE(vault.open(tampered, kDeposit, &why));
      CHECK(why.find("does not authenticate") != std::string::npos);
    }
    SealedImage other_nonce = sealed;
    other_nonce.nonce[3] = static_cast<char>(other_nonce.nonce[3] ^ 0x80);
    CHECK_FALSE(vault.open(other_nonce, kDeposit));
    SealedImage cut = sealed;
    cut.ciphertext.resize(cut.ciphertext.size() - 1);
    CHECK_FALSE(vault.open(cut, kDeposit));
    SealedImage short_nonce = sealed;
    short_nonce.nonce.pop_back();
    CHECK_FALSE(vault.open(short_nonce, kDeposit, &why));
    CHECK(why.find("nonce") != std::string::npos);
  }

  SECTION("another deposit's id as associated data fails") {
    CHECK_FALSE(vault.open(sealed, kOtherDeposit, &why));
    CHECK_FALSE(vault.open(sealed, "", &why));
  }

  SECTION("another key of the same id fails; an unknown key id is named") {
    const ImageVault impostor({key("img-1", 'x')});
    CHECK_FALSE(impostor.open(sealed, kDeposit));
    const ImageVault stranger({key("img-9", 'k')});
    CHECK_FALSE(stranger.open(sealed, kDeposit, &why));
    CHECK(why.find("img-1") != std::string::npos);
  }
}

TEST_CASE("every seal uses a fresh nonce") {
  const ImageVault vault({key("img-1", 'k')});
  const SealedImage a = vault.seal("same photo", kDeposit);
  const SealedImage b = vault.seal("same photo", kDeposit);
  CHECK(a.nonce != b.nonce);
  CHECK(a.ciphertext != b.ciphertext);
}

TEST_CASE("an empty image round-trips") {
  const ImageVault vault({key("img-1", 'k')});
  const SealedImage sealed = vault.seal("", kDeposit);
  CHECK(sealed.ciphertext.size() == ImageVault::kTagBytes);
  const auto opened = vault.open(sealed, kDeposit);
  REQUIRE(opened);
  CHECK(opened->empty());
}

TEST_CASE("keys rotate: the first key seals, older keys still open what they sealed") {
  const ImageVault old_vault({key("img-1", 'a')});
  const SealedImage old_image = old_vault.seal("old photo", kDeposit);

  const ImageVault rotated({key("img-2", 'b'), key("img-1", 'a')});
  CHECK(rotated.keyId() == "img-2");
  const SealedImage new_image = rotated.seal("new photo", kDeposit);
  CHECK(new_image.key_id == "img-2");
  CHECK(rotated.open(old_image, kDeposit) == std::optional<std::string>("old photo"));
  CHECK(rotated.open(new_image, kDeposit) == std::optional<std::string>("new photo"));
  // Retired: once its line is gone, what it sealed stays sealed.
  const ImageVault retired({key("img-2", 'b')});
  CHECK_FALSE(retired.open(old_image, kDeposit));
}

TEST_CASE("bad keys are refused") {
  CHECK_THROWS_AS(ImageVault({}), std::invalid_argument);
  CHECK_THROWS_AS(ImageVault({{"img-1", std::string(16, 'k')}}), std::invalid_argument);
  CHECK_THROWS_AS(ImageVault({key("", 'k')}), std::invalid_argument);
  CHECK_THROWS_AS(ImageVault({key("img 1", 'k')}), std::invalid_argument);
  CHECK_THROWS_AS(ImageVault({key("img-1", 'a'), key("img-1", 'b')}), std::invalid_argument);
}

TEST_CASE("key files hold one '<id> <64 hex>' line per key; errors name the line, not the key") {
  const std::string hex_a(64, 'a');
  const std::string hex_b(64, 'b');
  const auto path =
      writeFile("image.key", "# image keys, newest first\n\nimg-2 " + hex_b + "\nimg-1\t" +
                                 hex_a + "\n");
  const ImageVault vault = ImageVault::fromFile(path);
  CHECK(vault.keyId() == "img-2");
  const ImageVault only_old({{"img-1", std::string(32, '\xaa')}});
  CHECK(vault.open(only_old.seal("photo", kDeposit), kDeposit) ==
        std::optional<std::string>("photo"));

  const std::string bad_hex = std::string(63, 'a') + "g";
  const auto bad = writeFile("bad.key", "img-1 " + hex_a + "\nimg-2 " + bad_hex + "\n");
  try {
    ImageVault::fromFile(bad);
    FAIL("a bad key line was accepted");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find(bad + ":2") != std::string::npos);
    CHECK(what.find(bad_hex) == std::string::npos);
  }
  CHECK_THROWS_AS(ImageVault::fromFile(writeFile("short.key", "img-1 abcd\n")),
                  std::invalid_argument);
  CHECK_THROWS_AS(ImageVault::fromFile(writeFile("empty.key", "# nothing\n")),
                  std::invalid_argument);
  CHECK_THROWS_AS(ImageVault::fromFile("/nonexistent/image.key"), std::runtime_error);
}

TEST_CASE("the key may come from $LOSTCARD_IMAGE_KEY as '<id>:<hex>'") {
  ::setenv(ImageVault::kEnvVar, ("env-1:" + std::string(64, 'c')).c_str(), 1);
  CHECK(ImageVault::envIsSet());
  CHECK(ImageVault::fromEnv().keyId() == "env-1");
  ::setenv(ImageVault::kEnvVar, "env-1 no-colon", 1);
  CHECK_THROWS_AS(ImageVault::fromEnv(), std::invalid_argument);
  ::unsetenv(ImageVault::kEnvVar);
  CHECK_FALSE(ImageVault::envIsSet());
  CHECK_THROWS_AS(ImageVault::fromEnv(), std::invalid_argument);
}
