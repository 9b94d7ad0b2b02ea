#include "lostcard/cloud/holder_api.hpp"

#include <openssl/crypto.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <pqxx/pqxx>
#include <set>

#include "lostcard/cloud/accounts.hpp"
#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/card_proof.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/notice.hpp"
#include "lostcard/wire/log.hpp"
#include "lostcard/wire/envelope.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

namespace {

std::string rfc3339Sql(const std::string& column) {
  return "coalesce(to_char(" + column +
         " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')";
}

std::string text(const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); }

v1::KioskInfo kioskInfo(const std::string& id, const std::string& name, const std::string& address,
                        double latitude, double longitude, const std::string& hours) {
  v1::KioskInfo k;
  k.set_kiosk_id(id);
  k.set_name(name);
  k.set_address(address);
  k.set_latitude(latitude);
  k.set_longitude(longitude);
  k.set_opening_hours(hours);
  k.set_map_url(mapUrl(latitude, longitude));
  return k;
}

// Where a deposit's card is, in the holder's words (FoundDeposit.status,
// HolderNotice.card_status): "decided", "stored" (in a slot), "releasing", "collected",
// "with_operator" (a card in the bin, or taken out by an operator to be put in a slot) or
// "returning_to_issuer". Of the deposit `d`.
constexpr const char* kHolderStatusSql =
    "CASE WHEN d.status = 'to_return' "
    "       OR (d.status = 'collected' AND d.return_marked_at IS NOT NULL) "
    "     THEN 'returning_to_issuer' "
    "     WHEN d.status = 'awaiting_restock' "
    "       OR (d.status = 'stored' AND d.location_kind = 'bin') "
    "       OR (d.status = 'collected' AND d.collected_by = 'operator') "
    "     THEN 'with_operator' "
    "     ELSE d.status END";

// What a holder is told of a card of theirs in a box.
struct CardWhereabouts {
  std::string status;  // as kHolderStatusSql
  std::string issuer_name, last4, kiosk_name, kiosk_address, opening_hours;
  std::uint32_t slot_number = 0;  // from 1; 0 when not in a slot
};

std::string holderMessage(const CardWhereabouts& w) {
  const std::string card =
      "Your " + (w.issuer_name.empty() ? "" : w.issuer_name + " ") + "card ending " + w.last4;
  const std::string box = "the box \"" + w.kiosk_name + "\", " + w.kiosk_address;
  if (w.status == "stored") {
    return card + " is in slot " + std::to_string(w.slot_number) + " of " + box + " (open " +
           w.opening_hours +
           "). Its pickup code was sent to you; if you no longer have it, ask for a new one.";
  }
  if (w.status == "decided") {
    return card + " was just left in " + box +
           " and is being put away; a notice with its pickup code follows.";
  }
  if (w.status == "releasing") {
    return card + ": slot " + std::to_string(w.slot_number) + " of " + box +
           " is opening for your pickup code.";
  }
  if (w.status == "collected") {
    return card + " was collected from " + box + ".";
  }
  if (w.status == "with_operator") {
    return card + " is with the operator of " + box +
           ": it could not wait in a slot yet. Once the operator puts it in a slot you get a "
           "notice with its pickup code; there is nothing to do until then.";
  }
  if (w.status == "returning_to_issuer") {
    return card + " is being returned to " +
           (w.issuer_name.empty() ? std::string("its issuer") : w.issuer_name) + " from " + box +
           " (it was not collected in time, or could not be handed over at the box). The box "
           "no longer holds it for you: ask your card's issuer.";
  }
  return card + " is in " + box + ".";
}

// The inbox's columns, in the order noticeFromRow reads them.
std::string noticeSelect() {
  return "SELECT o.id::text, o.deposit_id::text, o.holder_id, o.stream_seq, " +
         rfc3339Sql("o.created_at") +
         ", CASE WHEN o.delivered_at IS NOT NULL THEN 'delivered' "
         "       WHEN o.gave_up_at IS NOT NULL AND o.last_error LIKE 'withdrawn%' THEN 'withdrawn' "
         "       WHEN o.gave_up_at IS NOT NULL THEN 'given_up' ELSE 'waiting' END, "
         "o.payload_key_id, o.payload_nonce, o.payload_sealed, h.name, i.name, c.last4, k.id, "
         "k.name, k.address, k.latitude, k.longitude, k.opening_hours, d.location_slot, " +
         rfc3339Sql("d.stored_at") + ", " + kHolderStatusSql +
         " FROM notice_outbox o JOIN deposits d ON d.id = o.deposit_id "
         "JOIN cards c ON c.id = d.card_id JOIN holders h ON h.id = o.holder_id "
         "JOIN issuers i ON i.id = c.issuer_id JOIN kiosks k ON k.id = d.kiosk_id ";
}

