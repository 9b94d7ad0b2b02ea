#include "lostcard/cloud/deposit_service.hpp"

#include <algorithm>

#include "lostcard/cloud/card_import.hpp"
#include "lostcard/cloud/image_redaction.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {

namespace {
std::shared_ptr<spdlog::logger> log() {
  static auto logger = wire::componentLogger("cloud.deposits");
  return logger;
}
}  // namespace

DepositService::DepositService(Store& store, const CardHasher& hasher,
                               RecognizerOptions recognizer_options, DecisionPolicy policy,
                               const ImageVault* image_vault)
    : store_(store),
      hasher_(hasher),
      recognizer_options_(std::move(recognizer_options)),
      policy_(policy),
      image_vault_(image_vault),
      card_formats_(loadCardFormats(recognizer_options_.models_dir)) {}

std::variant<KioskRecord, Refusal> DepositService::admitKiosk(const v1::Hello& hello,
                                                              const std::string& certificate_cn) {
  if (hello.kiosk_id().empty()) {
    return Refusal{"Hello without a kiosk id"};
  }
  if (hello.kiosk_id() != certificate_cn) {
    return Refusal{"kiosk id '" + hello.kiosk_id() + "' does not match its certificate ('" +
                   certificate_cn + "')"};
  }
  auto kiosk = store_.findKiosk(hello.kiosk_id());
  if (!kiosk) {
    return Refusal{"kiosk '" + hello.kiosk_id() + "' is not enrolled"};
  }
  return *kiosk;
}

v1::Disposition toDisposition(const DepositDecision& decision) {
  v1::Disposition d;
  d.set_deposit_id(decision.deposit_id);
  if (decision.store) {
    d.mutable_store()->set_last4(decision.last4);
  } else {
    d.mutable_difficult()->set_reason(decision.reason);
    d.mutable_difficult()->set_detail(decision.detail);
  }
  return d;
}

std::variant<v1::Disposition, Refusal> DepositService::handleCaptured(
    const std::string& kiosk_id, const v1::CardCaptured& captured,
    std::chrono::system_clock::time_point now) {
  const std::string& deposit_id = captured.deposit_id();
  if (!wire::isUuid(deposit_id)) {
    return Refusal{"deposit id is not a UUID"};
  }
  if (auto recorded = store_.findDecision(deposit_id)) {
    if (recorded->kiosk_id != kiosk_id) {
      return Refusal{"deposit " + deposit_id + " belongs to another kiosk"};
    }
    log()->info("deposit {} from {} seen again: {}", deposit_id, kiosk_id,
                describeDecision(*recorded));
    return toDisposition(*recorded);
  }

  if (captured.front_size() > policy_.max_frames_per_face ||
      captured.back_size() > policy_.max_frames_per_face) {
    // Refused before any decoding: each frame costs a full decode and recognition.
    CardReading too_many;
    too_many.outcome = ReadOutcome::kBadImage;
    too_many.detail = std::to_string(captured.front_size()) + " front and " +
                      std::to_string(captured.back_size()) + " back frames (at most " +
                      std::to_string(policy_.max_frames_per_face) + " per face)";
    return decideAndRecord(kiosk_id, captured, too_many, now);
  }

  CardImages images;
  for (const auto& frame : captured.front()) {
    images.front_jpegs.push_back(frame.jpeg());
  }
  for (const auto& frame : captured.back()) {
    images.back_jpegs.push_back(frame.jpeg());
  }
  CardReading reading;
  try {
    auto recognizer = borrowRecognizer();
    reading = recognizer->read(images);
    returnRecognizer(std::move(recognizer));
  } catch (const std::exception& e) {
    // A card that breaks the recognizer is a difficult card, decided once: throwing here would
    // make the kiosk resend the same images forever.
    log()->error("deposit {} from {}: recognition failed: {}", deposit_id, kiosk_id, e.what());
    reading = CardReading{};
    reading.outcome = ReadOutcome::kUnreadable;
    reading.detail = std::string("recognition failed: ") + e.what();
  }
  return decideAndRecord(kiosk_id, captured, reading, now);
}

