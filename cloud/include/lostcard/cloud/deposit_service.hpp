#pragma once
// What the cloud does with each kiosk message, as blocking calls that a kiosk session runs on
// the worker pool: recognition (Tesseract, CPU-bound) and the database (libpqxx, synchronous).
// Thread-safe; holds no per-kiosk state, so any number of sessions share one DepositService.
//
//   DepositService service(store, hasher, recognizer_options, policy);
//   auto admitted = service.admitKiosk(hello, certificate_cn);
//   v1::Disposition d = service.handleCaptured(kiosk_id, captured, now);
//
// With an ImageVault, a card decided difficult keeps its photos, redacted and sealed
// (image_redaction.hpp, image_vault.hpp), in the transaction that records the decision. Without
// one, no photo is kept. Every other photo is dropped once recognized.
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/decision.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/recognition.hpp"
#include "lostcard/cloud/store.hpp"
#include "lostcard/v1/kiosk_stream.pb.h"

namespace lostcard::cloud {

// A message this kiosk may not send; the session answers with an Ack carrying the reason.
struct Refusal {
  std::string reason;
};

class DepositService {
 public:
  // `image_vault` (may be null: no photos kept) must outlive the service.
  DepositService(Store& store, const CardHasher& hasher, RecognizerOptions recognizer_options,
                 DecisionPolicy policy, const ImageVault* image_vault = nullptr);

  // The kiosk record for a Hello, or why the kiosk is refused: the claimed id must match the
  // client certificate's common name and be an enrolled kiosk.
  std::variant<KioskRecord, Refusal> admitKiosk(const v1::Hello& hello,
                                                const std::string& certificate_cn);

  // Recognizes the card and decides where it goes. A repeated deposit id gets the recorded
  // decision again without a second recognition.
  std::variant<v1::Disposition, Refusal> handleCaptured(const std::string& kiosk_id,
                                                        const v1::CardCaptured& captured,
                                                        std::chrono::system_clock::time_point now);

  // Records where the card physically is; queues the holder's notice when it is stored.
  std::optional<Refusal> handleStored(const std::string& kiosk_id, const v1::CardStored& stored,
                                      std::chrono::system_clock::time_point now);

  void handleHeartbeat(const std::string& kiosk_id, const v1::Heartbeat& heartbeat,
                       std::chrono::system_clock::time_point now);

  // A holder typed a code at the kiosk: checks it under every pickup rule (Store::
  // redeemPickupCode) and answers; the deposit id and slot only when the slot is to open.
  // Refused: a request id that is not a UUID.
  std::variant<v1::PickupAnswer, Refusal> handlePickup(const std::string& kiosk_id,
                                                       const v1::PickupRequest& request,
                                                       std::chrono::system_clock::time_point now);

  // What became of an OPEN pickup answer (Store::recordPickupDone). Refused: a request id that
  // is not a UUID, no OPEN answer for it at this kiosk, no outcome.
  std::optional<Refusal> handlePickupDone(const std::string& kiosk_id, const v1::PickupDone& done,
                                          std::chrono::system_clock::time_point now);

  // An operator's code typed at the kiosk (Store::checkOperatorCode); an OK answer carries the
  // session's return slots and cards to restock (Store::fillOperatorSession). Refused: a request
  // id that is not a UUID.
  std::variant<v1::OperatorAuthAnswer, Refusal> handleOperatorAuth(
      const std::string& kiosk_id, const v1::OperatorAuthRequest& request,
      std::chrono::system_clock::time_point now);

  // The number an operator typed at the kiosk for a card to restock: checked by the card formats
  // (as the manual resolution does), hashed with the card key and compared with the deposit's
  // card (Store::checkRestockCard); the number is wiped from memory once hashed and never logged.
  // Refused: a request or deposit id that is not a UUID.
  std::variant<v1::RestockCheckAnswer, Refusal> handleRestockCheck(
      const std::string& kiosk_id, const v1::RestockCheck& check,
      std::chrono::system_clock::time_point now);

  // The bin's cards left with the operator (Store::recordBinEmptied).
  std::optional<Refusal> handleBinEmptied(const std::string& kiosk_id,
                                          const v1::BinEmptied& emptied,
                                          std::chrono::system_clock::time_point now);

  // Cards taken from the slots opened for an operator's returns (Store::recordReturnCollected).
  std::optional<Refusal> handleReturnCollected(const std::string& kiosk_id,
                                               const v1::ReturnCollected& collected,
                                               std::chrono::system_clock::time_point now);

  // Keeps the kiosk's latest Inventory and reconciles it with the deposits, logging a warning
  // per disagreement (ids and places only). Refused: a deposit id that is not a UUID, or a
  // database failure (the kiosk sends a fresh inventory after its next change or reconnect).
  std::optional<Refusal> handleInventory(const std::string& kiosk_id,
                                         const v1::Inventory& inventory,
                                         std::chrono::system_clock::time_point now);

 private:
  // Looks the read number up, decides and records the decision (first decision wins).
  std::variant<v1::Disposition, Refusal> decideAndRecord(const std::string& kiosk_id,
                                                         const v1::CardCaptured& captured,
                                                         CardReading& reading,
                                                         std::chrono::system_clock::time_point now);

  // The photos a difficult card keeps (none without a vault, or when its frames were refused
  // unread), redacted and sealed.
  std::vector<DifficultImage> sealDifficultImages(const v1::CardCaptured& captured,
                                                  const CardReading& reading);

  // One Recognizer per concurrent caller: a Tesseract engine is not thread-safe.
  std::unique_ptr<Recognizer> borrowRecognizer();
  void returnRecognizer(std::unique_ptr<Recognizer> recognizer);

  Store& store_;
  const CardHasher& hasher_;
  RecognizerOptions recognizer_options_;
  DecisionPolicy policy_;
  const ImageVault* image_vault_;
  // For the numbers typed at the box (the recognizer's formats: RecognizerOptions::models_dir).
  std::vector<CardFormat> card_formats_;
  std::mutex recognizers_mutex_;
  std::vector<std::unique_ptr<Recognizer>> idle_recognizers_;
};

v1::Disposition toDisposition(const DepositDecision& decision);

}  // namespace lostcard::cloud