// One inbox entry. A waiting notice is opened (it holds the code); a delivered, withdrawn or
// given-up one has had its payload wiped, so it is told again from the rows, without a code.
v1::HolderNotice noticeFromRow(const pqxx::row& r, const ImageVault& vault) {
  v1::HolderNotice out;
  out.set_notice_id(r[0].as<std::string>());
  out.set_deposit_id(r[1].as<std::string>());
  out.set_queued_at(r[4].as<std::string>());
  out.set_state(r[5].as<std::string>());
  out.set_card_status(r[20].as<std::string>());
  if (out.state() == "waiting" && !r[8].is_null()) {
    const SealedImage sealed{r[6].as<std::string>(), pqxx::binarystring(r[7]).str(),
                             pqxx::binarystring(r[8]).str()};
    std::string why;
    auto json = vault.open(
        sealed, noticeAssociatedData(out.notice_id(), out.deposit_id(), r[2].as<std::string>()),
        &why);
    if (json) {
      auto notice = noticeFromJson(*json);
      OPENSSL_cleanse(json->data(), json->size());
      if (notice) {
        *out.mutable_notice() = std::move(*notice);
        return out;
      }
    } else {
      wire::componentLogger("cloud.holder")
          ->warn("notice {} does not open: {}", out.notice_id(), why);
    }
  }
  auto* n = out.mutable_notice();
  n->set_notice_id(out.notice_id());
  n->set_deposit_id(out.deposit_id());
  n->set_holder_name(r[9].as<std::string>());
  n->set_issuer_name(r[10].as<std::string>());
  n->set_card_last4(r[11].as<std::string>());
  auto* k = n->mutable_kiosk();
  k->set_kiosk_id(r[12].as<std::string>());
  k->set_name(r[13].as<std::string>());
  k->set_address(r[14].as<std::string>());
  k->set_latitude(r[15].as<double>());
  k->set_longitude(r[16].as<double>());
  k->set_opening_hours(r[17].as<std::string>());
  n->set_map_url(mapUrl(k->latitude(), k->longitude()));
  n->set_slot_number(r[18].is_null() ? 0 : r[18].as<std::uint32_t>() + 1);
  n->set_stored_at(r[19].as<std::string>());
  n->set_message(holderMessage({.status = out.card_status(),
                                .issuer_name = n->issuer_name(),
                                .last4 = n->card_last4(),
                                .kiosk_name = k->name(),
                                .kiosk_address = k->address(),
                                .opening_hours = k->opening_hours(),
                                .slot_number = n->slot_number()}));
  return out;
}

std::string eventText(const v1::HolderNotice& notice) {
  // One line of JSON: protobuf's printer adds no newline unless asked to.
  std::string json = jsonReply(notice).body;
  std::string event = "id: " + notice.notice_id() + "\nevent: notice\ndata: " + json + "\n\n";
  OPENSSL_cleanse(json.data(), json.size());
  return event;
}

AuditEntry holderEntry(const Principal& who, const std::string& action, const std::string& kind,
                       std::vector<std::string> ids) {
  AuditEntry entry = auditBy(who);
  entry.action = action;
  entry.object_kind = kind;
  entry.object_ids = std::move(ids);
  return entry;
}

}  // namespace

// ---- HolderData ----

struct HolderData::Impl {
  Impl(HolderDataOptions o, Store& s, const CardHasher& h)
      : options(std::move(o)), store(s), hasher(h), pool(options.conninfo, options.pool_size) {}

  const ImageVault& vault() const { return noticeVaultOr(options.notice_vault); }

  // New codes of this holder in the hour before `now` (granted or refused).
  int newCodesLastHour(pqxx::transaction_base& tx, const std::string& holder_id,
                       std::chrono::system_clock::time_point now) {
    return tx
        .exec_params1(
            "SELECT count(*) FROM audit_log WHERE action = 'pickup.new_code' AND actor_id = $1 "
            "AND at > $2::timestamptz - interval '1 hour' AND at <= $2::timestamptz",
            holder_id, detail::pgTimestamp(now))[0]
        .as<int>();
  }

