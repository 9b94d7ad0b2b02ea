#include "lostcard/cloud/operator_api.hpp"

#include <pqxx/pqxx>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/card_import.hpp"
#include "lostcard/cloud/issuer_events.hpp"
#include "lostcard/v1/api.pb.h"
#include "lostcard/wire/envelope.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

// RFC 3339 UTC text of a timestamptz column, NULL as "".
std::string rfc3339Sql(const std::string& column) {
  return "coalesce(to_char(" + column +
         " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')";
}

constexpr const char* kLocationSql =
    "CASE d.location_kind WHEN 'slot' THEN 'slot:' || d.location_slot "
    "                     WHEN 'bin' THEN 'bin' ELSE '' END";

std::string text(const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); }

// The SQL condition "kiosk column is one the caller serves" and its parameter.
std::string servedCondition(const Principal& who, const std::string& column, std::string* param) {
  const auto kiosks = servedKiosks(who);
  if (!kiosks) {
    *param = "{}";
    return "($1::text[] IS NOT NULL)";
  }
  *param = detail::textArrayLiteral(*kiosks);
  return column + " = ANY($1::text[])";
}

ApiReply refusal(const Access& access) {
  return errorReply(access.status, access.status == 404 ? "not_found" : "forbidden", access.reason);
}

AuditEntry entryFor(const Principal& who, const std::string& action, const std::string& kind,
                    const std::string& id) {
  AuditEntry entry = auditBy(who);
  entry.action = action;
  entry.object_kind = kind;
  entry.object_ids = {id};
  return entry;
}

// Access to one object of a kiosk (a deposit, an alert) by `rule`; for an operator or admin, one
// that does not exist (nullopt) is refused like another kiosk's (404), so ids cannot be probed.
Access kioskObjectAccess(const Principal& who, const std::optional<std::string>& kiosk,
                         Access (*rule)(const Principal&, const std::string&)) {
  if (kiosk) {
    return rule(who, *kiosk);
  }
  return who.role == Role::kOperator || who.role == Role::kAdmin ? Access::hide() : rule(who, "");
}

// A sentence for the operator about an alert the kiosk raised (kiosk_alerts.kind).
std::string raisedAlertMessage(const std::string& kind, const pqxx::field& slot) {
  if (kind == "slot_door_failed") {
    return "The door of slot " +
           (slot.is_null() ? std::string("?") : std::to_string(slot.as<int>() + 1)) +
           " did not open for a pickup: the card is still in it; check the latch (its holder "
           "needs a new code)";
  }
  return "The box raised an alert: " + kind;
}

// The alerts kiosks raised and no operator acknowledged yet (kiosk_alerts), in KioskAlert's
// columns order: id, kiosk, kind, deposit, detail, at, acknowledged at, the deposit's slot.
std::string raisedAlertSql(const std::string& where) {
  return "SELECT a.id::text, a.kiosk_id, a.kind, coalesce(a.deposit_id::text, ''), a.detail, " +
         rfc3339Sql("a.at") + ", " + rfc3339Sql("a.resolved_at") +
         ", d.location_slot FROM kiosk_alerts a LEFT JOIN deposits d ON d.id = a.deposit_id "
         "WHERE " +
         where;
}

v1::KioskAlert raisedAlert(const pqxx::row& r) {
  v1::KioskAlert a;
  a.set_alert_id(r[0].as<std::string>());
  a.set_kiosk_id(r[1].as<std::string>());
  a.set_kind(r[2].as<std::string>());
  a.set_deposit_id(r[3].as<std::string>());
  a.set_detail(r[4].as<std::string>());
  a.set_at(r[5].as<std::string>());
  a.set_acknowledged_at(r[6].as<std::string>());
  a.set_message(raisedAlertMessage(a.kind(), r[7]));
  return a;
}

}  // namespace

struct OperatorApi::Impl {
  explicit Impl(OperatorApiOptions o)
      : options(std::move(o)),
        pool(options.conninfo, options.pool_size),
        log(wire::componentLogger("cloud.operations")) {}