std::variant<v1::Disposition, Refusal> DepositService::decideAndRecord(
    const std::string& kiosk_id, const v1::CardCaptured& captured, CardReading& reading,
    std::chrono::system_clock::time_point now) {
  const std::string& deposit_id = captured.deposit_id();
  std::vector<CardOwner> owners;
  if (reading.outcome == ReadOutcome::kRead && !reading.number.empty()) {
    owners = store_.findCardsByHash(hasher_.keyId(), hasher_.hash(reading.number));
  }
  const auto decision = decideDeposit(deposit_id, kiosk_id, reading, owners, policy_);

  const auto recorded = store_.recordDecision(
      decision, now,
      decision.store ? std::vector<DifficultImage>{} : sealDifficultImages(captured, reading));
  if (recorded.kiosk_id != kiosk_id) {
    return Refusal{"deposit " + deposit_id + " belongs to another kiosk"};
  }
  log()->info("deposit {} from {}: {} (confidence {:.2f}, {} front / {} back frames)",
              deposit_id, kiosk_id, describeDecision(recorded), reading.confidence,
              captured.front_size(), captured.back_size());
  return toDisposition(recorded);
}

std::optional<Refusal> DepositService::handleStored(const std::string& kiosk_id,
                                                    const v1::CardStored& stored,
                                                    std::chrono::system_clock::time_point now) {
  if (stored.location().place_case() == v1::Location::PLACE_NOT_SET) {
    return Refusal{"CardStored without a location"};
  }
  auto result = store_.recordStored(kiosk_id, stored.deposit_id(), stored.location(), now);
  if (!result.ok) {
    return Refusal{result.error};
  }
  const std::string where = stored.location().has_bin()
                                ? std::string("the bin")
                                : "slot " + std::to_string(stored.location().slot());
  log()->info("deposit {} stored in {} of {}{}", stored.deposit_id(), where, kiosk_id,
              result.notice_queued ? "; notice queued" : "");
  return std::nullopt;
}

void DepositService::handleHeartbeat(const std::string& kiosk_id, const v1::Heartbeat& heartbeat,
                                     std::chrono::system_clock::time_point now) {
  try {
    store_.recordHeartbeat(kiosk_id, heartbeat, now);
  } catch (const std::exception& e) {
    // Fill levels are refreshed by the next heartbeat; losing one is not worth the session.
    log()->warn("kiosk {}: heartbeat not recorded: {}", kiosk_id, e.what());
  }
}

std::variant<v1::PickupAnswer, Refusal> DepositService::handlePickup(
    const std::string& kiosk_id, const v1::PickupRequest& request,
    std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(request.request_id())) {
    return Refusal{"pickup request id is not a UUID"};
  }
  PickupAttempt attempt;
  attempt.kiosk_id = kiosk_id;
  attempt.request_id = request.request_id();
  attempt.slot = request.slot();
  attempt.typed_code = request.code();
  const PickupOutcome outcome = store_.redeemPickupCode(attempt, now);
  v1::PickupAnswer answer;
  answer.set_request_id(request.request_id());
  answer.set_result(outcome.verdict.result);
  if (outcome.verdict.result == v1::PICKUP_RESULT_OPEN) {
    answer.set_deposit_id(outcome.deposit_id);
    answer.set_slot(outcome.slot);
  }
  answer.set_tries_left(static_cast<std::uint32_t>(std::max(0, outcome.verdict.tries_left)));
  answer.set_retry_after_ms(outcome.verdict.retry_after.count());
  answer.set_message(pickupMessage(outcome.verdict));
  return answer;
}