  HolderDataOptions options;
  Store& store;
  const CardHasher& hasher;
  detail::ConnectionPool pool;
};

HolderData::HolderData(HolderDataOptions options, Store& store, const CardHasher& hasher)
    : impl_(std::make_unique<Impl>(std::move(options), store, hasher)) {}

HolderData::~HolderData() = default;

CardDataRead<v1::HolderCardList> HolderData::cards(const Principal& who,
                                                   std::chrono::system_clock::time_point now) {
  CardDataRead<v1::HolderCardList> out;
  out.access = mayUseHolderApi(who);
  AuditEntry entry = holderEntry(who, "cards.read", "holder", {who.holder_id});
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    out.value.Clear();
    if (out.access.allowed) {
      const auto rows = tx.exec_params(
          "SELECT c.id, c.issuer_id, i.name, c.last4, " + rfc3339Sql("c.enrolled_at") +
              ", c.enrolled_by" +
              " FROM cards c JOIN issuers i ON i.id = c.issuer_id WHERE c.holder_id = $1 "
              "ORDER BY c.enrolled_at DESC, c.id LIMIT $2",
          who.holder_id, impl_->options.max_rows);
      for (const auto& r : rows) {
        auto* card = out.value.add_cards();
        card->set_card_id(r[0].as<std::int64_t>());
        card->set_issuer_id(r[1].as<std::string>());
        card->set_issuer_name(r[2].as<std::string>());
        card->set_last4(r[3].as<std::string>());
        card->set_enrolled_at(r[4].as<std::string>());
        card->set_enrolled_by(r[5].as<std::string>());
      }
    }
    entry.result = out.access.allowed ? "ok" : "refused";
    entry.detail = out.access.allowed ? std::to_string(out.value.cards_size()) + " cards"
                                      : out.access.reason;
    appendAudit(tx, entry, now);
    tx.commit();
  });
  return out;
}

CardDataRead<v1::HolderCard> HolderData::addCard(const Principal& who,
                                                 const v1::AddCardRequest& request,
                                                 std::chrono::system_clock::time_point now,
                                                 bool* created) {
  CardDataRead<v1::HolderCard> out;
  out.access = mayUseHolderApi(who);
  std::string digits = cardDigits(request.number());
  if (out.access.allowed && request.issuer_id().empty()) {
    out.access = {false, 400, "issuer_id is required"};
  }
  if (out.access.allowed && (digits.size() < 8 || digits.size() > 19)) {
    out.access = {false, 400, "number must be 8 to 19 digits (spaces or dashes between them)"};
  }
  std::string hash;
  if (out.access.allowed) {
    hash = impl_->hasher.hash(digits);
  }
  const std::string last4 = digits.size() >= 4 ? digits.substr(digits.size() - 4) : "";
  const bool proven = out.access.allowed && checkCardProof(impl_->hasher, request.issuer_id(),
                                                           who.holder_id, digits, request.proof());
  OPENSSL_cleanse(digits.data(), digits.size());
  AuditEntry entry = holderEntry(who, "cards.add", "issuer", {request.issuer_id()});
  bool made = false;
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    made = false;
    out.value.Clear();
    if (out.access.allowed) {
      const auto issuer =
          tx.exec_params("SELECT name FROM issuers WHERE id = $1", request.issuer_id());
      if (issuer.empty()) {
        out.access = {false, 404, "no such issuer"};
      } else if (!proven) {
        out.access = Access::forbid("the proof is not the issuer's for this holder and number");
      } else {
        // Inserted unless the number is enrolled already (then nothing changes).
        auto row = tx.exec_params(
            "INSERT INTO cards (issuer_id, holder_id, number_key_id, number_hmac, last4, "
            "                   enrolled_at, enrolled_by) "
            "VALUES ($1, $2, $3, $4, $5, $6::timestamptz, 'holder') "
            "ON CONFLICT (number_key_id, number_hmac) DO NOTHING RETURNING id",
            request.issuer_id(), who.holder_id, impl_->hasher.keyId(), pqxx::binarystring(hash),
            last4, detail::pgTimestamp(now));
        made = !row.empty();
        const auto card = tx.exec_params(
            "SELECT id, issuer_id, holder_id, last4, " + rfc3339Sql("enrolled_at") +
                ", enrolled_by FROM cards WHERE number_key_id = $1 AND number_hmac = $2",
            impl_->hasher.keyId(), pqxx::binarystring(hash));
        if (card[0][2].as<std::string>() != who.holder_id ||
            card[0][1].as<std::string>() != request.issuer_id()) {
          out.access = {false, 409,
                        "this card is enrolled to another holder or by another issuer; ask your "
                        "issuer"};
        } else {
          out.value.set_card_id(card[0][0].as<std::int64_t>());
          out.value.set_issuer_id(request.issuer_id());
          out.value.set_issuer_name(issuer[0][0].as<std::string>());
          out.value.set_last4(card[0][3].as<std::string>());
          out.value.set_enrolled_at(card[0][4].as<std::string>());
          out.value.set_enrolled_by(card[0][5].as<std::string>());
        }
      }
    }
    entry.result = out.access.allowed ? "ok" : "refused";
    entry.detail = out.access.allowed
                       ? (made ? "card " : "already enrolled: card ") +
                             std::to_string(out.value.card_id()) + " ending " + last4
                       : out.access.reason;
    appendAudit(tx, entry, now);
    tx.commit();
  });
  if (created != nullptr) {
    *created = made && out.access.allowed;
  }
  return out;
}