  std::vector<v1::KioskStatus> kiosks(const Principal& who,
                                      std::chrono::system_clock::time_point now) {
    std::string param;
    const std::string where = servedCondition(who, "id", &param);
    const auto rows = pool.run([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      return tx.exec_params(
          "SELECT id, name, address, slot_count, " + detail::epochMicrosSql("last_heartbeat_at") +
              ", coalesce(slots_used, 0), coalesce(bin_count, 0), coalesce(bin_capacity, 0) "
              "FROM kiosks WHERE " +
              where + " ORDER BY id",
          param);
    });
    std::vector<v1::KioskStatus> out;
    for (const auto& r : rows) {
      KioskFill fill;
      fill.kiosk_id = r[0].as<std::string>();
      fill.slot_count = r[3].as<int>();
      if (!r[4].is_null()) {
        fill.last_heartbeat_at = detail::fromEpochMicros(r[4].as<std::int64_t>());
      }
      fill.slots_used = r[5].as<int>();
      fill.bin_count = r[6].as<int>();
      fill.bin_capacity = r[7].as<int>();
      v1::KioskStatus k;
      k.set_kiosk_id(fill.kiosk_id);
      k.set_name(r[1].as<std::string>());
      k.set_address(r[2].as<std::string>());
      k.set_online(kioskOnline(fill, options.thresholds, now));
      if (fill.last_heartbeat_at) {
        const auto t = *fill.last_heartbeat_at;
        const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
        std::tm parts{};
        gmtime_r(&seconds, &parts);
        char buf[32];
        std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &parts);
        k.set_last_heartbeat_at(buf);
      }
      k.set_slots_used(static_cast<std::uint32_t>(fill.slots_used));
      k.set_slot_count(static_cast<std::uint32_t>(fill.slot_count));
      k.set_bin_count(static_cast<std::uint32_t>(fill.bin_count));
      k.set_bin_capacity(static_cast<std::uint32_t>(fill.bin_capacity));
      for (const auto& alert : kioskAlerts(fill, options.thresholds, now)) {
        auto* a = k.add_alerts();
        a->set_kiosk_id(fill.kiosk_id);
        a->set_kind(alert.kind);
        a->set_message(alert.message);
      }
      out.push_back(std::move(k));
    }
    return out;
  }

  // The deposit's kiosk, locked FOR UPDATE when `lock`; nullopt when there is none.
  static std::optional<std::string> depositKiosk(pqxx::transaction_base& tx,
                                                 const std::string& deposit_id, bool lock) {
    if (!wire::isUuid(deposit_id)) {
      return std::nullopt;
    }
    const auto rows =
        tx.exec_params(std::string("SELECT kiosk_id FROM deposits WHERE id = $1::uuid") +
                           (lock ? " FOR UPDATE" : ""),
                       deposit_id);
    if (rows.empty()) {
      return std::nullopt;
    }
    return rows[0][0].as<std::string>();
  }

  // 0 when `actor_id` may look up another number now; else the seconds until the oldest of the
  // lookups that fill the limit leaves the window.
  std::int64_t resolveWaitSeconds(pqxx::transaction_base& tx, const std::string& actor_id,
                                  std::chrono::system_clock::time_point now) const {
    if (options.resolve_tries <= 0) {
      return 0;
    }
    const auto rows = tx.exec_params(
        "SELECT " + detail::epochMicrosSql("at") +
            " FROM audit_log WHERE action = 'difficult.resolve' AND actor_id = $1 "
            "AND at > $2::timestamptz AND detail LIKE 'number:%' ORDER BY at DESC LIMIT $3",
        actor_id, detail::pgTimestamp(now - options.resolve_window), options.resolve_tries);
    if (static_cast<int>(rows.size()) < options.resolve_tries) {
      return 0;
    }
    const auto oldest = detail::fromEpochMicros(rows.back()[0].as<std::int64_t>());
    return std::max<std::int64_t>(
        1, std::chrono::ceil<std::chrono::seconds>(oldest + options.resolve_window - now).count());
  }

  OperatorApiOptions options;
  detail::ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
};

