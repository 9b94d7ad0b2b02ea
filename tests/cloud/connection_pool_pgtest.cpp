// ConnectionPool (cloud/src/registry_pg.hpp, internal) across a database restart: every idle
// connection dies with the server, and a call must still succeed on its one retry.
#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <set>

#include "lostcard/test/pg_test_db.hpp"
#include "registry_pg.hpp"

using lostcard::cloud::detail::ConnectionPool;

namespace {

int backendPid(pqxx::connection& c) {
  pqxx::work tx(c);
  return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
}

// What a server restart does to this database's sessions, without restarting the cluster that
// other tests share.
int terminateSessions(const lostcard::test::PgTestDb& db) {
  pqxx::connection admin(lostcard::test::PgTestDb::clusterConninfo());
  pqxx::work tx(admin);
  const auto killed = tx.exec1(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = " +
      tx.quote(db.name()) + " AND pid <> pg_backend_pid()");
  tx.commit();
  return killed[0].as<int>();
}

}  // namespace

TEST_CASE("after every pooled connection died, the next call succeeds on a fresh one") {
  lostcard::test::PgTestDb db;
  ConnectionPool pool(db.conninfo(), 3);
  // Three nested calls hold three connections at once; all three go back to the pool idle.
  std::set<int> pids;
  pool.run([&](pqxx::connection& a) {
    pids.insert(backendPid(a));
    return pool.run([&](pqxx::connection& b) {
      pids.insert(backendPid(b));
      return pool.run([&](pqxx::connection& c) { return pids.insert(backendPid(c)).second; });
    });
  });
  REQUIRE(pids.size() == 3);
  REQUIRE(terminateSessions(db) == 3);

  const int pid = pool.run([](pqxx::connection& c) { return backendPid(c); });
  CHECK(pids.count(pid) == 0);
  // And the pool keeps working after that.
  CHECK(pool.run([](pqxx::connection& c) { return backendPid(c); }) > 0);
}