CardDataRead<v1::CardQueryResult> HolderData::queryCard(const Principal& who,
                                                        const v1::CardQuery& query,
                                                        std::chrono::system_clock::time_point now) {
  CardDataRead<v1::CardQueryResult> out;
  out.access = mayUseHolderApi(who);
  if (out.access.allowed && (query.card_id() != 0) == !query.number().empty()) {
    out.access = {false, 400, "name one of your cards: either card_id or number"};
  }
  std::string number_hash;
  if (out.access.allowed && !query.number().empty()) {
    std::string digits = cardDigits(query.number());
    if (digits.size() < 8 || digits.size() > 19) {
      out.access = {false, 400, "number must be 8 to 19 digits (spaces or dashes between them)"};
    } else {
      number_hash = impl_->hasher.hash(digits);
    }
    OPENSSL_cleanse(digits.data(), digits.size());
  }
  AuditEntry entry = holderEntry(who, "cards.query", "holder", {who.holder_id});
  // The deposits found, read in the audited transaction; the notices pushed after it.
  struct Waiting {
    std::string deposit_id;
    bool in_slot = false;
    std::string notice_id;  // a notice on its way
    bool returning = false;  // going back to its issuer: no code will come
  };
  std::vector<Waiting> found;
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    out.value.Clear();
    found.clear();
    if (out.access.allowed) {
      const auto card =
          query.card_id() != 0
              ? tx.exec_params("SELECT id FROM cards WHERE id = $1 AND holder_id = $2",
                               query.card_id(), who.holder_id)
              : tx.exec_params(
                    "SELECT id FROM cards WHERE number_key_id = $1 AND number_hmac = $2 "
                    "AND holder_id = $3",
                    impl_->hasher.keyId(), pqxx::binarystring(number_hash), who.holder_id);
      if (card.empty() && query.card_id() != 0) {
        out.access = {false, 404, "no such card of yours"};
      } else if (!card.empty()) {
        const auto card_id = card[0][0].as<std::int64_t>();
        // Cards still in a box or on their way somewhere; not those collected by their holder.
        const auto rows = tx.exec_params(
            std::string("SELECT d.id::text, ") + kHolderStatusSql +
                ", coalesce(d.last4, ''), k.id, k.name, k.address, "
                "       k.latitude, k.longitude, k.opening_hours, d.location_kind, "
                "       d.location_slot, " +
                rfc3339Sql("d.stored_at") +
                ", (SELECT o.id::text FROM notice_outbox o WHERE o.deposit_id = d.id "
                "   AND o.delivered_at IS NULL AND o.gave_up_at IS NULL "
                "   ORDER BY o.notice_seq DESC LIMIT 1), i.name "
                "FROM deposits d JOIN kiosks k ON k.id = d.kiosk_id "
                "JOIN cards c ON c.id = d.card_id JOIN issuers i ON i.id = c.issuer_id "
                "WHERE d.card_id = $1 AND (d.status IN ('decided', 'stored', 'releasing', "
                "                                       'to_return', 'awaiting_restock') "
                "  OR (d.status = 'collected' AND d.collected_by = 'operator')) "
                "ORDER BY d.decided_at DESC, d.id",
            card_id);
        for (const auto& r : rows) {
          auto* d = out.value.add_deposits();
          d->set_deposit_id(r[0].as<std::string>());
          d->set_status(r[1].as<std::string>());
          d->set_last4(r[2].as<std::string>());
          *d->mutable_kiosk() =
              kioskInfo(r[3].as<std::string>(), r[4].as<std::string>(), r[5].as<std::string>(),
                        r[6].as<double>(), r[7].as<double>(), r[8].as<std::string>());
          const bool in_slot = text(r[9]) == "slot" && d->status() != "with_operator" &&
                               d->status() != "returning_to_issuer";
          d->set_slot_number(in_slot ? r[10].as<std::uint32_t>() + 1 : 0);
          d->set_stored_at(r[11].as<std::string>());
          d->set_message(holderMessage({.status = d->status(),
                                        .issuer_name = r[13].as<std::string>(),
                                        .last4 = d->last4(),
                                        .kiosk_name = d->kiosk().name(),
                                        .kiosk_address = d->kiosk().address(),
                                        .opening_hours = d->kiosk().opening_hours(),
                                        .slot_number = d->slot_number()}));
          found.push_back({d->deposit_id(), in_slot && d->status() == "stored", text(r[12]),
                           d->status() == "returning_to_issuer"});
        }
        out.value.set_found(out.value.deposits_size() > 0);
        // The holder is coming: the unclaimed sweep ages these cards from now (unclaimed.hpp).
        tx.exec_params(
            "UPDATE deposits SET holder_action_at = $2::timestamptz "
            "WHERE card_id = $1 AND status IN ('decided', 'stored', 'releasing', "
            "                                  'awaiting_restock')",
            card_id, detail::pgTimestamp(now));
      }
    }
    entry.result = out.access.allowed ? "ok" : "refused";
    entry.detail = out.access.allowed
                       ? std::to_string(out.value.deposits_size()) + " deposits found"
                       : out.access.reason;
    appendAudit(tx, entry, now);
    tx.commit();
  });
  // The retrieval notice pushed again: one on its way already carries a working code; else a
  // new code (the old one exists only as a hash), within the limit on new codes.
  for (int i = 0; i < out.value.deposits_size(); ++i) {
    auto* d = out.value.mutable_deposits(i);
    const auto& w = found[static_cast<std::size_t>(i)];
    if (w.returning) {
      d->set_notice("none");
    } else if (!w.in_slot) {
      d->set_notice("not_in_slot");
    } else if (!w.notice_id.empty()) {
      d->set_notice("on_its_way");
      d->set_notice_id(w.notice_id);
    } else {
      const auto fresh = newCode(who, w.deposit_id, now);
      if (fresh.access.allowed) {
        d->set_notice("queued");
        d->set_notice_id(fresh.value.notice_id());
      } else {
        d->set_notice(fresh.access.status == 429 ? "throttled" : "not_in_slot");
      }
    }
  }
  return out;
}

