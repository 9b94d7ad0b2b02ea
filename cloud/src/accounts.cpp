#include "lostcard/cloud/accounts.hpp"

#include <sodium.h>

#include <algorithm>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>

#include "lostcard/cloud/password_hash.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

constexpr std::string_view kTokenPrefix = "lc_";
constexpr std::size_t kTokenBytes = 32;

// "lc_" + base64url (no padding) of 32 random bytes.
std::string newToken() { return newRandomSecret(kTokenPrefix); }

bool looksLikeToken(std::string_view token) {
  // 32 bytes are 43 base64url characters.
  if (token.size() != kTokenPrefix.size() + 43 ||
      token.substr(0, kTokenPrefix.size()) != kTokenPrefix) {
    return false;
  }
  return std::all_of(token.begin() + kTokenPrefix.size(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// What the database keeps of a token.
pqxx::binarystring tokenDigest(std::string_view token) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return pqxx::binarystring(digest, sizeof(digest));
}

std::optional<std::string> nullIfEmpty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

std::string text(const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); }

// Loads the principal of account `id` (role, tenant, kiosks) in `tx`.
Principal loadPrincipal(pqxx::transaction_base& tx, const pqxx::row& account) {
  Principal p;
  p.account_id = account[0].as<std::int64_t>();
  p.login = account[1].as<std::string>();
  const auto role = roleFromName(account[2].as<std::string>());
  if (!role) {
    throw std::runtime_error("account " + std::to_string(p.account_id) + " has an unknown role");
  }
  p.role = *role;
  p.holder_id = text(account[3]);
  p.issuer_id = text(account[4]);
  if (p.role == Role::kOperator) {
    for (const auto& r : tx.exec_params(
             "SELECT kiosk_id FROM operator_kiosks WHERE account_id = $1 ORDER BY kiosk_id",
             p.account_id)) {
      p.kiosk_ids.push_back(r[0].as<std::string>());
    }
  }
  return p;
}

constexpr const char* kAccountColumns = "a.id, a.login, a.role, a.holder_id, a.issuer_id";

}  // namespace

AuditEntry auditBy(const Principal& who) {
  AuditEntry entry;
  entry.actor_role = roleName(who.role);
  entry.actor_id =
      who.api_key_id.empty() ? std::to_string(who.account_id) : "key:" + who.api_key_id;
  return entry;
}

struct AccountStore::Impl {
  explicit Impl(AccountStoreOptions o)
      : options(std::move(o)),
        pool(options.conninfo, options.pool_size),
        log(wire::componentLogger("cloud.auth")) {
    if (sodium_init() < 0) {
      throw std::runtime_error("libsodium could not be initialized");
    }
  }

  // A hash of a password nobody knows, verified for unknown logins so that they take as long as
  // known ones (no telling which logins exist from the answer's time). Made on first use.
  const std::string& decoyHash() {
    std::call_once(decoy_once, [this] { decoy = hashPassword(newToken()); });
    return decoy;
  }

  AccountStoreOptions options;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
  std::once_flag decoy_once;
  std::string decoy;
};

