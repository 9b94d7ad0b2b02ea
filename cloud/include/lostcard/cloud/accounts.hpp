#pragma once
// People's accounts and their API tokens (tables accounts, operator_kiosks, auth_tokens;
// migration 5), and the audit log's appends for what people do.
//
//   AccountStore accounts({.conninfo = db, .token_ttl = std::chrono::minutes(15)});
//   accounts.upsertAccount({.login = "ana", .role = Role::kHolder, .holder_id = "h-1"},
//                          password, now);
//   auto login = accounts.login("ana", password, now);          // audited (auth.login)
//   if (login.session) { send login.token; }
//   auto who = accounts.authenticate(token_from_header, now);   // nullopt: unknown or expired
//
// Tokens are opaque: "lc_" and 32 random bytes in base64url. Only their SHA-256 is stored, so a
// copy of the database opens no session; each lives token_ttl (15 minutes by default) and is
// checked against the database on every request, so logout() or disabling an account ends it
// at once (a signed token could not be taken back before it expires, and would need a signing
// key to keep and rotate). Passwords are Argon2id hashes (password_hash.hpp).
//
// Time is passed in. Thread-safe (a small connection pool); database errors are thrown (pqxx).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/authorization.hpp"

namespace pqxx {
class transaction_base;
}

namespace lostcard::cloud {

struct AccountStoreOptions {
  std::string conninfo;
  int pool_size = 2;
  std::chrono::minutes token_ttl{15};
  // Against password guessing: after this many refused logins of one account within
  // failed_login_window (counted since its last successful login), its logins are refused
  // without checking the password until the window has passed.
  int max_failed_logins = 10;
  std::chrono::minutes failed_login_window{15};
};

struct AccountSpec {
  std::string login;
  Role role = Role::kHolder;
  std::string holder_id;               // required for holders, empty otherwise
  std::string issuer_id;               // required for issuer staff, empty otherwise
  std::vector<std::string> kiosk_ids;  // operators: the kiosks they serve
};

// A token's person and when the token stops working.
struct AuthenticatedSession {
  Principal principal;
  std::chrono::system_clock::time_point expires_at;
};

struct LoginResult {
  std::optional<AuthenticatedSession> session;  // nullopt: refused
  std::string token;                            // set when session is
};

class AccountStore {
 public:
  explicit AccountStore(AccountStoreOptions options);
  ~AccountStore();
  AccountStore(const AccountStore&) = delete;
  AccountStore& operator=(const AccountStore&) = delete;

  // Creates the account, or replaces the role, tenant, kiosks and password of the one with this
  // login (and ends its tokens). Returns the account id. Throws std::invalid_argument for an
  // empty login or password, or a tenant that does not fit the role;
  // pqxx::foreign_key_violation for an unknown holder, issuer or kiosk.
  std::int64_t upsertAccount(const AccountSpec& spec, std::string_view password,
                             std::chrono::system_clock::time_point now);

  // Checks the password (Argon2id; an unknown login costs the same time as a known one) and
  // issues a token. Every attempt is audited ("auth.login", result ok, refused or throttled; the
  // typed password and an unknown login are never recorded). A throttled account (see
  // max_failed_logins) is refused like a wrong password, so the answer does not tell a guesser
  // that the login exists.
  LoginResult login(std::string_view login, std::string_view password,
                    std::chrono::system_clock::time_point now);

  // The token's account when the token is known, unexpired and the account not disabled.
  std::optional<AuthenticatedSession> authenticate(std::string_view token,
                                                   std::chrono::system_clock::time_point now);

  // Ends one token; returns whether it existed.
  bool logout(std::string_view token);
  // Deletes tokens expired before `now`; returns how many.
  int purgeExpiredTokens(std::chrono::system_clock::time_point now);

  // Appends to the audit log in a transaction of its own (for refusals and other events that
  // touch no data; reads of card data audit inside their own transaction: card_data.hpp).
  void audit(const AuditEntry& entry, std::chrono::system_clock::time_point now);
  std::vector<AuditRecord> recentAudit(int limit,
                                       const std::optional<std::string>& action = std::nullopt);

  std::chrono::minutes tokenTtl() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Inserts a new account in the caller's transaction (sign-up: with the holder it belongs to),
// never replacing one: nullopt when the login is taken (nothing written). `password_hash` is
// hashPassword's. Throws std::invalid_argument as upsertAccount does for a spec that does not
// fit its role.
std::optional<std::int64_t> insertNewAccount(pqxx::transaction_base& tx, const AccountSpec& spec,
                                             const std::string& password_hash,
                                             std::chrono::system_clock::time_point now);

// A random secret: `prefix` and 32 random bytes in base64url (tokens, webhook secrets).
std::string newRandomSecret(std::string_view prefix);

// The audit entry's actor for a person: role name and account id.
AuditEntry auditBy(const Principal& who);

}  // namespace lostcard::cloud