OperatorApi::OperatorApi(OperatorApiOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

OperatorApi::~OperatorApi() = default;

void OperatorApi::addRoutes(HttpRouter& router) {
  router.add(http::verb::get, "/v1/operator/kiosks", Auth::kRequired,
             [this](const ApiRequest& r) { return fleet(r); });
  router.add(http::verb::get, "/v1/operator/alerts", Auth::kRequired,
             [this](const ApiRequest& r) { return alerts(r); });
  router.add(http::verb::post, "/v1/operator/alerts/{id}/ack", Auth::kRequired,
             [this](const ApiRequest& r) { return acknowledgeAlert(r); });
  router.add(http::verb::get, "/v1/operator/kiosks/{id}/collection", Auth::kRequired,
             [this](const ApiRequest& r) { return collection(r); });
  router.add(http::verb::get, "/v1/operator/difficult", Auth::kRequired,
             [this](const ApiRequest& r) { return difficult(r); });
  router.add(http::verb::get, "/v1/operator/difficult/{deposit}/images/{n}", Auth::kRequired,
             [this](const ApiRequest& r) { return difficultImage(r); });
  router.add(http::verb::post, "/v1/operator/difficult/{deposit}/resolve", Auth::kRequired,
             [this](const ApiRequest& r) { return resolve(r); });
}

ApiReply OperatorApi::fleet(const ApiRequest& r) {
  const auto access = mayViewFleet(r.principal());
  if (!access.allowed) {
    return refusal(access);
  }
  v1::KioskStatusList list;
  for (auto& k : impl_->kiosks(r.principal(), r.now)) {
    *list.add_kiosks() = std::move(k);
  }
  return jsonReply(list);
}

ApiReply OperatorApi::alerts(const ApiRequest& r) {
  const auto access = mayViewFleet(r.principal());
  if (!access.allowed) {
    return refusal(access);
  }
  v1::AlertList list;
  for (const auto& k : impl_->kiosks(r.principal(), r.now)) {
    for (const auto& a : k.alerts()) {
      *list.add_alerts() = a;
    }
  }
  std::string param;
  const std::string where = servedCondition(r.principal(), "a.kiosk_id", &param);
  const auto rows = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return tx.exec_params(
        raisedAlertSql(where + " AND a.resolved_at IS NULL ORDER BY a.at, a.id LIMIT $2"), param,
        impl_->options.max_rows);
  });
  for (const auto& row : rows) {
    *list.add_alerts() = raisedAlert(row);
  }
  return jsonReply(list);
}

ApiReply OperatorApi::acknowledgeAlert(const ApiRequest& r) {
  const auto& who = r.principal();
  const std::string alert_id = r.params.at("id");
  const bool is_id = !alert_id.empty() && alert_id.size() <= 18 &&
                     alert_id.find_first_not_of("0123456789") == std::string::npos;
  auto entry = entryFor(who, "alert.ack", "kiosk_alert", alert_id);
  if (!is_id) {
    entry.object_ids.clear();  // not an id: nothing to name
  }
  return impl_->pool.run([&](pqxx::connection& c) -> ApiReply {
    pqxx::work tx(c);
    std::optional<std::string> kiosk;
    bool acknowledged_before = false;
    if (is_id) {
      const auto rows = tx.exec_params(
          "SELECT kiosk_id, resolved_at IS NOT NULL FROM kiosk_alerts WHERE id = $1 FOR UPDATE",
          std::stoll(alert_id));
      if (!rows.empty()) {
        kiosk = rows[0][0].as<std::string>();
        acknowledged_before = rows[0][1].as<bool>();
      }
    }
    const auto access = kioskObjectAccess(who, kiosk, mayAcknowledgeAlert);
    if (!access.allowed) {
      entry.result = "refused";
      entry.detail = access.reason;
      appendAudit(tx, entry, r.now);
      tx.commit();
      return refusal(access);
    }
    if (!acknowledged_before) {
      tx.exec_params(
          "UPDATE kiosk_alerts SET resolved_at = $2::timestamptz, "
          "  resolved_by_account = nullif($3, 0) WHERE id = $1",
          std::stoll(alert_id), detail::pgTimestamp(r.now), who.account_id);
    }
    const auto row = tx.exec_params1(raisedAlertSql("a.id = $1"), std::stoll(alert_id));
    entry.result = "ok";
    entry.detail = row[2].as<std::string>() + " at kiosk " + *kiosk +
                   (acknowledged_before ? " (acknowledged before)" : "");
    appendAudit(tx, entry, r.now);
    tx.commit();
    if (!acknowledged_before) {
      impl_->log->info("alert {} ({}) of kiosk {} acknowledged by {} {}", alert_id,
                       row[2].as<std::string>(), *kiosk, roleName(who.role), entry.actor_id);
    }
    return jsonReply(raisedAlert(row));
  });
}