AccountStore::AccountStore(AccountStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

AccountStore::~AccountStore() = default;

std::chrono::minutes AccountStore::tokenTtl() const { return impl_->options.token_ttl; }

std::string newRandomSecret(std::string_view prefix) {
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium could not be initialized");
  }
  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof(raw));
  char text[sodium_base64_ENCODED_LEN(kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(text, sizeof(text), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof(raw));
  return std::string(prefix) + text;
}

namespace {

// What every account must be, whoever makes it.
void checkAccountSpec(const AccountSpec& spec) {
  if (spec.login.empty()) {
    throw std::invalid_argument("an account needs a login");
  }
  if ((spec.role == Role::kHolder) == spec.holder_id.empty()) {
    throw std::invalid_argument("a holder account needs a holder id; other roles have none");
  }
  if ((spec.role == Role::kIssuerStaff) == spec.issuer_id.empty()) {
    throw std::invalid_argument(
        "an issuer staff account needs an issuer id; other roles have none");
  }
  if (spec.role != Role::kOperator && !spec.kiosk_ids.empty()) {
    throw std::invalid_argument("only operators serve kiosks");
  }
}

}  // namespace

std::optional<std::int64_t> insertNewAccount(pqxx::transaction_base& tx, const AccountSpec& spec,
                                             const std::string& password_hash,
                                             std::chrono::system_clock::time_point now) {
  checkAccountSpec(spec);
  const auto rows = tx.exec_params(
      "INSERT INTO accounts (login, role, password_hash, holder_id, issuer_id, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6::timestamptz) ON CONFLICT (login) DO NOTHING RETURNING id",
      spec.login, roleName(spec.role), password_hash, nullIfEmpty(spec.holder_id),
      nullIfEmpty(spec.issuer_id), detail::pgTimestamp(now));
  if (rows.empty()) {
    return std::nullopt;
  }
  const auto account_id = rows[0][0].as<std::int64_t>();
  for (const auto& kiosk : spec.kiosk_ids) {
    tx.exec_params("INSERT INTO operator_kiosks (account_id, kiosk_id) VALUES ($1, $2)",
                   account_id, kiosk);
  }
  return account_id;
}

std::int64_t AccountStore::upsertAccount(const AccountSpec& spec, std::string_view password,
                                         std::chrono::system_clock::time_point now) {
  if (password.empty()) {
    throw std::invalid_argument("an account needs a password");
  }
  checkAccountSpec(spec);
  // The slow hash runs before the transaction, not while it holds a row lock.
  const std::string hash = hashPassword(password);
  const auto id = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto row = tx.exec_params1(
        "INSERT INTO accounts (login, role, password_hash, holder_id, issuer_id, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6::timestamptz) "
        "ON CONFLICT (login) DO UPDATE SET role = EXCLUDED.role, "
        "  password_hash = EXCLUDED.password_hash, holder_id = EXCLUDED.holder_id, "
        "  issuer_id = EXCLUDED.issuer_id, disabled_at = NULL "
        "RETURNING id",
        spec.login, roleName(spec.role), hash, nullIfEmpty(spec.holder_id),
        nullIfEmpty(spec.issuer_id), detail::pgTimestamp(now));
    const auto account_id = row[0].as<std::int64_t>();
    tx.exec_params("DELETE FROM operator_kiosks WHERE account_id = $1", account_id);
    for (const auto& kiosk : spec.kiosk_ids) {
      tx.exec_params(
          "INSERT INTO operator_kiosks (account_id, kiosk_id) VALUES ($1, $2) "
          "ON CONFLICT DO NOTHING",
          account_id, kiosk);
    }
    tx.exec_params("DELETE FROM auth_tokens WHERE account_id = $1", account_id);
    appendAudit(tx,
                {.actor_role = "system",
                 .actor_id = "",
                 .action = "account.upsert",
                 .object_kind = "account",
                 .object_ids = {std::to_string(account_id)},
                 .result = "ok",
                 .detail = "role " + roleName(spec.role)},
                now);
    tx.commit();
    return account_id;
  });
  impl_->log->info("account {} ({}) saved", id, roleName(spec.role));
  return id;
}

