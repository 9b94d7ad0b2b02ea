#pragma once
// PostgreSQL plumbing shared by Store and NoticeDelivery. Internal: not a public header.
//
// ConnectionPool hands out connections one call at a time and replaces those that broke (after
// a broken one it drops every idle connection too, as a server restart breaks them all):
//
//   ConnectionPool pool(conninfo, 4);
//   auto n = pool.run([&](pqxx::connection& c) { pqxx::work tx(c); ...; tx.commit(); return n; });
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace lostcard::cloud::detail {

class ConnectionPool {
 public:
  ConnectionPool(std::string conninfo, int size);

  // Runs `f` with a connection of its own. When `f` meets a broken connection (the server
  // restarted, the network dropped), the connection is dropped and `f` runs once more on a new
  // one; so `f` must be safe to repeat (one transaction that either committed or not).
  template <class F>
  auto run(F&& f) -> decltype(f(std::declval<pqxx::connection&>())) {
    for (int attempt = 1;; ++attempt) {
      Lease lease(*this);
      try {
        return f(lease.connection());
      } catch (const pqxx::broken_connection& e) {
        lease.discard();
        // A broken connection usually means the server restarted: every idle connection is
        // as dead as this one, and the retry must not pick one of them.
        dropIdle();
        logBrokenConnection(e, attempt == 1);
        if (attempt == 2) {
          throw;
        }
      }
    }
  }

 private:
  class Lease {
   public:
    explicit Lease(ConnectionPool& pool);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    pqxx::connection& connection() { return *connection_; }
    // The connection is not given back to the pool.
    void discard() { connection_.reset(); }

   private:
    ConnectionPool& pool_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  static void logBrokenConnection(const std::exception& e, bool retrying);
  std::unique_ptr<pqxx::connection> acquire();
  void release(std::unique_ptr<pqxx::connection> connection);
  void dropIdle();

  const std::string conninfo_;
  const int size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int leased_ = 0;
};

// A PostgreSQL array literal of text elements, each quoted ({"a","b\"c"}), for a $n::text[]
// parameter: libpqxx 6.4 has no array parameters.
std::string textArrayLiteral(const std::vector<std::string>& items);

// "2024-05-01 12:00:00.123456+00": a timestamptz literal for a query parameter.
std::string pgTimestamp(std::chrono::system_clock::time_point t);

// "2024-05-01T12:00:00Z": a time as the API's and the webhooks' JSON give it (whole seconds).
std::string rfc3339(std::chrono::system_clock::time_point t);

// The SQL expression that reads a timestamptz column as microseconds since the epoch.
std::string epochMicrosSql(const std::string& column);
std::chrono::system_clock::time_point fromEpochMicros(std::int64_t micros);

// Restock numbers (1..999, unique among a kiosk's cards waiting to be put back in a slot) are
// given under the kiosk's row lock, so two transactions giving numbers at one box take turns and
// never pick the same one. Take it before locking any of the kiosk's deposit rows: every
// transaction then waits for locks in the same order and none deadlocks another.
void lockRestockNumbers(pqxx::transaction_base& tx, const std::string& kiosk_id);

// The lowest restock number that no card of `kiosk_id` waiting to be put back holds, or none
// when all 999 are taken. Under lockRestockNumbers.
std::optional<int> freeRestockNumber(pqxx::transaction_base& tx, const std::string& kiosk_id);

// Gives the lowest free numbers to the kiosk's cards waiting to be put back without one (a
// holder's card that left the bin, or one that found every number taken), oldest first; returns
// how many still have none (all 999 taken). Under lockRestockNumbers.
int numberWaitingRestocks(pqxx::transaction_base& tx, const std::string& kiosk_id);

}  // namespace lostcard::cloud::detail