CardDataRead<v1::HolderNoticeList> HolderData::notices(const Principal& who,
                                                       std::chrono::system_clock::time_point now) {
  CardDataRead<v1::HolderNoticeList> out;
  out.access = mayUseHolderApi(who);
  AuditEntry entry = holderEntry(who, "notices.read", "holder", {who.holder_id});
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    out.value.Clear();
    if (out.access.allowed) {
      const auto rows = tx.exec_params(noticeSelect() +
                                           "WHERE o.holder_id = $1 AND c.holder_id = $1 "
                                           "ORDER BY o.stream_seq DESC LIMIT $2",
                                       who.holder_id, impl_->options.max_rows);
      for (const auto& r : rows) {
        *out.value.add_notices() = noticeFromRow(r, impl_->vault());
      }
    }
    entry.result = out.access.allowed ? "ok" : "refused";
    entry.detail = out.access.allowed ? std::to_string(out.value.notices_size()) + " notices"
                                      : out.access.reason;
    appendAudit(tx, entry, now);
    tx.commit();
  });
  return out;
}

CardDataRead<v1::NewCodeResult> HolderData::newCode(const Principal& who,
                                                    const std::string& deposit_id,
                                                    std::chrono::system_clock::time_point now) {
  CardDataRead<v1::NewCodeResult> out;
  out.access = mayUseHolderApi(who);
  if (!out.access.allowed) {
    return out;
  }
  // The limit first (a refused request counts too, so ids cannot be probed without end).
  const bool over = impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const bool over_limit =
        impl_->newCodesLastHour(tx, who.holder_id, now) >= impl_->options.max_new_codes_per_hour;
    if (over_limit) {
      AuditEntry entry = holderEntry(who, "pickup.new_code", "deposit",
                                     {wire::isUuid(deposit_id) ? deposit_id : "?"});
      entry.actor_id = who.holder_id;
      entry.result = "refused";
      entry.detail = "throttled";
      appendAudit(tx, entry, now);
      tx.commit();
    }
    return over_limit;
  });
  if (over) {
    out.access = {false, 429, "too many new pickup codes in the last hour; try again later"};
    return out;
  }
  const auto made = impl_->store.issueNewPickupCode(deposit_id, who.holder_id, now);
  if (made.ok) {
    out.value.set_deposit_id(deposit_id);
    out.value.set_notice_id(made.notice_id);
    return out;
  }
  const bool not_found = made.error == "no such deposit of this holder";
  out.access = not_found ? Access{false, 404, "no such deposit of yours"}
                         : Access{false, 409, made.error};
  impl_->pool.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // The holder id as actor, as Store writes the granted ones: the limit counts both.
    AuditEntry entry = holderEntry(who, "pickup.new_code", "deposit",
                                   {wire::isUuid(deposit_id) ? deposit_id : "?"});
    entry.actor_id = who.holder_id;
    entry.result = "refused";
    entry.detail = out.access.reason;
    appendAudit(tx, entry, now);
    tx.commit();
  });
  return out;
}

