#pragma once
// Proof from an issuer that a card is a holder's, for a holder who adds a card themselves
// (POST /v1/holder/cards): the issuer computes
//
//   proof = hex(HMAC-SHA256(issuer_proof_key, "<holder id>\n<digits of the number>"))
//
// and gives it to its cardholder (in its app, on a letter, ...), who sends it with the number.
// The issuer's proof key is derived from the cloud's card key and the issuer id (HMAC-SHA256
// chains, as the notice key is: delivery.hpp), so the cloud stores no key of its own for it;
// `lostcard-admin issuer-proof-key ISSUER_ID` prints it (64 hex digits) for the issuer to keep.
// A proof binds the number to one holder id at one issuer: it cannot enroll the card to anyone
// else, or for another issuer. Pure: no I/O.
//
//   const auto key = issuerProofKey(hasher, "northwind");
//   const auto proof = cardProof(key, "ada", "4000056655665556");      // the issuer's side
//   bool ok = checkCardProof(hasher, "northwind", "ada", "4000056655665556", proof);  // ours
#include <string>
#include <string_view>

#include "lostcard/cloud/card_hasher.hpp"

namespace lostcard::cloud {

// 32 raw bytes. Changes when the card key does (the issuer then needs the new one).
std::string issuerProofKey(const CardHasher& hasher, std::string_view issuer_id);
// 64 lowercase hex digits; `digits` as cardDigits() returns them.
std::string cardProof(std::string_view issuer_proof_key, std::string_view holder_id,
                      std::string_view digits);
// Whether `proof` (hex, either case) is the issuer's proof for this holder and number; compared
// in constant time.
bool checkCardProof(const CardHasher& hasher, std::string_view issuer_id,
                    std::string_view holder_id, std::string_view digits, std::string_view proof);

}  // namespace lostcard::cloud
