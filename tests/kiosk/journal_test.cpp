// The journal on a real SQLite file: deposits, images, moves, outbox, and reopening.
#include <catch2/catch.hpp>

#include <filesystem>

#include "lostcard/kiosk/journal.hpp"
#include "lostcard/test/child_process.hpp"
#include "lostcard/wire/envelope.hpp"

using namespace lostcard::kiosk;
namespace v1 = lostcard::v1;

namespace {

std::string freshJournalPath(const std::string& name) {
  return lostcard::test::makeTestDir("journal_test/" + name) + "/journal.sqlite";
}

v1::Envelope capturedEnvelope(const std::string& deposit_id, int frames_per_face) {
  auto env = lostcard::wire::makeEnvelope(1000);
  auto* c = env.mutable_card_captured();
  c->set_deposit_id(deposit_id);
  for (int i = 0; i < frames_per_face; ++i) {
    auto* f = c->add_front();
    f->set_jpeg("front-" + std::to_string(i) + std::string(100, '\xff'));
    f->set_width_px(640);
    f->set_height_px(400);
    f->set_captured_at_ms(1000 + i);
    auto* b = c->add_back();
    b->set_jpeg("back-" + std::to_string(i));
    b->set_width_px(640);
    b->set_height_px(400);
    b->set_captured_at_ms(2000 + i);
  }
  c->mutable_metadata()->set_camera_id("cam0");
  return env;
}

v1::Envelope storedEnvelope(const std::string& deposit_id, int slot) {
  auto env = lostcard::wire::makeEnvelope(3000);
  env.mutable_card_stored()->set_deposit_id(deposit_id);
  env.mutable_card_stored()->mutable_location()->set_slot(static_cast<std::uint32_t>(slot));
  return env;
}

const std::string kA = "aaaaaaaa-0000-4000-8000-000000000001";
const std::string kB = "bbbbbbbb-0000-4000-8000-000000000002";

}  // namespace

TEST_CASE("a new deposit is on the tray with its images and its CardCaptured queued", "[journal]") {
  Journal journal(freshJournalPath("new"));
  const auto env = capturedEnvelope(kA, 2);
  journal.recordCapture(env, 1000);

  auto d = journal.deposit(kA);
  REQUIRE(d);
  CHECK(d->state == DepositState::kAwaiting);
  CHECK(d->location == Location::tray());
  CHECK_FALSE(d->decision);
  CHECK(d->created_at_ms == 1000);
  CHECK(journal.imageCount(kA) == 4);
  CHECK(journal.whereIs(kA) == Location::tray());
  CHECK_FALSE(journal.whereIs(kB));

  // The outbox gives back exactly what was journaled, frames in order.
  auto outbox = journal.unackedOutbox();
  REQUIRE(outbox.size() == 1);
  CHECK(outbox[0].message_id() == env.message_id());
  CHECK(outbox[0].SerializeAsString() == env.SerializeAsString());
}

TEST_CASE("disposition, move and report take a deposit to its slot", "[journal]") {
  Journal journal(freshJournalPath("flow"));
  journal.recordCapture(capturedEnvelope(kA, 1), 1000);

  CHECK(journal.recordDisposition(kA, Decision::store("4242"), 1100));
  CHECK(journal.deposit(kA)->state == DepositState::kDecided);
  // The first decision holds.
  CHECK_FALSE(journal.recordDisposition(kA, Decision::difficult("unreadable"), 1150));
  CHECK(journal.deposit(kA)->decision == Decision::store("4242"));
  CHECK_FALSE(journal.recordDisposition(kB, Decision::store("1"), 1150));

  journal.captureAnswered(kA);
  CHECK(journal.imageCount(kA) == 0);
  CHECK(journal.unackedOutbox().empty());

  journal.beginMove(kA, Location::tray(), Location::inSlot(3), "", 1200);
  auto open = journal.openMoves();
  REQUIRE(open.size() == 1);
  CHECK(open[0].deposit_id == kA);
  CHECK(open[0].from == Location::tray());
  CHECK(open[0].to == Location::inSlot(3));
  CHECK(journal.whereIs(kA) == Location::tray());  // not there until the sensor says so

  journal.finishMove(kA, Location::inSlot(3), 1300);
  CHECK(journal.openMoves().empty());
  CHECK(journal.whereIs(kA) == Location::inSlot(3));
  CHECK(journal.deposit(kA)->state == DepositState::kStored);
  CHECK(journal.occupiedSlots() == std::set<int>{3});
  CHECK(journal.binCount() == 0);

  const auto stored = storedEnvelope(kA, 3);
  CHECK(journal.enqueue(kA, stored, 1300).message_id() == stored.message_id());
  // A second CardStored for the same deposit keeps the first message id.
  CHECK(journal.enqueue(kA, storedEnvelope(kA, 3), 1400).message_id() == stored.message_id());
  REQUIRE(journal.unackedOutbox().size() == 1);
  CHECK(journal.queued(kA, v1::Envelope::kCardStored)->message_id() == stored.message_id());

  CHECK(journal.markAcked(stored.message_id()));
  CHECK_FALSE(journal.markAcked(stored.message_id()));  // already
  CHECK_FALSE(journal.markAcked("no-such-id"));
  CHECK(journal.unackedOutbox().empty());
}

