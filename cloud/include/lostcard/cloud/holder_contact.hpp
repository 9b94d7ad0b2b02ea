#pragma once
// Holders who sign up themselves, and the verification of their contact channel (the webhook
// their systems receive notices on). The endpoints, added by addHolderRoutes when the HolderApi
// has a HolderContacts:
//
//   POST /v1/holder/signup          (no token) {login, password, display_name, webhook_url}
//                                   -> 201 {holder_id, login, webhook_secret (shown once), contact}
//   GET  /v1/holder/contact         the caller's webhook URL, verified or not (never the secret)
//   PUT  /v1/holder/contact         {webhook_url}: a new URL, unverified until its code is typed
//   POST /v1/holder/contact/verify  {code}: the code the webhook received
//   POST /v1/holder/contact/resend  another code (the last one no longer works)
//
//   HolderContacts contacts({.conninfo = db, .notice_vault = &vault});
//   HolderApi holder{data, streams, &contacts};
//
// A sign-up creates, in ONE transaction, the holder (contact unverified), its holder account
// (Argon2id, password_hash.hpp's rules) and the first code. A code is a pickup-style code
// (pickup_code.hpp: 10 random digits, only a salted PBKDF2 hash kept) with an expiry (code_ttl)
// and a number of tries (code_tries); a new one replaces the last. It travels to the webhook as
// a signed v1.ContactVerification through contact_outbox, sealed with the notice key, sent by
// the notice delivery worker (delivery.hpp) and wiped once sent. Until the contact is verified
// the holder's notices are held in the outbox (delivery.hpp); the inbox and its stream show them.
//
// Limits against abuse (429 with Retry-After): sign-ups per client address per hour (every
// attempt counts, refused ones too, so taken logins cannot be probed without end) and sign-ups
// made per hour overall, both counted in the audit log ("holder.signup", actor "anonymous" with
// the client's address); codes sent per holder per hour (sign-up, resend, change of URL). Every
// call is audited; never a password, a secret or a code.
#include <chrono>
#include <memory>
#include <string>

#include "lostcard/cloud/card_data.hpp"
#include "lostcard/cloud/image_vault.hpp"
#include "lostcard/cloud/pickup_code.hpp"
#include "lostcard/v1/api.pb.h"

namespace lostcard::cloud {

struct HolderContactOptions {
  std::string conninfo;
  int pool_size = 2;
  // Seals the codes' messages (delivery.hpp: loadNoticeVault); must outlive the HolderContacts.
  // Null: processNoticeVault().
  const ImageVault* notice_vault = nullptr;
  int signups_per_ip_per_hour = 5;
  int signups_per_hour = 100;
  std::chrono::minutes code_ttl{30};
  int code_tries = 5;
  int codes_per_hour = 5;  // codes sent to one holder per hour
  // http:// webhooks too (a demo or a test on one machine); https only otherwise.
  bool allow_http_webhooks = false;
  int code_hash_iterations = kPickupCodeIterations;
};

class HolderContacts {
 public:
  explicit HolderContacts(HolderContactOptions options);
  ~HolderContacts();
  HolderContacts(const HolderContacts&) = delete;
  HolderContacts& operator=(const HolderContacts&) = delete;

  // `client` is the caller's address ("address:port" or the address alone). Refusals: 400 (a
  // field missing), 422 (a field that breaks its rules), 409 (the login is taken), 429 (a limit).
  CardDataRead<v1::SignupResponse> signUp(const v1::SignupRequest& request,
                                          const std::string& client,
                                          std::chrono::system_clock::time_point now);
  CardDataRead<v1::HolderContact> contact(const Principal& who,
                                          std::chrono::system_clock::time_point now);
  // Refusals: 400 (not 10 digits, or the wrong code: one try fewer), 409 (already verified),
  // 410 (no code waiting: used, expired or out of tries; ask for another).
  CardDataRead<v1::HolderContact> verify(const Principal& who,
                                         const v1::ContactVerifyRequest& request,
                                         std::chrono::system_clock::time_point now);
  // Refusals: 409 (already verified), 429 (codes_per_hour).
  CardDataRead<v1::HolderContact> resend(const Principal& who,
                                         std::chrono::system_clock::time_point now);
  // Refusals: 400/422 (the URL), 429 (codes_per_hour).
  CardDataRead<v1::HolderContact> change(const Principal& who,
                                         const v1::ContactChangeRequest& request,
                                         std::chrono::system_clock::time_point now);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The address part of "address:port" ("[v6]:port" or "v6:port" too): what the per-address limit
// counts.
std::string clientAddress(const std::string& remote);

}  // namespace lostcard::cloud
