#pragma once
// Issuers' API keys (table issuer_api_keys, migration 7): how an issuer's own systems call the
// HTTPS API (bulk enrollment, listing its cards) without a person's login and password.
//
//   IssuerKeyStore keys({.conninfo = db});
//   auto made = keys.createKey("northwind", now);    // lostcard-admin add-issuer-key
//   print made.key once; it is never shown again
//   auto who = keys.authenticate(key_from_header, now);   // nullopt: unknown, wrong or revoked
//   keys.revokeKey(made.key_id, now);                  // lostcard-admin revoke-issuer-key
//
// A key reads "lck_<key id>_<secret>": the key id is 16 lowercase letters (public: it names the
// key in the audit log and to revoke it; letters only, so the audit log's digit masking never
// touches it), the secret 32 random bytes (256 bits) in 64 hex digits. The database keeps the
// key id, the issuer, the SHA-256 of the whole key, created_at and revoked_at: never the key.
// A plain SHA-256 suffices because the secret is random and long (nothing to guess, unlike a
// password); it is compared in constant time. A key acts as its issuer's staff (role
// issuer_staff, limited to its issuer: authorization.hpp) and has no expiry; revoking it ends
// it at once (every request checks the database). Key creation and revocation are audited.
//
// Thread-safe (a small connection pool, connected on first use); database errors are thrown.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/cloud/accounts.hpp"

namespace lostcard::cloud {

struct IssuerKeyStoreOptions {
  std::string conninfo;
  int pool_size = 2;
};

struct NewIssuerKey {
  std::string key_id;
  std::string key;  // the whole key, to hand to the issuer once
};

struct IssuerKeyInfo {
  std::string key_id, issuer_id;
  std::chrono::system_clock::time_point created_at{};
  std::optional<std::chrono::system_clock::time_point> revoked_at;
};

class IssuerKeyStore {
 public:
  static constexpr std::string_view kPrefix = "lck_";

  explicit IssuerKeyStore(IssuerKeyStoreOptions options);
  ~IssuerKeyStore();
  IssuerKeyStore(const IssuerKeyStore&) = delete;
  IssuerKeyStore& operator=(const IssuerKeyStore&) = delete;

  // A new key for `issuer_id`. Throws pqxx::foreign_key_violation for an unknown issuer.
  NewIssuerKey createKey(const std::string& issuer_id, std::chrono::system_clock::time_point now);
  // Revokes the key; false when no such key or already revoked.
  bool revokeKey(const std::string& key_id, std::chrono::system_clock::time_point now);
  // Every key of one issuer (or of all), oldest first; never the key itself.
  std::vector<IssuerKeyInfo> listKeys(const std::optional<std::string>& issuer_id);

  // The key's issuer as a principal (role issuer_staff, issuer_id, api_key_id, login
  // "issuer key <id>"), when the key is well-formed, known, matches and is not revoked.
  // expires_at is the epoch: a key does not expire.
  std::optional<AuthenticatedSession> authenticate(std::string_view key,
                                                   std::chrono::system_clock::time_point now);

  // True when `token` has the shape of an issuer key (the authenticator's dispatch).
  static bool looksLikeKey(std::string_view token);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lostcard::cloud
