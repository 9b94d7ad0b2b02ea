#pragma once
// The registry's schema as numbered migrations, applied at start-up by every cloud node (and by
// `lostcard-admin migrate`).
//
// Each migration runs once, in its own transaction, and is recorded in
// schema_migrations(version, name, applied_at). Every transaction first takes a transaction-level
// advisory lock (pg_advisory_xact_lock(kMigrationLockKey)), so nodes starting together apply
// each migration exactly once, one after the other.
//
//   pqxx::connection conn(conninfo);
//   int applied = applyMigrations(conn);   // 0 when the schema is up to date
//
// Add a migration by appending to the list in migrations.cpp; never edit one that has shipped.
#include <cstdint>
#include <string_view>
#include <vector>

namespace pqxx {
class connection_base;
}

namespace lostcard::cloud {

struct Migration {
  int version = 0;
  std::string_view name;
  std::string_view sql;
};

// "lostcard" read as ASCII: the advisory lock every node takes while migrating.
inline constexpr std::int64_t kMigrationLockKey = 0x6c6f7374636172;

// All migrations, ascending by version.
const std::vector<Migration>& registryMigrations();

// Applies the pending migrations; returns how many it applied. Throws pqxx errors on failure
// (the failing migration is rolled back, those before it stay applied).
int applyMigrations(pqxx::connection_base& conn);

// The highest applied version, 0 on an empty database.
int schemaVersion(pqxx::connection_base& conn);

}  // namespace lostcard::cloud
