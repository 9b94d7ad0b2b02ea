#include "lostcard/cloud/holder_contact.hpp"

#include <google/protobuf/util/json_util.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <pqxx/pqxx>

#include "lostcard/cloud/accounts.hpp"
#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/password_hash.hpp"
#include "lostcard/cloud/registry_http_client.hpp"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

// Sign-ups take this transaction-level advisory lock ("signup" in ASCII), so two at once cannot
// both pass a limit that has room for one.
constexpr std::int64_t kSignupLockKey = 0x7369676e7570;
constexpr std::size_t kMaxUrlBytes = 2048;
constexpr std::size_t kMaxNameChars = 100;
constexpr const char* kVerifyKind = "contact.verify";

using detail::rfc3339;

std::size_t utf8Chars(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Why `login` cannot be a new login ("" when it can).
std::string loginProblem(const std::string& login) {
  const bool shape =
      login.size() >= 3 && login.size() <= 64 &&
      std::all_of(login.begin(), login.end(),
                  [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                           c == '_' || c == '-';
                  }) &&
      ((login[0] >= 'a' && login[0] <= 'z') || (login[0] >= '0' && login[0] <= '9'));
  return shape ? "" : "login: 3 to 64 of a-z 0-9 . _ - (lower case), starting with a letter or digit";
}

// Why `url` cannot be a holder's webhook ("" when it can).
std::string webhookProblem(const std::string& url, bool allow_http) {
  if (url.size() > kMaxUrlBytes || hasControl(url) || url.find(' ') != std::string::npos) {
    return "webhook_url: at most 2048 characters, no spaces or control characters";
  }
  const auto parsed = parseHttpUrl(url);
  if (!parsed || parsed->host.empty()) {
    return "webhook_url is not an https:// URL";
  }
  if (!parsed->tls && !allow_http) {
    return "webhook_url must be https:// (the notices it receives carry pickup codes)";
  }
  if (url.find('@') != std::string::npos || url.find('#') != std::string::npos) {
    return "webhook_url: no user name or fragment";
  }
  return "";
}

v1::HolderContact contactFromRow(const pqxx::row& r, std::chrono::system_clock::time_point now) {
  // url, verified_at (RFC 3339 or ""), code expires (epoch us or null), tries, used
  v1::HolderContact out;
  out.set_webhook_url(r[0].as<std::string>());
  out.set_verified_at(r[1].as<std::string>());
  out.set_verified(!out.verified_at().empty());
  if (!out.verified() && !r[2].is_null() && !r[4].as<bool>() && r[3].as<int>() > 0) {
    const auto expires = detail::fromEpochMicros(r[2].as<std::int64_t>());
    if (expires > now) {
      out.set_code_expires_at(rfc3339(expires));
      out.set_code_tries_left(r[3].as<int>());
    }
  }
  return out;
}

AuditEntry contactEntry(const Principal& who, const std::string& action) {
  AuditEntry entry = auditBy(who);
  entry.action = action;
  entry.object_kind = "holder";
  entry.object_ids = {who.holder_id};
  return entry;
}

}  // namespace