std::optional<v1::KioskInfo> HolderData::kiosk(const std::string& kiosk_id) {
  const auto k = impl_->store.findKiosk(kiosk_id);
  if (!k) {
    return std::nullopt;
  }
  return kioskInfo(k->id, k->name, k->address, k->latitude, k->longitude, k->opening_hours);
}

// ---- NoticeStreams ----

struct NoticeStreams::Impl {
  explicit Impl(NoticeStreamOptions o) : options(std::move(o)) {}

  struct Stream {
    std::string holder_id;
    std::int64_t after_seq = 0;       // sent: every notice of the holder up to this one
    std::set<std::string> sent;       // ids sent, so a notice is never sent twice
    std::shared_ptr<EventSink> sink;
  };
  struct Request {
    std::string holder_id, after_notice_id;
    std::shared_ptr<EventSink> sink;
  };

  const ImageVault& vault() const { return noticeVaultOr(options.notice_vault); }

  void send(Stream& s, const v1::HolderNotice& notice, std::int64_t seq) {
    if (s.sent.insert(notice.notice_id()).second) {
      s.sink->send(eventText(notice));
    }
    s.after_seq = std::max(s.after_seq, seq);
  }

  // The holder's notices after s.after_seq, oldest first.
  void catchUp(pqxx::connection& c, Stream& s) {
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(noticeSelect() +
                                         "WHERE o.holder_id = $1 AND c.holder_id = $1 "
                                         "AND o.stream_seq > $2 ORDER BY o.stream_seq LIMIT $3",
                                     s.holder_id, s.after_seq, options.max_catch_up);
    for (const auto& r : rows) {
      send(s, noticeFromRow(r, vault()), r[3].as<std::int64_t>());
    }
  }

  // A new stream: where it starts, what it missed, then it is listed.
  void open(pqxx::connection& c, Request request) {
    Stream s{request.holder_id, 0, {}, std::move(request.sink)};
    {
      pqxx::read_transaction tx(c);
      std::optional<pqxx::row> resume;
      if (wire::isUuid(request.after_notice_id)) {
        const auto rows = tx.exec_params(
            "SELECT stream_seq FROM notice_outbox WHERE id = $1::uuid AND holder_id = $2",
            request.after_notice_id, s.holder_id);
        if (!rows.empty()) {
          resume = rows[0];
        }
      }
      s.after_seq = resume ? (*resume)[0].as<std::int64_t>()
                           : tx.exec_params1("SELECT coalesce(max(stream_seq), 0) FROM "
                                             "notice_outbox WHERE holder_id = $1",
                                             s.holder_id)[0]
                                 .as<std::int64_t>();
    }
    s.sink->send(": stream open\n\n");
    catchUp(c, s);
    streams.push_back(std::move(s));
  }

  // A notice was queued: to the streams of its holder.
  void deliver(pqxx::connection& c, const std::string& notice_id) {
    if (!wire::isUuid(notice_id)) {
      return;
    }
    pqxx::read_transaction tx(c);
    const auto rows = tx.exec_params(
        noticeSelect() + "WHERE o.id = $1::uuid AND c.holder_id = o.holder_id", notice_id);
    if (rows.empty()) {
      return;
    }
    const std::string holder = rows[0][2].as<std::string>();
    std::optional<v1::HolderNotice> notice;
    for (auto& s : streams) {
      if (s.holder_id == holder && s.sink->isOpen()) {
        if (!notice) {
          notice = noticeFromRow(rows[0], vault());
        }
        send(s, *notice, rows[0][3].as<std::int64_t>());
      }
    }
  }