TEST_CASE("the outbox keeps its order and a refusal stops the resending", "[journal]") {
  Journal journal(freshJournalPath("outbox"));
  journal.recordCapture(capturedEnvelope(kA, 1), 1000);
  journal.recordCapture(capturedEnvelope(kB, 1), 1001);
  const auto stored = storedEnvelope(kA, 0);
  journal.enqueue(kA, stored, 1002);

  auto outbox = journal.unackedOutbox();
  REQUIRE(outbox.size() == 3);
  CHECK(outbox[0].card_captured().deposit_id() == kA);
  CHECK(outbox[1].card_captured().deposit_id() == kB);
  CHECK(outbox[2].has_card_stored());

  CHECK(journal.markAcked(stored.message_id(), "deposit unknown"));
  outbox = journal.unackedOutbox();
  REQUIRE(outbox.size() == 2);
  CHECK(outbox[1].card_captured().deposit_id() == kB);
}

TEST_CASE("only the Disposition, or a refusal, answers a CardCaptured", "[journal]") {
  Journal journal(freshJournalPath("captured-ack"));
  const auto a = capturedEnvelope(kA, 1);
  const auto b = capturedEnvelope(kB, 1);
  journal.recordCapture(a, 1000);
  journal.recordCapture(b, 1001);
  REQUIRE(journal.outboxRef(a.message_id()));
  CHECK(journal.outboxRef(a.message_id())->deposit_id == kA);
  CHECK(journal.outboxRef(a.message_id())->type == v1::Envelope::kCardCaptured);
  CHECK_FALSE(journal.outboxRef("no-such-id"));
  CHECK_FALSE(journal.markAcked(a.message_id()));  // received, but not yet decided
  CHECK(journal.unackedOutbox().size() == 2);
  CHECK(journal.markAcked(b.message_id(), "kiosk not enrolled"));
  auto outbox = journal.unackedOutbox();
  REQUIRE(outbox.size() == 1);
  CHECK(outbox[0].message_id() == a.message_id());
  journal.captureAnswered(kA);
  CHECK(journal.unackedOutbox().empty());
}

TEST_CASE("a failed move is a fault at the place the sensors tell", "[journal]") {
  Journal journal(freshJournalPath("fault"));
  journal.recordCapture(capturedEnvelope(kA, 1), 1000);
  journal.recordDisposition(kA, Decision::difficult("unreadable"), 1100);
  journal.beginMove(kA, Location::tray(), Location::bin(), "", 1200);
  journal.failMove(kA, Location::jam(), "carriage stalled", 1300);
  auto d = journal.deposit(kA);
  CHECK(d->state == DepositState::kFault);
  CHECK(d->location == Location::jam());
  CHECK(d->flagged);
  CHECK_THAT(d->reason, Catch::Contains("unreadable") && Catch::Contains("carriage stalled"));
  CHECK(journal.openMoves().empty());
  CHECK(journal.binCount() == 0);
}

TEST_CASE("pending deposits become stored when their decision comes", "[journal]") {
  Journal journal(freshJournalPath("pending"));
  journal.recordCapture(capturedEnvelope(kA, 1), 1000);
  journal.beginMove(kA, Location::tray(), Location::inSlot(0), "offline", 1200);
  journal.finishMove(kA, Location::inSlot(0), 1300);
  CHECK(journal.deposit(kA)->state == DepositState::kPending);
  CHECK(journal.deposits(DepositState::kPending).size() == 1);
  CHECK(journal.imageCount(kA) == 2);  // kept until the cloud has answered

  CHECK(journal.recordDisposition(kA, Decision::difficult("no holder"), 5000));
  auto d = journal.deposit(kA);
  CHECK(d->state == DepositState::kStored);
  CHECK(d->reason == "no holder; offline");
  CHECK(journal.deposits(DepositState::kPending).empty());
}