LoginResult AccountStore::login(std::string_view login, std::string_view password,
                                std::chrono::system_clock::time_point now) {
  struct Found {
    std::int64_t id = 0;
    std::string hash;
    bool disabled = false;
    bool throttled = false;
  };
  const auto& options = impl_->options;
  const auto found = impl_->pool.run([&](pqxx::connection& c) -> std::optional<Found> {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT id, password_hash, disabled_at IS NOT NULL FROM accounts WHERE login = $1",
        std::string(login));
    if (rows.empty()) {
      return std::nullopt;
    }
    Found f{rows[0][0].as<std::int64_t>(), rows[0][1].as<std::string>(), rows[0][2].as<bool>(),
            false};
    // Refused attempts within the window, since the last successful login.
    const auto failures = tx.exec_params1(
        "SELECT count(*) FROM audit_log "
        "WHERE action = 'auth.login' AND actor_id = $1 AND result <> 'ok' "
        "  AND at > $2::timestamptz AND id > coalesce((SELECT max(id) FROM audit_log "
        "      WHERE action = 'auth.login' AND actor_id = $1 AND result = 'ok'), 0)",
        std::to_string(f.id), detail::pgTimestamp(now - options.failed_login_window));
    f.throttled = failures[0].as<int>() >= options.max_failed_logins;
    return f;
  });
  const bool throttled = found && found->throttled;
  // Always one Argon2id verification, so that the time of the answer does not tell an unknown
  // login or a throttled account from a wrong password (a throttled one is checked against the
  // decoy: even the right password fails).
  const bool password_ok =
      verifyPassword(found && !throttled ? found->hash : impl_->decoyHash(), password) &&
      found.has_value() && !throttled;
  const bool ok = password_ok && !found->disabled;

  LoginResult result;
  const std::string token = ok ? newToken() : std::string();
  const auto expires_at = now + impl_->options.token_ttl;
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    AuditEntry entry{.actor_role = "unknown",  // the account's role once it is known
                     .actor_id = found ? std::to_string(found->id) : "",
                     .action = "auth.login",
                     .object_kind = "account",
                     .object_ids = {},
                     .result = ok          ? "ok"
                               : throttled ? "throttled"
                                           : "refused",
                     .detail = !found            ? "unknown login"
                               : throttled       ? "too many refused logins"
                               : !password_ok    ? "wrong password"
                               : found->disabled ? "account disabled"
                                                 : ""};
    if (found) {
      entry.object_ids.push_back(std::to_string(found->id));
      const auto account = tx.exec_params1(
          std::string("SELECT ") + kAccountColumns + " FROM accounts a WHERE a.id = $1", found->id);
      Principal principal = loadPrincipal(tx, account);
      entry.actor_role = roleName(principal.role);
      if (ok) {
        tx.exec_params(
            "INSERT INTO auth_tokens (token_sha256, account_id, issued_at, expires_at) "
            "VALUES ($1, $2, $3::timestamptz, $4::timestamptz)",
            tokenDigest(token), found->id, detail::pgTimestamp(now),
            detail::pgTimestamp(expires_at));
        // Expired tokens go here, where tokens are made, rather than on a timer of their own.
        tx.exec_params("DELETE FROM auth_tokens WHERE expires_at <= $1::timestamptz",
                       detail::pgTimestamp(now));
        result.session = AuthenticatedSession{std::move(principal), expires_at};
        result.token = token;
      }
    }
    appendAudit(tx, entry, now);
    tx.commit();
  });
  if (ok) {
    impl_->log->info("account {} logged in", found->id);
  } else {
    impl_->log->info("login refused ({})", !found      ? "unknown login"
                                           : throttled ? "too many refused logins"
                                                       : "wrong password or disabled");
  }
  return result;
}

std::optional<AuthenticatedSession> AccountStore::authenticate(
    std::string_view token, std::chrono::system_clock::time_point now) {
  if (!looksLikeToken(token)) {
    return std::nullopt;
  }
  return impl_->pool.run([&](pqxx::connection& c) -> std::optional<AuthenticatedSession> {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        std::string("SELECT ") + kAccountColumns + ", " + detail::epochMicrosSql("t.expires_at") +
            " FROM auth_tokens t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.token_sha256 = $1 AND t.expires_at > $2::timestamptz "
            "  AND a.disabled_at IS NULL",
        tokenDigest(token), detail::pgTimestamp(now));
    if (rows.empty()) {
      return std::nullopt;
    }
    AuthenticatedSession session;
    session.principal = loadPrincipal(tx, rows[0]);
    session.expires_at = detail::fromEpochMicros(rows[0][5].as<std::int64_t>());
    return session;
  });
}

bool AccountStore::logout(std::string_view token) {
  if (!looksLikeToken(token)) {
    return false;
  }
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto r =
        tx.exec_params("DELETE FROM auth_tokens WHERE token_sha256 = $1", tokenDigest(token));
    tx.commit();
    return r.affected_rows() > 0;
  });
}

int AccountStore::purgeExpiredTokens(std::chrono::system_clock::time_point now) {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto r = tx.exec_params("DELETE FROM auth_tokens WHERE expires_at <= $1::timestamptz",
                                  detail::pgTimestamp(now));
    tx.commit();
    return static_cast<int>(r.affected_rows());
  });
}

void AccountStore::audit(const AuditEntry& entry, std::chrono::system_clock::time_point now) {
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    appendAudit(tx, entry, now);
    tx.commit();
  });
}

std::vector<AuditRecord> AccountStore::recentAudit(int limit,
                                                   const std::optional<std::string>& action) {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return readAudit(tx, limit, action);
  });
}

}  // namespace lostcard::cloud