  NoticeStreamOptions options;
  mutable std::mutex mutex;
  std::deque<Request> requests;  // guarded by mutex
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open_count{0};
  std::condition_variable stopped;
  std::vector<Stream> streams;  // the thread's own
};

namespace {

class NoticeListener : public pqxx::notification_receiver {
 public:
  NoticeListener(pqxx::connection_base& c, std::vector<std::string>& ids)
      : pqxx::notification_receiver(c, Store::kNoticeChannel), ids_(ids) {}
  void operator()(const std::string& payload, int) override { ids_.push_back(payload); }

 private:
  std::vector<std::string>& ids_;
};

}  // namespace

NoticeStreams::NoticeStreams(NoticeStreamOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

NoticeStreams::~NoticeStreams() { stop(); }

void NoticeStreams::start() {
  if (!thread_.joinable()) {
    impl_->stopping = false;
    thread_ = std::thread([this] { run(); });
  }
}

void NoticeStreams::stop() {
  impl_->stopping = true;
  impl_->stopped.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void NoticeStreams::subscribe(const std::string& holder_id, const std::string& after_notice_id,
                              std::shared_ptr<EventSink> sink) {
  std::lock_guard lock(impl_->mutex);
  impl_->requests.push_back({holder_id, after_notice_id, std::move(sink)});
}

std::size_t NoticeStreams::openStreams() const { return impl_->open_count; }

void NoticeStreams::run() {
  auto log = wire::componentLogger("cloud.holder");
  auto& m = *impl_;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<NoticeListener> listener;
  std::vector<std::string> ids;
  auto last_keepalive = std::chrono::steady_clock::now();
  while (!m.stopping) {
    try {
      if (!conn) {
        conn = std::make_unique<pqxx::connection>(m.options.conninfo);
        listener = std::make_unique<NoticeListener>(*conn, ids);
        // Notices queued while nobody listened.
        for (auto& s : m.streams) {
          m.catchUp(*conn, s);
        }
      }
      std::deque<Impl::Request> requests;
      {
        std::lock_guard lock(m.mutex);
        requests.swap(m.requests);
      }
      for (auto& r : requests) {
        m.open(*conn, std::move(r));
      }
      conn->await_notification(
          0, static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   m.options.listen_slice)
                                   .count()));
      std::vector<std::string> queued;
      queued.swap(ids);
      for (const auto& id : queued) {
        m.deliver(*conn, id);
      }
      if (std::chrono::steady_clock::now() - last_keepalive >= m.options.keepalive) {
        last_keepalive = std::chrono::steady_clock::now();
        for (auto& s : m.streams) {
          s.sink->send(": keep-alive\n\n");
        }
      }
      m.streams.erase(std::remove_if(m.streams.begin(), m.streams.end(),
                                     [](const Impl::Stream& s) { return !s.sink->isOpen(); }),
                      m.streams.end());
      m.open_count = m.streams.size();
    } catch (const std::exception& e) {
      log->error("notice streams: {}; reconnecting", e.what());
      listener.reset();
      conn.reset();
      ids.clear();
      std::unique_lock lock(m.mutex);
      m.stopped.wait_for(lock, std::chrono::seconds(1), [&] { return m.stopping.load(); });
    }
  }
  listener.reset();
  conn.reset();
  m.streams.clear();
  m.open_count = 0;
}

// ---- Routes ----