std::string clientAddress(const std::string& remote) {
  if (!remote.empty() && remote.front() == '[') {
    const auto close = remote.find(']');
    return close == std::string::npos ? remote : remote.substr(1, close - 1);
  }
  const auto colon = remote.rfind(':');
  // "a.b.c.d:port", or an IPv6 address and its port (the server writes "addr:port").
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

struct HolderContacts::Impl {
  explicit Impl(HolderContactOptions o)
      : options(std::move(o)),
        vault(noticeVaultOr(options.notice_vault)),
        pool(options.conninfo, options.pool_size),
        log(wire::componentLogger("cloud.holder")) {}

  // A code made (slow hash) before the transaction that stores it.
  struct NewCode {
    std::string code, hash;
    std::chrono::system_clock::time_point expires_at;
  };
  NewCode makeCode(std::chrono::system_clock::time_point now) const {
    NewCode c;
    c.code = generatePickupCode();
    c.hash = hashCode(normalizePickupCode(c.code), options.code_hash_iterations);
    c.expires_at = now + options.code_ttl;
    return c;
  }

  // Stores `code` as the holder's only live code, withdraws the messages of older ones still
  // waiting, queues the sealed ContactVerification and wakes the delivery worker (at commit).
  void queueCode(pqxx::transaction_base& tx, const std::string& holder_id,
                 const std::string& holder_name, const std::string& url, NewCode& code,
                 std::chrono::system_clock::time_point now) {
    const auto at = detail::pgTimestamp(now);
    tx.exec_params(
        "INSERT INTO contact_codes (holder_id, code_hash, webhook_url, created_at, expires_at, "
        "                           tries_left) VALUES ($1, $2, $3, $4::timestamptz, "
        "                           $5::timestamptz, $6) "
        "ON CONFLICT (holder_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
        "  webhook_url = EXCLUDED.webhook_url, created_at = EXCLUDED.created_at, "
        "  expires_at = EXCLUDED.expires_at, tries_left = EXCLUDED.tries_left, used_at = NULL",
        holder_id, code.hash, url, at, detail::pgTimestamp(code.expires_at), options.code_tries);
    tx.exec_params(
        "UPDATE contact_outbox SET gave_up_at = $2::timestamptz, "
        "  last_error = 'withdrawn: a newer code was sent', payload_key_id = NULL, "
        "  payload_nonce = NULL, payload_sealed = NULL "
        "WHERE holder_id = $1 AND delivered_at IS NULL AND gave_up_at IS NULL",
        holder_id, at);
    v1::ContactVerification message;
    message.set_kind(kVerifyKind);
    message.set_message_id(wire::newUuid());
    message.set_holder_id(holder_id);
    message.set_holder_name(holder_name);
    message.set_code(code.code);
    message.set_code_expires_at(rfc3339(code.expires_at));
    message.set_message("Your lostcard verification code is " + code.code +
                        ". Send it to POST /v1/holder/contact/verify before " +
                        message.code_expires_at() +
                        " to confirm that this webhook is yours; until then no notice is sent "
                        "to it.");
    std::string json;
    google::protobuf::util::JsonPrintOptions print;
    print.preserve_proto_field_names = true;  // as the API's bodies
    print.always_print_primitive_fields = true;
    if (!google::protobuf::util::MessageToJsonString(message, &json, print).ok()) {
      throw std::logic_error("contact message: cannot encode as JSON");
    }
    const auto sealed = vault.seal(json, contactAssociatedData(message.message_id(), holder_id));
    OPENSSL_cleanse(json.data(), json.size());
    OPENSSL_cleanse(code.code.data(), code.code.size());
    message.mutable_code()->assign(message.code().size(), '0');
    message.mutable_message()->assign(message.message().size(), ' ');
    tx.exec_params(
        "INSERT INTO contact_outbox (id, holder_id, kind, payload_key_id, payload_nonce, "
        "  payload_sealed, next_attempt_at, created_at) "
        "VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz)",
        message.message_id(), holder_id, kVerifyKind, sealed.key_id,
        pqxx::binarystring(sealed.nonce), pqxx::binarystring(sealed.ciphertext), at);
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(kContactChannel),
                   message.message_id());
  }

  // Codes sent to the holder in the hour before `now`.
  int codesLastHour(pqxx::transaction_base& tx, const std::string& holder_id,
                    std::chrono::system_clock::time_point now) const {
    return tx
        .exec_params1(
            "SELECT count(*) FROM contact_outbox WHERE holder_id = $1 "
            "AND created_at > $2::timestamptz - interval '1 hour' AND created_at <= $2::timestamptz",
            holder_id, detail::pgTimestamp(now))[0]
        .as<int>();
  }

  // Why a sign-up from `address` must wait ("" when it may go on).
  std::string signupLimit(pqxx::transaction_base& tx, const std::string& address,
                          std::chrono::system_clock::time_point now) const {
    const auto counts = tx.exec_params1(
        "SELECT count(*) FILTER (WHERE actor_id = $1 AND result IN ('ok', 'refused')), "
        "       count(*) FILTER (WHERE result = 'ok') "
        "FROM audit_log WHERE action = 'holder.signup' "
        "AND at > $2::timestamptz - interval '1 hour' AND at <= $2::timestamptz",
        address, detail::pgTimestamp(now));
    if (counts[0].as<int>() >= options.signups_per_ip_per_hour) {
      return "too many sign-ups from your address in the last hour; try again later";
    }
    if (counts[1].as<int>() >= options.signups_per_hour) {
      return "too many sign-ups in the last hour; try again later";
    }
    return "";
  }

  // The holder's contact as shown (contactFromRow's columns).
  std::optional<v1::HolderContact> readContact(pqxx::transaction_base& tx,
                                               const std::string& holder_id,
                                               std::chrono::system_clock::time_point now) const {
    const auto rows = tx.exec_params(
        "SELECT h.webhook_url, coalesce(to_char(h.contact_verified_at AT TIME ZONE 'UTC', "
        "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), " +
            detail::epochMicrosSql("c.expires_at") +
            ", coalesce(c.tries_left, 0), c.used_at IS NOT NULL "
            "FROM holders h LEFT JOIN contact_codes c ON c.holder_id = h.id "
            "AND c.webhook_url = h.webhook_url WHERE h.id = $1",
        holder_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    return contactFromRow(rows[0], now);
  }

  void audit(pqxx::transaction_base& tx, AuditEntry entry, const Access& access,
             const std::string& ok_detail, std::chrono::system_clock::time_point now) {
    entry.result = access.allowed ? "ok" : access.status == 429 ? "throttled" : "refused";
    entry.detail = access.allowed ? ok_detail : access.reason;
    appendAudit(tx, entry, now);
  }

  void auditAlone(const AuditEntry& entry, const Access& access,
                  std::chrono::system_clock::time_point now) {
    pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      audit(tx, entry, access, "", now);
      tx.commit();
    });
  }

  // A new code for the holder's current URL (resend, change): within codes_per_hour.
  // `new_url`: the URL changes to it first (and the contact becomes unverified).
  CardDataRead<v1::HolderContact> sendNewCode(const Principal& who, const std::string& action,
                                              const std::string* new_url,
                                              std::chrono::system_clock::time_point now) {
    CardDataRead<v1::HolderContact> out;
    out.access = mayUseHolderApi(who);
    AuditEntry entry = contactEntry(who, action);
    if (!out.access.allowed) {
      auditAlone(entry, out.access, now);
      return out;
    }
    NewCode code = makeCode(now);
    pool.run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      out.access = Access::allow();
      const auto holder = tx.exec_params(
          "SELECT name, webhook_url, contact_verified_at IS NOT NULL FROM holders "
          "WHERE id = $1 FOR UPDATE",
          who.holder_id);
      if (holder.empty()) {
        out.access = Access::hide();
      } else if (new_url == nullptr && holder[0][2].as<bool>()) {
        out.access = {false, 409, "your contact is verified already"};
      } else if (codesLastHour(tx, who.holder_id, now) >= options.codes_per_hour) {
        out.access = {false, 429, "too many codes sent in the last hour; try again later"};
      } else {
        std::string url = holder[0][1].as<std::string>();
        if (new_url != nullptr) {
          url = *new_url;
          tx.exec_params(
              "UPDATE holders SET webhook_url = $2, contact_verified_at = NULL WHERE id = $1",
              who.holder_id, url);
        }
        NewCode mine = code;
        queueCode(tx, who.holder_id, holder[0][0].as<std::string>(), url, mine, now);
        out.value = *readContact(tx, who.holder_id, now);
      }
      audit(tx, entry, out.access, new_url != nullptr ? "webhook changed, code sent" : "code sent",
            now);
      tx.commit();
    });
    OPENSSL_cleanse(code.code.data(), code.code.size());
    return out;
  }

  HolderContactOptions options;
  const ImageVault& vault;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
};

