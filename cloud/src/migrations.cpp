#include "lostcard/cloud/migrations.hpp"

#include <pqxx/pqxx>

#include "lostcard/wire/log.hpp"

namespace lostcard::cloud {

namespace {

constexpr std::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)
)sql";

// Version 1: the registry. Card numbers are never stored: only their keyed hash and last four.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE issuers (
  id   text PRIMARY KEY CHECK (id <> ''),
  name text NOT NULL
);

-- A holder is reached through their phone app's webhook; webhook_secret signs what we send.
CREATE TABLE holders (
  id             text PRIMARY KEY CHECK (id <> ''),
  name           text NOT NULL,
  webhook_url    text NOT NULL CHECK (webhook_url ~ '^https?://'),
  webhook_secret text NOT NULL CHECK (length(webhook_secret) >= 8)
);

CREATE TABLE cards (
  id            bigserial   PRIMARY KEY,
  issuer_id     text        NOT NULL REFERENCES issuers (id),
  holder_id     text        NOT NULL REFERENCES holders (id),
  number_key_id text        NOT NULL,
  number_hmac   bytea       NOT NULL CHECK (octet_length(number_hmac) = 32),
  last4         char(4)     NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
  enrolled_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (number_key_id, number_hmac)
);
CREATE INDEX cards_holder_idx ON cards (holder_id);
CREATE INDEX cards_issuer_idx ON cards (issuer_id);

CREATE TABLE kiosks (
  id                text             PRIMARY KEY CHECK (id <> ''),
  name              text             NOT NULL,
  address           text             NOT NULL,
  latitude          double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  longitude         double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  opening_hours     text             NOT NULL DEFAULT '',
  slot_count        integer          NOT NULL CHECK (slot_count >= 0),
  last_heartbeat_at timestamptz,
  slots_used        integer          CHECK (slots_used >= 0),
  bin_count         integer          CHECK (bin_count >= 0),
  bin_capacity      integer          CHECK (bin_capacity >= 0)
);

-- One row per card dropped into a box; the id is the UUID the kiosk made at capture.
CREATE TABLE deposits (
  id               uuid        PRIMARY KEY,
  kiosk_id         text        NOT NULL REFERENCES kiosks (id),
  status           text        NOT NULL CHECK (status IN ('decided', 'stored', 'collected')),
  decision         text        NOT NULL CHECK (decision IN ('store', 'difficult')),
  card_id          bigint      REFERENCES cards (id),
  last4            char(4)     CHECK (last4 ~ '^[0-9]{4}$'),
  difficult_reason text        CHECK (difficult_reason IN
                                 ('unreadable', 'no_holder', 'ambiguous', 'bad_image')),
  detail           text        NOT NULL DEFAULT '',
  location_kind    text        CHECK (location_kind IN ('slot', 'bin')),
  location_slot    integer     CHECK (location_slot >= 0),
  decided_at       timestamptz NOT NULL,
  stored_at        timestamptz,
  collected_at     timestamptz,
  CHECK ((decision = 'store') = (card_id IS NOT NULL)),
  CHECK (decision = 'difficult' OR difficult_reason IS NULL),
  CHECK ((location_kind = 'slot') = (location_slot IS NOT NULL)),
  CHECK (status = 'decided' OR (location_kind IS NOT NULL AND stored_at IS NOT NULL))
);
CREATE INDEX deposits_kiosk_idx ON deposits (kiosk_id, decided_at);
CREATE INDEX deposits_card_idx ON deposits (card_id) WHERE card_id IS NOT NULL;

-- Only a salted slow hash of the code (see pickup_code.hpp).
CREATE TABLE pickup_codes (
  deposit_id uuid        PRIMARY KEY REFERENCES deposits (id),
  code_hash  text        NOT NULL CHECK (code_hash LIKE 'pbkdf2-sha256$%'),
  expires_at timestamptz NOT NULL,
  tries_left integer     NOT NULL CHECK (tries_left >= 0),
  created_at timestamptz NOT NULL,
  used_at    timestamptz
);

-- The transactional outbox of retrieval notices: one per deposit, delivered by NoticeDelivery.
-- payload holds the pickup code until the notice is delivered (or given up).
CREATE TABLE notice_outbox (
  id              uuid        PRIMARY KEY,
  deposit_id      uuid        NOT NULL UNIQUE REFERENCES deposits (id),
  holder_id       text        NOT NULL REFERENCES holders (id),
  payload         jsonb       NOT NULL,
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,
  delivered_at    timestamptz,
  gave_up_at      timestamptz,
  last_error      text
);
CREATE INDEX notice_outbox_due_idx ON notice_outbox (next_attempt_at)
  WHERE delivered_at IS NULL AND gave_up_at IS NULL;
)sql";

// Version 2: the latest Inventory each kiosk sent (what its journal says each place holds), for
// reconciliation with the deposits table (reconcile.hpp). One row per kiosk, replaced by each
// newer snapshot. received_at is the cloud's clock, comparable with the deposits' times.
constexpr std::string_view kKioskInventories = R"sql(
CREATE TABLE kiosk_inventories (
  kiosk_id     text        PRIMARY KEY REFERENCES kiosks (id),
  journal_seq  bigint      NOT NULL CHECK (journal_seq >= 0),
  taken_at_ms  bigint      NOT NULL,
  received_at  timestamptz NOT NULL,
  slots_total  integer     NOT NULL CHECK (slots_total >= 0),
  bin_capacity integer     NOT NULL CHECK (bin_capacity >= 0),
  inventory    jsonb       NOT NULL  -- the Inventory message in protobuf's JSON mapping
);
)sql";

const std::vector<Migration> kMigrations = {
    {1, "registry", kInitialSchema},
    {2, "kiosk inventories", kKioskInventories},
};

void lockMigrations(pqxx::work& tx) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
  tx.exec(std::string(kCreateMigrationsTable));
}

}  // namespace

const std::vector<Migration>& registryMigrations() { return kMigrations; }

int schemaVersion(pqxx::connection_base& conn) {
  pqxx::work tx(conn);
  const auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0].as<bool>()) {
    return 0;
  }
  const auto row = tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations");
  return row[0].as<int>();
}

int applyMigrations(pqxx::connection_base& conn) {
  auto log = wire::componentLogger("cloud.registry");
  int applied = 0;
  for (const auto& migration : kMigrations) {
    pqxx::work tx(conn, "migrate");
    lockMigrations(tx);
    const auto done =
        tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version);
    if (!done.empty()) {
      continue;  // committed empty: nothing to do for this one
    }
    tx.exec(std::string(migration.sql));
    tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                   migration.version, std::string(migration.name));
    tx.commit();
    ++applied;
    log->info("applied migration {} ({})", migration.version, migration.name);
  }
  return applied;
}

}  // namespace lostcard::cloud