TEST_CASE("the journal survives closing and reopening", "[journal]") {
  const auto path = freshJournalPath("reopen");
  std::string stored_id;
  {
    Journal journal(path);
    journal.recordCapture(capturedEnvelope(kA, 2), 1000);
    journal.recordDisposition(kA, Decision::store("1234"), 1100);
    journal.captureAnswered(kA);
    journal.beginMove(kA, Location::tray(), Location::inSlot(5), "", 1200);
    journal.finishMove(kA, Location::inSlot(5), 1300);
    stored_id = journal.enqueue(kA, storedEnvelope(kA, 5), 1300).message_id();

    journal.recordCapture(capturedEnvelope(kB, 2), 2000);
    journal.recordDisposition(kB, Decision::difficult("ambiguous"), 2100);
    journal.beginMove(kB, Location::tray(), Location::bin(), "", 2200);
    // ... and the power goes.
  }
  Journal journal(path);
  CHECK(journal.whereIs(kA) == Location::inSlot(5));
  CHECK(journal.occupiedSlots() == std::set<int>{5});
  auto open = journal.openMoves();
  REQUIRE(open.size() == 1);
  CHECK(open[0].deposit_id == kB);
  CHECK(open[0].to == Location::bin());
  auto outbox = journal.unackedOutbox();
  REQUIRE(outbox.size() == 2);
  CHECK(outbox[0].message_id() == stored_id);
  CHECK(outbox[1].card_captured().front_size() == 2);  // images still there for the resend
  CHECK(journal.deposits().size() == 2);

  // Read-only opening for --print-journal sees the same.
  Journal reader(path, Journal::Mode::kReadOnly);
  CHECK(reader.deposits().size() == 2);
  CHECK(reader.deposit(kB)->decision == Decision::difficult("ambiguous"));
}

TEST_CASE("start-up repairs: an interrupted move and a card back on the tray", "[journal]") {
  Journal journal(freshJournalPath("repair"));
  journal.recordCapture(capturedEnvelope(kA, 1), 1000);
  journal.recordDisposition(kA, Decision::store("1"), 1100);
  journal.beginMove(kA, Location::tray(), Location::inSlot(1), "", 1200);
  journal.abandonMove(kA, 1300);
  CHECK(journal.openMoves().empty());
  CHECK(journal.deposit(kA)->state == DepositState::kDecided);
  CHECK(journal.whereIs(kA) == Location::tray());

  journal.beginMove(kA, Location::tray(), Location::inSlot(1), "", 1400);
  journal.failMove(kA, Location::tray(), "refused", 1500);
  CHECK(journal.deposit(kA)->state == DepositState::kFault);
  journal.resume(kA, 1600);
  CHECK(journal.deposit(kA)->state == DepositState::kDecided);
  CHECK(journal.whereIs(kA) == Location::tray());
}

TEST_CASE("a journal that cannot be opened is an error naming the file", "[journal]") {
  CHECK_THROWS_WITH(Journal("/nonexistent-dir/journal.sqlite"),
                    Catch::Contains("/nonexistent-dir/journal.sqlite"));
  CHECK_THROWS_AS(Journal(freshJournalPath("absent"), Journal::Mode::kReadOnly), JournalError);
}

TEST_CASE("a card's photos leave no trace on disk once the cloud has answered", "[journal]") {
  namespace fs = std::filesystem;
  const std::string path = freshJournalPath("photos_erased");
  // A recognisable pattern standing for the photo of a card face.
  const std::string photo = "PHOTO-OF-A-CARD-FACE-" + std::string(3000, 'Q') + "-END";
  auto readAll = [](const fs::path& p) {
    std::string bytes;
    if (fs::exists(p)) {
      bytes.resize(fs::file_size(p));
      std::FILE* f = std::fopen(p.c_str(), "rb");
      bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
      std::fclose(f);
    }
    return bytes;
  };
  auto onDisk = [&] {
    return readAll(path) + readAll(path + "-wal") + readAll(path + "-shm");
  };
  {
    Journal journal(path);
    auto env = capturedEnvelope(kA, 1);
    env.mutable_card_captured()->mutable_front(0)->set_jpeg(photo);
    journal.recordCapture(env, 1000);
    CHECK(onDisk().find(photo) != std::string::npos);  // kept while the card awaits its answer

    journal.captureAnswered(kA);
    CHECK(onDisk().find(photo) == std::string::npos);
  }
  CHECK(onDisk().find(photo) == std::string::npos);
  CHECK((fs::status(path).permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
        fs::perms::none);
}