HolderContacts::HolderContacts(HolderContactOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HolderContacts::~HolderContacts() = default;

CardDataRead<v1::SignupResponse> HolderContacts::signUp(const v1::SignupRequest& request,
                                                        const std::string& client,
                                                        std::chrono::system_clock::time_point now) {
  auto& m = *impl_;
  CardDataRead<v1::SignupResponse> out;
  const std::string address = clientAddress(client);
  AuditEntry entry{.actor_role = "anonymous",
                   .actor_id = address,
                   .action = "holder.signup",
                   .object_kind = "holder",
                   .object_ids = {},
                   .result = "",
                   .detail = ""};
  // The limits before anything slow: a throttled request costs one cheap query.
  const auto limited = m.pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return m.signupLimit(tx, address, now);
  });
  if (!limited.empty()) {
    out.access = {false, 429, limited};
    m.auditAlone(entry, out.access, now);
    return out;
  }
  out.access = Access::allow();
  if (request.login().empty() || request.password().empty() || request.display_name().empty() ||
      request.webhook_url().empty()) {
    out.access = {false, 400, "login, password, display_name and webhook_url are required"};
  } else if (auto why = loginProblem(request.login()); !why.empty()) {
    out.access = {false, 422, why};
  } else if (why = passwordRuleViolation(request.password()); !why.empty()) {
    out.access = {false, 422, why};
  } else if (utf8Chars(request.display_name()) > kMaxNameChars ||
             hasControl(request.display_name())) {
    out.access = {false, 422, "display_name: at most 100 characters, no control characters"};
  } else if (why = webhookProblem(request.webhook_url(), m.options.allow_http_webhooks);
             !why.empty()) {
    out.access = {false, 422, why};
  }
  if (!out.access.allowed) {
    m.auditAlone(entry, out.access, now);
    return out;
  }

  // The slow parts (Argon2id, PBKDF2) before the transaction, not while it holds the lock.
  const std::string password_hash = hashPassword(request.password());
  Impl::NewCode code = m.makeCode(now);
  const std::string holder_id = wire::newUuid();
  const std::string secret = newRandomSecret("lcwh_");
  m.pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    out.access = Access::allow();
    out.value.Clear();
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kSignupLockKey);
    if (auto why = m.signupLimit(tx, address, now); !why.empty()) {
      out.access = {false, 429, why};
    } else if (!tx.exec_params("SELECT 1 FROM accounts WHERE login = $1", request.login())
                    .empty()) {
      out.access = {false, 409, "this login is taken; choose another"};
    } else {
      tx.exec_params(
          "INSERT INTO holders (id, name, webhook_url, webhook_secret, contact_verified_at, "
          "                     signed_up_at) VALUES ($1, $2, $3, $4, NULL, $5::timestamptz)",
          holder_id, request.display_name(), request.webhook_url(), secret,
          detail::pgTimestamp(now));
      AccountSpec spec;
      spec.login = request.login();
      spec.role = Role::kHolder;
      spec.holder_id = holder_id;
      const auto account = insertNewAccount(tx, spec, password_hash, now);
      if (!account) {
        // Taken between the check and the insert: impossible under the lock but for an admin's
        // add-account at that very moment.
        throw std::runtime_error("the login was taken during the sign-up");
      }
      Impl::NewCode mine = code;
      m.queueCode(tx, holder_id, request.display_name(), request.webhook_url(), mine, now);
      out.value.set_holder_id(holder_id);
      out.value.set_login(request.login());
      out.value.set_webhook_secret(secret);
      *out.value.mutable_contact() = *m.readContact(tx, holder_id, now);
      entry.object_ids = {holder_id};
    }
    m.audit(tx, entry, out.access, "signed up; account for login created, code sent", now);
    tx.commit();
  });
  OPENSSL_cleanse(code.code.data(), code.code.size());
  if (out.access.allowed) {
    m.log->info("holder {} signed up from {}", holder_id, address);
  }
  return out;
}

