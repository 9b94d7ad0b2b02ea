#pragma once
// A fresh database in the throwaway PostgreSQL cluster that ctest's "pg" fixture starts
// (tools/pg-cluster, directory $LOSTCARD_TEST_PG_DIR). Each PgTestDb creates its own uniquely
// named database and drops it when destroyed, so tests never see each other's rows.
//
//   lostcard::test::PgTestDb db;
//   pqxx::connection conn(db.conninfo());
//   db.query("SELECT count(*) FROM cards")[0][0].as<int>();  // with <pqxx/pqxx>
#include <pqxx/types>
#include <string>

namespace lostcard::test {

class PgTestDb {
 public:
  PgTestDb();
  ~PgTestDb();
  PgTestDb(const PgTestDb&) = delete;
  PgTestDb& operator=(const PgTestDb&) = delete;

  // libpq conninfo of this test's database.
  const std::string& conninfo() const { return conninfo_; }
  const std::string& name() const { return name_; }

  // Runs `sql` in a transaction of its own on a new connection, commits, and returns its rows.
  pqxx::result query(const std::string& sql) const;

  // Conninfo of the cluster's maintenance database; throws when no cluster is running.
  static std::string clusterConninfo();

 private:
  std::string name_;
  std::string conninfo_;
};

}  // namespace lostcard::test
