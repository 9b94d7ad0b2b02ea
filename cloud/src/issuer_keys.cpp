#include "lostcard/cloud/issuer_keys.hpp"

#include <sodium.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <stdexcept>

#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

constexpr std::size_t kKeyIdLetters = 16;
constexpr std::size_t kSecretBytes = 32;
// "lck_" + 16 letters + "_" + 64 hex digits.
constexpr std::size_t kKeyLength =
    IssuerKeyStore::kPrefix.size() + kKeyIdLetters + 1 + 2 * kSecretBytes;

std::string newKeyId() {
  std::string id;
  while (id.size() < kKeyIdLetters) {
    id.push_back(static_cast<char>('a' + randombytes_uniform(26)));
  }
  return id;
}

std::string newSecret() {
  unsigned char raw[kSecretBytes];
  randombytes_buf(raw, sizeof(raw));
  char hex[2 * kSecretBytes + 1];
  sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
  sodium_memzero(raw, sizeof(raw));
  return hex;
}

pqxx::binarystring keyDigest(std::string_view key) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return pqxx::binarystring(digest, sizeof(digest));
}

std::string keyIdOf(std::string_view key) {
  return std::string(key.substr(IssuerKeyStore::kPrefix.size(), kKeyIdLetters));
}

}  // namespace

struct IssuerKeyStore::Impl {
  explicit Impl(IssuerKeyStoreOptions o)
      : options(std::move(o)),
        pool(options.conninfo, options.pool_size),
        log(wire::componentLogger("cloud.auth")) {
    if (sodium_init() < 0) {
      throw std::runtime_error("libsodium could not be initialized");
    }
  }
  IssuerKeyStoreOptions options;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
};

IssuerKeyStore::IssuerKeyStore(IssuerKeyStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

IssuerKeyStore::~IssuerKeyStore() = default;

bool IssuerKeyStore::looksLikeKey(std::string_view token) {
  if (token.size() != kKeyLength || token.substr(0, kPrefix.size()) != kPrefix ||
      token[kPrefix.size() + kKeyIdLetters] != '_') {
    return false;
  }
  const auto id = token.substr(kPrefix.size(), kKeyIdLetters);
  const auto secret = token.substr(kPrefix.size() + kKeyIdLetters + 1);
  return std::all_of(id.begin(), id.end(), [](char c) { return c >= 'a' && c <= 'z'; }) &&
         std::all_of(secret.begin(), secret.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

NewIssuerKey IssuerKeyStore::createKey(const std::string& issuer_id,
                                       std::chrono::system_clock::time_point now) {
  NewIssuerKey made;
  made.key_id = newKeyId();
  made.key = std::string(kPrefix) + made.key_id + "_" + newSecret();
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO issuer_api_keys (key_id, issuer_id, key_sha256, created_at) "
        "VALUES ($1, $2, $3, $4::timestamptz)",
        made.key_id, issuer_id, keyDigest(made.key), detail::pgTimestamp(now));
    appendAudit(tx,
                {.actor_role = "system",
                 .actor_id = "",
                 .action = "issuer_key.create",
                 .object_kind = "issuer",
                 .object_ids = {issuer_id},
                 .result = "ok",
                 .detail = "key " + made.key_id},
                now);
    tx.commit();
  });
  impl_->log->info("issuer {}: API key {} created", issuer_id, made.key_id);
  return made;
}

bool IssuerKeyStore::revokeKey(const std::string& key_id,
                               std::chrono::system_clock::time_point now) {
  const bool revoked = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto rows = tx.exec_params(
        "UPDATE issuer_api_keys SET revoked_at = $2::timestamptz "
        "WHERE key_id = $1 AND revoked_at IS NULL RETURNING issuer_id",
        key_id, detail::pgTimestamp(now));
    if (rows.empty()) {
      return false;
    }
    appendAudit(tx,
                {.actor_role = "system",
                 .actor_id = "",
                 .action = "issuer_key.revoke",
                 .object_kind = "issuer",
                 .object_ids = {rows[0][0].as<std::string>()},
                 .result = "ok",
                 .detail = "key " + key_id},
                now);
    tx.commit();
    return true;
  });
  if (revoked) {
    impl_->log->info("API key {} revoked", key_id);
  }
  return revoked;
}

std::vector<IssuerKeyInfo> IssuerKeyStore::listKeys(const std::optional<std::string>& issuer_id) {
  return impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const auto rows =
        tx.exec_params("SELECT key_id, issuer_id, " + detail::epochMicrosSql("created_at") + ", " +
                           detail::epochMicrosSql("revoked_at") +
                           " FROM issuer_api_keys WHERE $1::text IS NULL OR issuer_id = $1 "
                           "ORDER BY created_at, key_id",
                       issuer_id);
    std::vector<IssuerKeyInfo> out;
    for (const auto& r : rows) {
      IssuerKeyInfo info;
      info.key_id = r[0].as<std::string>();
      info.issuer_id = r[1].as<std::string>();
      info.created_at = detail::fromEpochMicros(r[2].as<std::int64_t>());
      if (!r[3].is_null()) {
        info.revoked_at = detail::fromEpochMicros(r[3].as<std::int64_t>());
      }
      out.push_back(std::move(info));
    }
    return out;
  });
}

std::optional<AuthenticatedSession> IssuerKeyStore::authenticate(
    std::string_view key, std::chrono::system_clock::time_point) {
  if (!looksLikeKey(key)) {
    return std::nullopt;
  }
  const std::string key_id = keyIdOf(key);
  const auto found = impl_->pool.run([&](pqxx::connection& c) -> std::optional<pqxx::row> {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        "SELECT issuer_id, key_sha256 FROM issuer_api_keys "
        "WHERE key_id = $1 AND revoked_at IS NULL",
        key_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    return rows[0];
  });
  if (!found) {
    return std::nullopt;
  }
  // Looked up by the key id; the digests compared in constant time.
  const pqxx::binarystring stored((*found)[1]);
  const auto presented = keyDigest(key);
  if (stored.size() != presented.size() ||
      sodium_memcmp(stored.data(), presented.data(), presented.size()) != 0) {
    return std::nullopt;
  }
  AuthenticatedSession session;
  session.principal.role = Role::kIssuerStaff;
  session.principal.issuer_id = (*found)[0].as<std::string>();
  session.principal.api_key_id = key_id;
  session.principal.login = "issuer key " + key_id;
  return session;
}

}  // namespace lostcard::cloud