namespace {

std::optional<Refusal> refusalOf(const ReportResult& result) {
  if (!result.ok) {
    return Refusal{result.error};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Refusal> DepositService::handlePickupDone(const std::string& kiosk_id,
                                                        const v1::PickupDone& done,
                                                        std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(done.request_id()) || !wire::isUuid(done.deposit_id())) {
    return Refusal{"pickup report: request or deposit id is not a UUID"};
  }
  PickupReport report;
  report.kiosk_id = kiosk_id;
  report.request_id = done.request_id();
  report.deposit_id = done.deposit_id();
  report.outcome = done.outcome();
  report.detail = done.detail();
  const ReportResult result = store_.recordPickupDone(report, now);
  if (!result.ok) {
    return Refusal{result.error};
  }
  return std::nullopt;
}

std::variant<v1::OperatorAuthAnswer, Refusal> DepositService::handleOperatorAuth(
    const std::string& kiosk_id, const v1::OperatorAuthRequest& request,
    std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(request.request_id())) {
    return Refusal{"operator request id is not a UUID"};
  }
  const OperatorAuthOutcome outcome =
      store_.checkOperatorCode(kiosk_id, request.request_id(), request.code(), now);
  v1::OperatorAuthAnswer answer;
  answer.set_request_id(request.request_id());
  answer.set_result(outcome.result);
  answer.set_retry_after_ms(outcome.retry_after_ms);
  switch (outcome.result) {
    case v1::OPERATOR_AUTH_RESULT_OK:
      answer.set_message("Bin unlocked.");
      store_.fillOperatorSession(kiosk_id, answer);
      break;
    case v1::OPERATOR_AUTH_RESULT_THROTTLED:
      answer.set_message("Too many wrong operator codes at this box. Try again later.");
      break;
    default:
      answer.set_message("Operator code refused.");
      break;
  }
  return answer;
}

std::variant<v1::RestockCheckAnswer, Refusal> DepositService::handleRestockCheck(
    const std::string& kiosk_id, const v1::RestockCheck& check,
    std::chrono::system_clock::time_point now) {
  if (!wire::isUuid(check.request_id()) || !wire::isUuid(check.deposit_id())) {
    return Refusal{"restock check: request or deposit id is not a UUID"};
  }
  RestockCheckAttempt attempt;
  attempt.kiosk_id = kiosk_id;
  attempt.request_id = check.request_id();
  attempt.deposit_id = check.deposit_id();
  attempt.key_id = hasher_.keyId();
  {
    // The manual resolution's check (operator_api.hpp): the card formats, then the keyed hash.
    std::string number = check.number();
    std::string digits, last4, code, reason;
    const Cleanse cleanse_number{number};
    const Cleanse cleanse_digits{digits};
    if (checkCardNumber(card_formats_, number, &digits, &last4, &code, &reason)) {
      attempt.number_hmac = hasher_.hash(digits);
    }
  }
  const RestockCheckOutcome outcome = store_.checkRestockCard(attempt, now);
  v1::RestockCheckAnswer answer;
  answer.set_request_id(check.request_id());
  answer.set_result(outcome.result);
  answer.set_retry_after_ms(outcome.retry_after_ms);
  switch (outcome.result) {
    case v1::RESTOCK_CHECK_RESULT_OK:
      answer.set_message("Card checked: put it in the intake.");
      break;
    case v1::RESTOCK_CHECK_RESULT_NOT_WAITING:
      answer.set_message("This card does not wait to be put back at this box.");
      break;
    case v1::RESTOCK_CHECK_RESULT_THROTTLED:
      answer.set_message("Too many wrong card numbers at this box. Try again later.");
      break;
    default:
      answer.set_message("The number is not this card's: check its label and number.");
      break;
  }
  return answer;
}

std::optional<Refusal> DepositService::handleBinEmptied(const std::string& kiosk_id,
                                                        const v1::BinEmptied& emptied,
                                                        std::chrono::system_clock::time_point now) {
  const std::vector<std::string> ids(emptied.deposit_ids().begin(), emptied.deposit_ids().end());
  return refusalOf(store_.recordBinEmptied(kiosk_id, emptied.request_id(), ids, now));
}

std::optional<Refusal> DepositService::handleReturnCollected(
    const std::string& kiosk_id, const v1::ReturnCollected& collected,
    std::chrono::system_clock::time_point now) {
  const std::vector<std::string> ids(collected.deposit_ids().begin(),
                                     collected.deposit_ids().end());
  return refusalOf(store_.recordReturnCollected(kiosk_id, collected.request_id(), ids, now));
}

std::optional<Refusal> DepositService::handleInventory(const std::string& kiosk_id,
                                                       const v1::Inventory& inventory,
                                                       std::chrono::system_clock::time_point now) {
  Reconciliation r;
  try {
    if (!store_.recordInventory(kiosk_id, inventory, now)) {
      log()->info("kiosk {}: inventory (journal seq {}) older than the one kept; ignored", kiosk_id,
                  inventory.journal_seq());
      return std::nullopt;
    }
    r = store_.reconcile(kiosk_id);
  } catch (const std::invalid_argument& e) {
    return Refusal{e.what()};
  } catch (const std::exception& e) {
    // Not durable: the kiosk sends a fresh one after its next change or reconnect.
    log()->warn("kiosk {}: inventory not recorded: {}", kiosk_id, e.what());
    return Refusal{std::string("inventory not recorded: ") + e.what()};
  }
  if (r.stale) {
    log()->info("kiosk {}: inventory (journal seq {}) predates the cloud's records; not compared",
                kiosk_id, r.journal_seq);
    return std::nullopt;
  }
  for (const auto& row : r.rows) {
    if (isDisagreement(row.verdict)) {
      log()->warn("kiosk {} disagrees about deposit {} ({}): kiosk {}, cloud {}; {}", kiosk_id,
                  row.deposit_id, verdictName(row.verdict), row.kiosk_view, row.cloud_view,
                  row.note);
    }
  }
  log()->debug("kiosk {}: inventory (journal seq {}): {} slots used, {} in bin, {} disagreements",
               kiosk_id, r.journal_seq, r.slots_used, r.bin_count, r.disagreements);
  return std::nullopt;
}

std::vector<DifficultImage> DepositService::sealDifficultImages(const v1::CardCaptured& captured,
                                                                const CardReading& reading) {
  const std::string& deposit_id = captured.deposit_id();
  if (image_vault_ == nullptr || captured.front_size() > policy_.max_frames_per_face ||
      captured.back_size() > policy_.max_frames_per_face) {
    return {};
  }
  CardImages images;
  for (const auto& frame : captured.front()) {
    images.front_jpegs.push_back(frame.jpeg());
  }
  for (const auto& frame : captured.back()) {
    images.back_jpegs.push_back(frame.jpeg());
  }
  std::vector<DifficultImage> sealed;
  try {
    const auto number_face = numberFaceOf(reading);
    const RedactedCard redacted =
        redactForKeeping(images, number_face, recognizer_options_.limits);
    for (const auto& frame : redacted.frames) {
      SealedImage s = image_vault_->seal(frame.jpeg, deposit_id);
      DifficultImage image;
      image.deposit_id = deposit_id;
      image.face = faceName(frame.face);
      image.frame = frame.index;
      image.straightened = frame.straightened;
      image.blacked_out = frame.blacked_out;
      image.key_id = std::move(s.key_id);
      image.nonce = std::move(s.nonce);
      image.ciphertext = std::move(s.ciphertext);
      image.ciphertext_bytes = image.ciphertext.size();
      sealed.push_back(std::move(image));
    }
    for (const auto& skipped : redacted.not_kept) {
      log()->info("deposit {}: {} frame {} not kept: {}", deposit_id, faceName(skipped.face),
                  skipped.index + 1, skipped.why);
    }
    log()->info("deposit {}: keeping {} photo(s) sealed with image key {} (signature band blacked "
                "out on {})",
                deposit_id, sealed.size(), image_vault_->keyId(),
                !number_face ? "every face"
                             : std::string("the ") +
                                   faceName(*number_face == CardFace::kFront ? CardFace::kBack
                                                                             : CardFace::kFront));
  } catch (const std::exception& e) {
    // The decision matters more than its photos: it is recorded without them.
    log()->error("deposit {}: photos not kept: {}", deposit_id, e.what());
    sealed.clear();
  }
  return sealed;
}

std::unique_ptr<Recognizer> DepositService::borrowRecognizer() {
  {
    std::lock_guard lock(recognizers_mutex_);
    if (!idle_recognizers_.empty()) {
      auto r = std::move(idle_recognizers_.back());
      idle_recognizers_.pop_back();
      return r;
    }
  }
  return std::make_unique<Recognizer>(recognizer_options_);
}

void DepositService::returnRecognizer(std::unique_ptr<Recognizer> recognizer) {
  std::lock_guard lock(recognizers_mutex_);
  idle_recognizers_.push_back(std::move(recognizer));
}

}  // namespace lostcard::cloud
