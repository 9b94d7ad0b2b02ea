#include "lostcard/cloud/unclaimed.hpp"

#include <pqxx/pqxx>

#include "lostcard/cloud/audit.hpp"
#include "lostcard/cloud/delivery.hpp"
#include "lostcard/cloud/issuer_events.hpp"
#include "lostcard/wire/log.hpp"
#include "registry_pg.hpp"

namespace lostcard::cloud {

int markUnclaimedForReturn(const std::string& conninfo, std::chrono::system_clock::time_point now,
                           std::chrono::hours after) {
  pqxx::connection c(conninfo);
  pqxx::work tx(c);
  const std::string now_sql = detail::pgTimestamp(now);
  const auto rows = tx.exec_params(
      "SELECT id::text, kiosk_id, coalesce(last4, '') FROM deposits "
      "WHERE status = 'stored' AND decision = 'store' AND location_kind = 'slot' "
      "  AND stored_at <= $1::timestamptz "
      "  AND (holder_action_at IS NULL OR holder_action_at <= $1::timestamptz) "
      "ORDER BY stored_at FOR UPDATE SKIP LOCKED",
      detail::pgTimestamp(now - after));
  if (rows.empty()) {
    return 0;
  }
  std::vector<std::string> ids;
  for (const auto& r : rows) {
    const std::string id = r[0].as<std::string>();
    tx.exec_params(
        "UPDATE deposits SET status = 'to_return', return_marked_at = $2::timestamptz, "
        "  return_reason = 'unclaimed' WHERE id = $1::uuid",
        id, now_sql);
    tx.exec_params(
        std::string("UPDATE notice_outbox SET gave_up_at = $2::timestamptz, "
                    "  last_error = 'withdrawn: unclaimed, returned to the issuer', ") +
            kWipeNoticePayloadSql +
            " WHERE deposit_id = $1::uuid AND delivered_at IS NULL AND gave_up_at IS NULL",
        id, now_sql);
    queueIssuerEvent(tx, id, "returned_to_issuer", now);
    wire::componentLogger("cloud.registry")
        ->info(
            "deposit {} of kiosk {} (card ending {}) unclaimed for {} days: marked for return "
            "to its issuer",
            id, r[1].as<std::string>(), r[2].as<std::string>(), after.count() / 24);
    ids.push_back(id);
  }
  appendAudit(tx,
              {.actor_role = "system",
               .actor_id = "",
               .action = "deposits.unclaimed",
               .object_kind = "deposit",
               .object_ids = ids,
               .result = "ok",
               .detail = "marked for return to the issuer after " +
                         std::to_string(after.count() / 24) + " days"},
              now);
  tx.commit();
  return static_cast<int>(ids.size());
}

UnclaimedSweep::UnclaimedSweep(std::string conninfo, UnclaimedOptions options)
    : conninfo_(std::move(conninfo)), options_(std::move(options)) {}

UnclaimedSweep::~UnclaimedSweep() { stop(); }

void UnclaimedSweep::start() {
  std::lock_guard lock(mutex_);
  if (!thread_.joinable()) {
    stopping_ = false;
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!stopping_) {
        lock.unlock();
        sweepOnce();
        lock.lock();
        wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
      }
    });
  }
}

void UnclaimedSweep::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

int UnclaimedSweep::sweepOnce() {
  try {
    return markUnclaimedForReturn(conninfo_, options_.clock(), options_.after);
  } catch (const std::exception& e) {
    wire::componentLogger("cloud.registry")
        ->warn("marking unclaimed cards for return failed (next try in {} s): {}",
               std::chrono::duration_cast<std::chrono::seconds>(options_.interval).count(),
               e.what());
    return -1;
  }
}

}  // namespace lostcard::cloud