ApiReply OperatorApi::collection(const ApiRequest& r) {
  const auto& who = r.principal();
  const std::string kiosk_id = r.params.at("id");
  auto entry = entryFor(who, "collection.read", "kiosk", kiosk_id);
  const auto access = mayServeKiosk(who, kiosk_id);
  return impl_->pool.run([&](pqxx::connection& c) -> ApiReply {
    pqxx::work tx(c);
    if (!access.allowed) {
      entry.result = "refused";
      entry.detail = access.reason;
      appendAudit(tx, entry, r.now);
      tx.commit();
      return refusal(access);
    }
    if (tx.exec_params("SELECT 1 FROM kiosks WHERE id = $1", kiosk_id).empty()) {
      return errorReply(404, "not_found", "no such kiosk");
    }
    // A card that found all 999 restock numbers taken gets one freed since.
    detail::lockRestockNumbers(tx, kiosk_id);
    detail::numberWaitingRestocks(tx, kiosk_id);
    // Cards still in the box (not collected): to return, to review; and every card to put back
    // in a slot, wherever it is: one that left the bin with the operator (collected_at set) is
    // still theirs to restock, so it stays listed, without a place, until the kiosk reports it in
    // a slot.
    const auto rows = tx.exec_params(
        std::string("SELECT d.id::text, CASE WHEN d.collected_at IS NOT NULL THEN '' ELSE ") +
            kLocationSql +
            " END, CASE WHEN d.status = 'to_return' THEN 'return_to_issuer' "
            "       WHEN d.status = 'awaiting_restock' THEN 'restock' ELSE 'difficult' END, "
            "d.status, coalesce(d.last4, ''), coalesce(c.issuer_id, ''), " +
            rfc3339Sql("coalesce(d.return_marked_at, d.resolved_at, d.decided_at)") +
            ", coalesce(d.restock_number, 0) "
            " FROM deposits d LEFT JOIN cards c ON c.id = d.card_id "
            "WHERE d.kiosk_id = $1 AND (d.status = 'awaiting_restock' "
            "  OR (d.collected_at IS NULL AND d.location_kind IS NOT NULL "
            "      AND (d.status = 'to_return' "
            "           OR (d.status = 'stored' AND d.decision = 'difficult')))) "
            "ORDER BY d.location_kind DESC NULLS LAST, d.location_slot, d.decided_at LIMIT $2",
        kiosk_id, impl_->options.max_rows);
    v1::CollectionList list;
    list.set_kiosk_id(kiosk_id);
    for (const auto& row : rows) {
      auto* item = list.add_items();
      item->set_deposit_id(row[0].as<std::string>());
      item->set_location(text(row[1]));
      item->set_action(row[2].as<std::string>());
      item->set_status(row[3].as<std::string>());
      item->set_last4(row[4].as<std::string>());
      item->set_issuer_id(row[5].as<std::string>());
      item->set_since(row[6].as<std::string>());
      item->set_restock_number(row[7].as<std::uint32_t>());
    }
    entry.result = "ok";
    entry.detail = std::to_string(list.items_size()) + " cards";
    appendAudit(tx, entry, r.now);
    tx.commit();
    return jsonReply(list);
  });
}