CardDataRead<v1::HolderContact> HolderContacts::contact(const Principal& who,
                                                        std::chrono::system_clock::time_point now) {
  auto& m = *impl_;
  CardDataRead<v1::HolderContact> out;
  out.access = mayUseHolderApi(who);
  m.pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    out.value.Clear();
    if (out.access.allowed) {
      const auto found = m.readContact(tx, who.holder_id, now);
      if (found) {
        out.value = *found;
      } else {
        out.access = Access::hide();
      }
    }
    m.audit(tx, contactEntry(who, "contact.read"), out.access, "", now);
    tx.commit();
  });
  return out;
}

CardDataRead<v1::HolderContact> HolderContacts::verify(const Principal& who,
                                                       const v1::ContactVerifyRequest& request,
                                                       std::chrono::system_clock::time_point now) {
  auto& m = *impl_;
  CardDataRead<v1::HolderContact> out;
  out.access = mayUseHolderApi(who);
  std::string typed = normalizePickupCode(request.code());
  if (out.access.allowed && typed.empty()) {
    out.access = {false, 400, "the code is 10 digits (dashes or spaces between them allowed)"};
  }
  const AuditEntry entry = contactEntry(who, "contact.verify");
  if (!out.access.allowed) {
    m.auditAlone(entry, out.access, now);
    return out;
  }
  m.pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    out.access = Access::allow();
    out.value.Clear();
    // The holder row locked: two tries at once cannot both use the same try.
    const auto rows = tx.exec_params(
        "SELECT h.contact_verified_at IS NOT NULL, c.code_hash, c.tries_left, "
        "       c.used_at IS NOT NULL OR c.expires_at <= $2::timestamptz "
        "       OR c.webhook_url <> h.webhook_url "
        "FROM holders h LEFT JOIN contact_codes c ON c.holder_id = h.id "
        "WHERE h.id = $1 FOR UPDATE OF h",
        who.holder_id, detail::pgTimestamp(now));
    if (rows.empty()) {
      out.access = Access::hide();
    } else if (rows[0][0].as<bool>()) {
      out.access = {false, 409, "your contact is verified already"};
    } else if (rows[0][1].is_null() || rows[0][3].as<bool>() || rows[0][2].as<int>() <= 0) {
      out.access = {false, 410,
                    "no code is waiting (used, expired or out of tries); ask for a new one: "
                    "POST /v1/holder/contact/resend"};
    } else if (!verifyCode(typed, rows[0][1].as<std::string>())) {
      const int left = rows[0][2].as<int>() - 1;
      tx.exec_params("UPDATE contact_codes SET tries_left = $2 WHERE holder_id = $1",
                     who.holder_id, left);
      out.access = {false, 400,
                    "wrong code; " + std::to_string(left) + (left == 1 ? " try" : " tries") +
                        " left"};
    } else {
      tx.exec_params("UPDATE contact_codes SET used_at = $2::timestamptz WHERE holder_id = $1",
                     who.holder_id, detail::pgTimestamp(now));
      tx.exec_params(
          "UPDATE holders SET contact_verified_at = $2::timestamptz WHERE id = $1",
          who.holder_id, detail::pgTimestamp(now));
      // The notices held for this holder are due now: wake the delivery worker.
      tx.exec_params("SELECT pg_notify($1, $2)", std::string(kContactChannel), who.holder_id);
      out.value = *m.readContact(tx, who.holder_id, now);
    }
    m.audit(tx, entry, out.access, "contact verified", now);
    tx.commit();
  });
  OPENSSL_cleanse(typed.data(), typed.size());
  return out;
}

CardDataRead<v1::HolderContact> HolderContacts::resend(const Principal& who,
                                                       std::chrono::system_clock::time_point now) {
  return impl_->sendNewCode(who, "contact.resend", nullptr, now);
}

CardDataRead<v1::HolderContact> HolderContacts::change(const Principal& who,
                                                       const v1::ContactChangeRequest& request,
                                                       std::chrono::system_clock::time_point now) {
  auto& m = *impl_;
  Access access = mayUseHolderApi(who);
  if (access.allowed && request.webhook_url().empty()) {
    access = {false, 400, "webhook_url is required"};
  } else if (access.allowed) {
    if (auto why = webhookProblem(request.webhook_url(), m.options.allow_http_webhooks);
        !why.empty()) {
      access = {false, 422, why};
    }
  }
  if (!access.allowed) {
    m.auditAlone(contactEntry(who, "contact.change"), access, now);
    return {access, {}};
  }
  return m.sendNewCode(who, "contact.change", &request.webhook_url(), now);
}

}  // namespace lostcard::cloud
