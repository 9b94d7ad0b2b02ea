#include "registry_pg.hpp"

#include <cstdio>
#include <ctime>

#include "lostcard/wire/log.hpp"

namespace lostcard::cloud::detail {

ConnectionPool::ConnectionPool(std::string conninfo, int size)
    : conninfo_(std::move(conninfo)), size_(size < 1 ? 1 : size) {}

void ConnectionPool::logBrokenConnection(const std::exception& e, bool retrying) {
  std::string what = e.what();
  while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) {
    what.pop_back();
  }
  wire::componentLogger("cloud.registry")
      ->warn("database connection broken ({}){}", what, retrying ? "; retrying on a new one" : "");
}

std::unique_ptr<pqxx::connection> ConnectionPool::acquire() {
  {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || leased_ < size_; });
    ++leased_;
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  // Connect outside the lock so other callers keep going meanwhile.
  try {
    return std::make_unique<pqxx::connection>(conninfo_);
  } catch (...) {
    std::lock_guard lock(mutex_);
    --leased_;
    available_.notify_one();
    throw;
  }
}

void ConnectionPool::dropIdle() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(idle_);
  }
  // Closed outside the lock: closing a dead connection may wait on the network.
}

void ConnectionPool::release(std::unique_ptr<pqxx::connection> connection) {
  std::lock_guard lock(mutex_);
  --leased_;
  if (connection && connection->is_open()) {
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

ConnectionPool::Lease::Lease(ConnectionPool& pool) : pool_(pool), connection_(pool.acquire()) {}

ConnectionPool::Lease::~Lease() { pool_.release(std::move(connection_)); }

std::string textArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string pgTimestamp(std::chrono::system_clock::time_point t) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
  long fraction = static_cast<long>(micros % 1000000);
  if (fraction < 0) {
    fraction += 1000000;
    seconds -= 1;
  }
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &parts);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%06ld+00", date, fraction);
  return out;
}

namespace {

// The kiosk's free restock numbers, lowest first, with their rank `r` (1, 2, ...).
constexpr const char* kFreeRestockNumbersSql =
    "SELECT n, row_number() OVER (ORDER BY n) AS r FROM generate_series(1, 999) n "
    "WHERE NOT EXISTS (SELECT 1 FROM deposits WHERE kiosk_id = $1 "
    "  AND status = 'awaiting_restock' AND restock_number = n)";

}  // namespace

void lockRestockNumbers(pqxx::transaction_base& tx, const std::string& kiosk_id) {
  tx.exec_params("SELECT 1 FROM kiosks WHERE id = $1 FOR UPDATE", kiosk_id);
}

std::optional<int> freeRestockNumber(pqxx::transaction_base& tx, const std::string& kiosk_id) {
  const auto free = tx.exec_params(
      std::string("SELECT n FROM (") + kFreeRestockNumbersSql + ") f ORDER BY n LIMIT 1",
      kiosk_id);
  if (free.empty()) {
    return std::nullopt;
  }
  return free[0][0].as<int>();
}

int numberWaitingRestocks(pqxx::transaction_base& tx, const std::string& kiosk_id) {
  tx.exec_params(std::string("WITH free AS (") + kFreeRestockNumbersSql +
                     "), waiting AS (SELECT id, row_number() OVER ("
                     "  ORDER BY coalesce(collected_at, resolved_at, decided_at), id) AS r "
                     "  FROM deposits WHERE kiosk_id = $1 AND status = 'awaiting_restock' "
                     "  AND restock_number IS NULL) "
                     "UPDATE deposits d SET restock_number = free.n FROM waiting "
                     "JOIN free USING (r) WHERE d.id = waiting.id",
                 kiosk_id);
  return tx
      .exec_params1("SELECT count(*) FROM deposits WHERE kiosk_id = $1 "
                    "AND status = 'awaiting_restock' AND restock_number IS NULL",
                    kiosk_id)[0]
      .as<int>();
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return out;
}

std::string epochMicrosSql(const std::string& column) {
  return "(extract(epoch FROM " + column + ") * 1000000)::bigint";
}

std::chrono::system_clock::time_point fromEpochMicros(std::int64_t micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(micros)));
}

}  // namespace lostcard::cloud::detail
