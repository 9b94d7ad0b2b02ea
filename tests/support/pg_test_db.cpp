#include "lostcard/test/pg_test_db.hpp"

#include <pqxx/pqxx>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <unistd.h>

namespace lostcard::test {

std::string PgTestDb::clusterConninfo() {
  const char* dir = std::getenv("LOSTCARD_TEST_PG_DIR");
  if (dir == nullptr) {
    throw std::runtime_error("LOSTCARD_TEST_PG_DIR is not set: run pg tests through ctest");
  }
  std::ifstream in(std::string(dir) + "/conninfo");
  std::string conninfo;
  if (!std::getline(in, conninfo) || conninfo.empty()) {
    throw std::runtime_error(std::string("no PostgreSQL cluster in ") + dir +
                             " (ctest's pg_cluster_start fixture starts it)");
  }
  return conninfo;
}

PgTestDb::PgTestDb() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = "lostcard_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(rd() % 100000);
  const std::string cluster = clusterConninfo();
  pqxx::connection admin(cluster);
  pqxx::nontransaction tx(admin);
  tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  // Replace the dbname=... of the cluster conninfo (always last, see tools/pg-cluster).
  conninfo_ = cluster.substr(0, cluster.rfind("dbname=")) + "dbname=" + name_;
}

PgTestDb::~PgTestDb() {
  try {
    pqxx::connection admin(clusterConninfo());
    pqxx::nontransaction tx(admin);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (...) {
    // A database left behind is removed with the cluster's directory.
  }
}

pqxx::result PgTestDb::query(const std::string& sql) const {
  pqxx::connection c(conninfo_);
  pqxx::work tx(c);
  auto r = tx.exec(sql);
  tx.commit();
  return r;
}

}  // namespace lostcard::test
