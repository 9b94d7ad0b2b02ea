#pragma once
// The operators' endpoints of the people's API (issue 6): the fleet, its alerts, the difficult
// cards to review (with their redacted photos), their manual resolution, and what to take out
// of a box. docs/openapi.yaml describes them; the rules are in authorization.hpp.
//
//   GET  /v1/operator/kiosks                           the caller's kiosks (admins: every one)
//   GET  /v1/operator/alerts                           their alerts (fleet.hpp), and those
//                                                      their kiosks raised (kiosk_alerts)
//   POST /v1/operator/alerts/{id}/ack                  acknowledge a raised one (audited)
//   GET  /v1/operator/kiosks/{id}/collection           what to take out of that box
//   GET  /v1/operator/difficult                        difficult cards of the caller's kiosks
//   GET  /v1/operator/difficult/{deposit}/images/{n}   one redacted photo (image/jpeg)
//   POST /v1/operator/difficult/{deposit}/resolve      {"number"} and/or {"return_to_issuer"}
//
//   OperatorApi ops({.conninfo = db, .card_hasher = &hasher, .image_vault = &vault});
//   ops.addRoutes(router);   // the router of makeApiV1Router
//
// Resolving with a number: the number is checked by the card formats, looked up by its keyed
// hash (never stored, logged or audited; at most its last four), and must name exactly one
// enrolled card; else 422 with the reason and nothing changes. The deposit then names that card
// (decision "store", its former reason kept in resolved_reason), becomes "awaiting_restock" and
// its issuer gets "card.found". The card is in the bin (or already in the operator's hands): the
// collection list tells the operator to put it in a slot of the same box, and the kiosk's
// CardStored for that slot takes the normal path (Store::recordStored: pickup code, notice to
// the holder), so the holder is told only once the card is where the code opens. With
// "return_to_issuer" (alone, or with a number that identifies the card and so its issuer) the
// deposit becomes "to_return" and, when its card is known, the issuer gets
// "card.returned_to_issuer". Numbers typed are limited per operator (resolve_tries within
// resolve_window): each answer tells whether a number is enrolled. Every read of a difficult card,
// photo or collection list, and every resolution (refused ones too), is audited in the transaction
// that does it.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lostcard/cloud/card_formats.hpp"
#include "lostcard/cloud/card_hasher.hpp"
#include "lostcard/cloud/fleet.hpp"
#include "lostcard/cloud/http_api.hpp"
#include "lostcard/cloud/image_vault.hpp"

namespace lostcard::cloud {

struct OperatorApiOptions {
  std::string conninfo;
  int pool_size = 2;
  FleetThresholds thresholds{};
  // Resolving by number needs the card key (503 without); must outlive the OperatorApi.
  const CardHasher* card_hasher = nullptr;
  std::vector<CardFormat> card_formats = defaultCardFormats();
  // Opens the kept photos (503 without); must outlive the OperatorApi.
  const ImageVault* image_vault = nullptr;
  int max_rows = 1000;
  // Resolving by number tells whether a number is enrolled: each operator may type at most
  // resolve_tries numbers within resolve_window (429 with Retry-After beyond; 0: no limit).
  int resolve_tries = 20;
  std::chrono::seconds resolve_window{3600};
};

class OperatorApi {
 public:
  explicit OperatorApi(OperatorApiOptions options);
  ~OperatorApi();
  OperatorApi(const OperatorApi&) = delete;
  OperatorApi& operator=(const OperatorApi&) = delete;

  // Adds the endpoints above; `this` must outlive the router.
  void addRoutes(HttpRouter& router);

  ApiReply fleet(const ApiRequest& request);
  ApiReply alerts(const ApiRequest& request);
  ApiReply acknowledgeAlert(const ApiRequest& request);
  ApiReply collection(const ApiRequest& request);
  ApiReply difficult(const ApiRequest& request);
  ApiReply difficultImage(const ApiRequest& request);
  ApiReply resolve(const ApiRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cloud