namespace {

template <class T>
ApiReply holderReply(const CardDataRead<T>& read, unsigned ok_status = 200) {
  if (!read.access.allowed) {
    const char* code = read.access.status == 404   ? "not_found"
                       : read.access.status == 400 ? "bad_request"
                       : read.access.status == 409 ? "conflict"
                       : read.access.status == 410 ? "gone"
                       : read.access.status == 422 ? "unprocessable"
                       : read.access.status == 429 ? "too_many_requests"
                                                   : "forbidden";
    auto reply = errorReply(read.access.status, code, read.access.reason);
    if (read.access.status == 429) {
      reply.headers.emplace_back("Retry-After", "3600");
    }
    return reply;
  }
  return jsonReply(read.value, ok_status);
}

// Sign-up and the contact channel (holder_contact.hpp).
void addContactRoutes(HttpRouter& router, HolderContacts& contacts) {
  router.add(http::verb::post, "/v1/holder/signup", Auth::kNone, [&contacts](const ApiRequest& r) {
    v1::SignupRequest request;
    if (auto bad = parseJsonBody(r, request)) {
      return *bad;
    }
    auto result = contacts.signUp(request, r.remote, r.now);
    request.mutable_password()->assign(request.password().size(), '0');
    return holderReply(result, 201);
  });

  router.add(http::verb::get, "/v1/holder/contact", Auth::kRequired,
             [&contacts](const ApiRequest& r) {
               return holderReply(contacts.contact(r.principal(), r.now));
             });

  router.add(http::verb::put, "/v1/holder/contact", Auth::kRequired,
             [&contacts](const ApiRequest& r) {
               v1::ContactChangeRequest request;
               if (auto bad = parseJsonBody(r, request)) {
                 return *bad;
               }
               return holderReply(contacts.change(r.principal(), request, r.now), 202);
             });

  router.add(http::verb::post, "/v1/holder/contact/verify", Auth::kRequired,
             [&contacts](const ApiRequest& r) {
               v1::ContactVerifyRequest request;
               if (auto bad = parseJsonBody(r, request)) {
                 return *bad;
               }
               auto result = contacts.verify(r.principal(), request, r.now);
               request.mutable_code()->assign(request.code().size(), '0');
               return holderReply(result);
             });

  router.add(http::verb::post, "/v1/holder/contact/resend", Auth::kRequired,
             [&contacts](const ApiRequest& r) {
               return holderReply(contacts.resend(r.principal(), r.now), 202);
             });
}

}  // namespace

void addHolderRoutes(HttpRouter& router, const HolderApi& holder) {
  HolderData& data = holder.data;
  NoticeStreams& streams = holder.streams;

  router.add(http::verb::get, "/v1/holder/cards", Auth::kRequired,
             [&data](const ApiRequest& r) { return holderReply(data.cards(r.principal(), r.now)); });

  router.add(http::verb::post, "/v1/holder/cards", Auth::kRequired, [&data](const ApiRequest& r) {
    v1::AddCardRequest request;
    if (auto bad = parseJsonBody(r, request)) {
      return *bad;
    }
    bool created = false;
    auto result = data.addCard(r.principal(), request, r.now, &created);
    request.mutable_number()->assign(request.number().size(), '0');
    return holderReply(result, created ? 201 : 200);
  });

  router.add(http::verb::post, "/v1/holder/card-queries", Auth::kRequired,
             [&data](const ApiRequest& r) {
               v1::CardQuery query;
               if (auto bad = parseJsonBody(r, query)) {
                 return *bad;
               }
               auto result = data.queryCard(r.principal(), query, r.now);
               query.mutable_number()->assign(query.number().size(), '0');
               return holderReply(result);
             });

  router.add(http::verb::get, "/v1/holder/notices", Auth::kRequired,
             [&data](const ApiRequest& r) {
               return holderReply(data.notices(r.principal(), r.now));
             });

  router.add(http::verb::get, "/v1/holder/notices/stream", Auth::kRequired,
             [&streams](const ApiRequest& r) {
               const auto access = mayUseHolderApi(r.principal());
               if (!access.allowed) {
                 return errorReply(access.status, "forbidden", access.reason);
               }
               ApiReply reply;
               reply.events = [&streams, holder_id = r.principal().holder_id,
                               after = r.last_event_id](std::shared_ptr<EventSink> sink) {
                 streams.subscribe(holder_id, after, std::move(sink));
               };
               return reply;
             });

  router.add(http::verb::post, "/v1/holder/deposits/{id}/new-code", Auth::kRequired,
             [&data](const ApiRequest& r) {
               return holderReply(data.newCode(r.principal(), r.params.at("id"), r.now), 201);
             });

  if (holder.contacts != nullptr) {
    addContactRoutes(router, *holder.contacts);
  }

  router.add(http::verb::get, "/v1/kiosks/{id}", Auth::kNone, [&data](const ApiRequest& r) {
    const auto kiosk = data.kiosk(r.params.at("id"));
    if (!kiosk) {
      return errorReply(404, "not_found", "no such kiosk");
    }
    return jsonReply(*kiosk);
  });
}

}  // namespace lostcard::cloud