ApiReply OperatorApi::difficult(const ApiRequest& r) {
  const auto& who = r.principal();
  auto entry = entryFor(who, "difficult.read", "kiosk", "");
  entry.object_ids.clear();
  const auto access = mayViewFleet(who);
  return impl_->pool.run([&](pqxx::connection& c) -> ApiReply {
    pqxx::work tx(c);
    if (!access.allowed) {
      entry.result = "refused";
      entry.detail = "only operators review difficult cards";
      appendAudit(tx, entry, r.now);
      tx.commit();
      return errorReply(403, "forbidden", entry.detail);
    }
    std::string param;
    const std::string where = servedCondition(who, "d.kiosk_id", &param);
    const auto rows = tx.exec_params(
        "SELECT d.id::text, d.kiosk_id, coalesce(d.difficult_reason, ''), d.status, " +
            std::string(kLocationSql) + ", " + rfc3339Sql("d.decided_at") +
            ", coalesce(d.last4, ''), "
            "(SELECT count(*) FROM difficult_images i WHERE i.deposit_id = d.id) "
            "FROM deposits d WHERE " +
            where +
            " AND d.decision = 'difficult' AND d.status IN ('decided', 'stored', 'collected') "
            "ORDER BY d.decided_at DESC, d.id LIMIT $2",
        param, impl_->options.max_rows);
    v1::DifficultCardList list;
    for (const auto& row : rows) {
      auto* card = list.add_cards();
      card->set_deposit_id(row[0].as<std::string>());
      card->set_kiosk_id(row[1].as<std::string>());
      card->set_reason(row[2].as<std::string>());
      card->set_status(row[3].as<std::string>());
      card->set_location(text(row[4]));
      card->set_decided_at(row[5].as<std::string>());
      card->set_last4(row[6].as<std::string>());
      card->set_images(row[7].as<std::uint32_t>());
    }
    entry.result = "ok";
    entry.detail = std::to_string(list.cards_size()) + " difficult cards";
    appendAudit(tx, entry, r.now);
    tx.commit();
    return jsonReply(list);
  });
}

ApiReply OperatorApi::difficultImage(const ApiRequest& r) {
  const auto& who = r.principal();
  const std::string deposit_id = r.params.at("deposit");
  const std::string& n_text = r.params.at("n");
  if (n_text.empty() || n_text.size() > 3 ||
      n_text.find_first_not_of("0123456789") != std::string::npos) {
    return errorReply(400, "bad_request", "the photo number is 0, 1, 2, ...");
  }
  const std::size_t n = std::stoul(n_text);
  auto entry = entryFor(who, "difficult_images.read", "deposit", deposit_id);
  return impl_->pool.run([&](pqxx::connection& c) -> ApiReply {
    pqxx::work tx(c);
    const auto kiosk = Impl::depositKiosk(tx, deposit_id, false);
    const auto access = kioskObjectAccess(who, kiosk, mayReviewDifficult);
    if (!access.allowed) {
      if (!wire::isUuid(deposit_id)) {
        entry.object_ids.clear();  // not an id: nothing to name
      }
      entry.result = "refused";
      entry.detail = access.reason;
      appendAudit(tx, entry, r.now);
      tx.commit();
      return refusal(access);
    }
    if (impl_->options.image_vault == nullptr) {
      return errorReply(503, "unavailable", "this cloud node has no image key");
    }
    const auto rows = tx.exec_params(
        "SELECT key_id, nonce, ciphertext, face, frame FROM difficult_images "
        "WHERE deposit_id = $1::uuid "
        "ORDER BY CASE face WHEN 'front' THEN 0 ELSE 1 END, frame OFFSET $2 LIMIT 1",
        deposit_id, static_cast<std::int64_t>(n));
    if (rows.empty()) {
      return errorReply(404, "not_found", "no such photo of this deposit");
    }
    SealedImage sealed{rows[0][0].as<std::string>(), pqxx::binarystring(rows[0][1]).str(),
                       pqxx::binarystring(rows[0][2]).str()};
    std::string why;
    auto jpeg = impl_->options.image_vault->open(sealed, deposit_id, &why);
    if (!jpeg) {
      impl_->log->error("photo {} of deposit {} does not open: {}", n, deposit_id, why);
      return errorReply(503, "unavailable", "the photo does not open with this node's image key");
    }
    entry.result = "ok";
    entry.detail = "photo " + std::to_string(n) + " (" + rows[0][3].as<std::string>() + " frame " +
                   std::to_string(rows[0][4].as<int>() + 1) + ")";
    appendAudit(tx, entry, r.now);
    tx.commit();
    ApiReply reply;
    reply.body = std::move(*jpeg);
    reply.headers.emplace_back("Content-Type", "image/jpeg");
    return reply;
  });
}

ApiReply OperatorApi::resolve(const ApiRequest& r) {
  const auto& who = r.principal();
  const std::string deposit_id = r.params.at("deposit");
  v1::ResolveRequest body;
  if (auto bad = parseJsonBody(r, body)) {
    return *bad;
  }
  std::string& number = *body.mutable_number();
  const Cleanse cleanse{number};
  if (number.empty() && !body.return_to_issuer()) {
    return errorReply(400, "bad_request", "send the card's number, return_to_issuer, or both");
  }
  auto entry = entryFor(who, "difficult.resolve", "deposit", deposit_id);
  const auto& options = impl_->options;
  return impl_->pool.run([&](pqxx::connection& c) -> ApiReply {
    pqxx::work tx(c);
    // The kiosk's restock numbers first, then the deposit (registry_pg.hpp: the lock order).
    auto kiosk = Impl::depositKiosk(tx, deposit_id, false);
    if (kiosk) {
      detail::lockRestockNumbers(tx, *kiosk);
      kiosk = Impl::depositKiosk(tx, deposit_id, true);
    }
    const auto access = kioskObjectAccess(who, kiosk, mayReviewDifficult);
    const auto audited = [&](const std::string& result, const std::string& detail) {
      entry.result = result;
      entry.detail = detail;
      appendAudit(tx, entry, r.now);
      tx.commit();
    };
    if (!access.allowed) {
      if (!wire::isUuid(deposit_id)) {
        entry.object_ids.clear();
      }
      audited("refused", access.reason);
      return refusal(access);
    }
    const auto d = tx.exec_params1(
        "SELECT status, decision, collected_at IS NOT NULL, coalesce(difficult_reason, '') "
        "FROM deposits WHERE id = $1::uuid",
        deposit_id);
    const std::string status = d[0].as<std::string>();
    if (d[1].as<std::string>() != "difficult" || (status != "stored" && status != "collected")) {
      const std::string why =
          d[1].as<std::string>() != "difficult"
              ? "this deposit is not a difficult card waiting for review (it is " + status + ")"
              : "the card is not in the bin yet (it is " + status + "): try again once it is";
      audited("refused", why);
      return errorReply(409, "conflict", why);
    }
    std::optional<std::int64_t> card_id;
    std::string last4;
    if (!number.empty()) {
      // Each answer tells whether a number is enrolled: at most resolve_tries lookups per
      // operator within resolve_window, counted in the audit log (details "number: ...").
      if (const auto wait_s = impl_->resolveWaitSeconds(tx, entry.actor_id, r.now); wait_s > 0) {
        audited("refused", "throttled: too many numbers typed");
        auto reply = errorReply(429, "too_many_requests",
                                "too many card numbers typed lately; try again later");
        reply.headers.emplace_back("Retry-After", std::to_string(wait_s));
        return reply;
      }
      std::string digits, code, reason;
      const Cleanse cleanse_digits{digits};
      if (!checkCardNumber(options.card_formats, number, &digits, &last4, &code, &reason)) {
        audited("refused", "number: refused by the card formats: " + code);
        return errorReply(422, "unprocessable", reason);
      }
      if (options.card_hasher == nullptr) {
        return errorReply(503, "unavailable", "this cloud node has no card key");
      }
      const auto cards = tx.exec_params(
          "SELECT id FROM cards WHERE number_key_id = $1 AND number_hmac = $2",
          options.card_hasher->keyId(), pqxx::binarystring(options.card_hasher->hash(digits)));
      if (cards.size() != 1) {
        const std::string why = "no enrolled card has the number ending " + last4 +
                                ": check it, or return the card to its issuer";
        audited("refused", "number: no enrolled card with it (ending " + last4 + ")");
        return errorReply(422, "unprocessable", why);
      }
      card_id = cards[0][0].as<std::int64_t>();
    }
    const std::string now_sql = detail::pgTimestamp(r.now);
    if (card_id) {
      std::optional<int> restock_number;
      if (!body.return_to_issuer()) {
        restock_number = detail::freeRestockNumber(tx, *kiosk);
        if (!restock_number) {
          const std::string why =
              "999 resolved cards already wait to be put back at this box: restock some first";
          audited("refused", why);
          return errorReply(409, "conflict", why);
        }
      }
      tx.exec_params(
          "UPDATE deposits SET decision = 'store', card_id = $2, last4 = $3, "
          "  resolved_reason = difficult_reason, difficult_reason = NULL, "
          "  resolved_at = $4::timestamptz, status = 'awaiting_restock', restock_number = $5 "
          "WHERE id = $1::uuid",
          deposit_id, *card_id, last4, now_sql, restock_number);
      queueIssuerEvent(tx, deposit_id, "found", r.now);
    }
    if (body.return_to_issuer()) {
      tx.exec_params(
          "UPDATE deposits SET status = 'to_return', return_marked_at = $2::timestamptz, "
          "  return_reason = 'operator' WHERE id = $1::uuid",
          deposit_id, now_sql);
      queueIssuerEvent(tx, deposit_id, "returned_to_issuer", r.now);
    }
    const std::string outcome = body.return_to_issuer() ? "to_return" : "awaiting_restock";
    const auto row = tx.exec_params1(
        "SELECT d.id::text, d.kiosk_id, k.name, k.address, d.status, coalesce(d.last4, ''), " +
            rfc3339Sql("d.decided_at") + ", " + rfc3339Sql("d.stored_at") + ", " +
            rfc3339Sql("d.collected_at") + ", d.decision, " + kLocationSql +
            ", CASE WHEN d.status = 'awaiting_restock' THEN d.restock_number ELSE 0 END"
            " FROM deposits d JOIN kiosks k ON k.id = d.kiosk_id WHERE d.id = $1::uuid",
        deposit_id);
    audited("ok", (card_id ? "number: " : "") + outcome +
                      (card_id ? ", card ending " + last4 : std::string()));
    impl_->log->info("deposit {} of kiosk {} resolved by {} {}: {}{}", deposit_id, *kiosk,
                     roleName(who.role), entry.actor_id, outcome,
                     card_id ? ", card ending " + last4 : std::string());
    v1::Deposit out;
    out.set_deposit_id(row[0].as<std::string>());
    out.set_kiosk_id(row[1].as<std::string>());
    out.set_kiosk_name(row[2].as<std::string>());
    out.set_kiosk_address(row[3].as<std::string>());
    out.set_status(row[4].as<std::string>());
    out.set_last4(row[5].as<std::string>());
    out.set_decided_at(row[6].as<std::string>());
    out.set_stored_at(row[7].as<std::string>());
    out.set_collected_at(row[8].as<std::string>());
    out.set_decision(row[9].as<std::string>());
    out.set_location(text(row[10]));
    out.set_restock_number(row[11].as<std::uint32_t>());
    return jsonReply(out);
  });
}

}  // namespace lostcard::cloud
