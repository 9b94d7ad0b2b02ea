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

// Version 3: redeeming pickup codes (pickup_rules.hpp, Store::redeemPickupCode). A deposit whose
// code opened its slot is "releasing" until the kiosk reports the card taken (issue 6). A holder
// may get a new code: each makes another notice, numbered per deposit (notice_seq). Every
// attempt is kept, once per (kiosk, request id): the kiosk's resend gets the first answer, and
// the wrong codes of the last minutes throttle the kiosk. Never the typed code.
constexpr std::string_view kPickupRedemption = R"sql(
ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_status_check
  CHECK (status IN ('decided', 'stored', 'releasing', 'collected'));
ALTER TABLE deposits ADD COLUMN released_at timestamptz;

ALTER TABLE notice_outbox ADD COLUMN notice_seq integer NOT NULL DEFAULT 1 CHECK (notice_seq >= 1);
ALTER TABLE notice_outbox DROP CONSTRAINT notice_outbox_deposit_id_key;
ALTER TABLE notice_outbox ADD CONSTRAINT notice_outbox_deposit_seq_key
  UNIQUE (deposit_id, notice_seq);

CREATE TABLE pickup_attempts (
  id             bigserial   PRIMARY KEY,
  kiosk_id       text        NOT NULL REFERENCES kiosks (id),
  request_id     uuid        NOT NULL,
  slot           integer     NOT NULL CHECK (slot >= 0),
  deposit_id     uuid        REFERENCES deposits (id),  -- the deposit waiting there, if any
  result         text        NOT NULL CHECK (result IN ('open', 'wrong_code', 'locked', 'expired',
                                 'no_such_deposit', 'kiosk_throttled', 'invalid_code')),
  tries_left     integer     NOT NULL CHECK (tries_left >= 0),
  retry_after_ms bigint      NOT NULL DEFAULT 0 CHECK (retry_after_ms >= 0),
  at             timestamptz NOT NULL,
  UNIQUE (kiosk_id, request_id)
);
CREATE INDEX pickup_attempts_wrong_idx ON pickup_attempts (kiosk_id, at)
  WHERE result = 'wrong_code';
)sql";

// Version 5: people and the audit log. Accounts of holders, operators, issuer staff and admins
// (an Argon2id hash of the password, never the password), which kiosks each operator serves, the
// API's bearer tokens (only a SHA-256 of each: a leaked table opens no session) and the
// append-only audit log (never a card number or a pickup code: see audit.hpp).
constexpr std::string_view kPeopleAndAudit = R"sql(
CREATE TABLE accounts (
  id            bigserial   PRIMARY KEY,
  login         text        NOT NULL UNIQUE CHECK (login <> ''),
  role          text        NOT NULL CHECK (role IN ('holder', 'operator', 'issuer_staff', 'admin')),
  password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
  holder_id     text        REFERENCES holders (id),
  issuer_id     text        REFERENCES issuers (id),
  created_at    timestamptz NOT NULL,
  disabled_at   timestamptz,
  CHECK ((role = 'holder') = (holder_id IS NOT NULL)),
  CHECK ((role = 'issuer_staff') = (issuer_id IS NOT NULL))
);

CREATE TABLE operator_kiosks (
  account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  kiosk_id   text   NOT NULL REFERENCES kiosks (id),
  PRIMARY KEY (account_id, kiosk_id)
);

CREATE TABLE auth_tokens (
  token_sha256 bytea       PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
  account_id   bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  issued_at    timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL
);
CREATE INDEX auth_tokens_expiry_idx ON auth_tokens (expires_at);

CREATE TABLE audit_log (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL,
  actor_role  text        NOT NULL CHECK (actor_role <> ''),
  actor_id    text        NOT NULL,
  action      text        NOT NULL CHECK (action <> ''),
  object_kind text        NOT NULL DEFAULT '',
  object_ids  text[]      NOT NULL DEFAULT '{}',
  result      text        NOT NULL CHECK (result <> ''),
  detail      text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
-- For the failed-login limit (accounts.hpp): an account's recent login attempts.
CREATE INDEX audit_log_login_idx ON audit_log (actor_id, at) WHERE action = 'auth.login';

-- Append-only: rows are never changed or removed by the application's role.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
)sql";

// Version 4: the photos kept of difficult cards, each redacted (the back's signature band
// blacked out) and sealed with AES-256-GCM (image_vault.hpp: the nonce per image, the key's id
// for rotation, the deposit id as associated data). Deleted after the retention period
// (Store::purgeDifficultImages). Ciphertext does not compress: stored out of line, uncompressed.
constexpr std::string_view kDifficultImages = R"sql(
CREATE TABLE difficult_images (
  deposit_id   uuid        NOT NULL REFERENCES deposits (id),
  face         text        NOT NULL CHECK (face IN ('front', 'back')),
  frame        integer     NOT NULL CHECK (frame >= 0),
  straightened boolean     NOT NULL,
  blacked_out  boolean     NOT NULL,
  key_id       text        NOT NULL CHECK (key_id <> ''),
  nonce        bytea       NOT NULL CHECK (octet_length(nonce) = 12),
  ciphertext   bytea       NOT NULL CHECK (octet_length(ciphertext) >= 16),
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (deposit_id, face, frame)
);
ALTER TABLE difficult_images ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
CREATE INDEX difficult_images_created_idx ON difficult_images (created_at);
)sql";

// Version 6: the outbox's notices sealed (AES-256-GCM, delivery.hpp): they carry the holder's
// pickup code, which the database otherwise keeps only as a slow hash. The key's id, the nonce
// and the ciphertext (GCM tag last) are kept until the notice is delivered, given up or
// withdrawn, then wiped with the rest of the payload; the row's metadata stays. The clear
// payload column is left for rows queued before this version: done ones are wiped here, waiting
// ones are sealed by Store::migrate (the key is not in the database), and no new row fills it.
constexpr std::string_view kSealedNotices = R"sql(
ALTER TABLE notice_outbox ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE notice_outbox ADD COLUMN payload_key_id text CHECK (payload_key_id <> '');
ALTER TABLE notice_outbox ADD COLUMN payload_nonce bytea CHECK (octet_length(payload_nonce) = 12);
ALTER TABLE notice_outbox ADD COLUMN payload_sealed bytea
  CHECK (octet_length(payload_sealed) >= 16);
ALTER TABLE notice_outbox ADD CONSTRAINT notice_outbox_sealed_whole
  CHECK ((payload_key_id IS NULL) = (payload_sealed IS NULL)
         AND (payload_nonce IS NULL) = (payload_sealed IS NULL));
ALTER TABLE notice_outbox ADD CONSTRAINT notice_outbox_never_both
  CHECK (payload IS NULL OR payload_sealed IS NULL);
UPDATE notice_outbox SET payload = NULL WHERE delivered_at IS NOT NULL OR gave_up_at IS NOT NULL;
)sql";

// Version 7: issuers' API keys (issuer_keys.hpp). Only a SHA-256 of each key (a random
// 256-bit secret) is kept, with the key's public id, its issuer and when it was made and
// revoked; a revoked key stays, so the audit log's key ids keep their meaning.
constexpr std::string_view kIssuerApiKeys = R"sql(
CREATE TABLE issuer_api_keys (
  key_id     text        PRIMARY KEY CHECK (key_id ~ '^[a-z]{16}$'),
  issuer_id  text        NOT NULL REFERENCES issuers (id),
  key_sha256 bytea       NOT NULL UNIQUE CHECK (octet_length(key_sha256) = 32),
  created_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX issuer_api_keys_issuer_idx ON issuer_api_keys (issuer_id);
)sql";

// Version 8: doors opened at the box (issue 6: pickup at the box, the operator at the box). What
// the kiosk reported of each OPEN pickup (PickupDone, once per request: the outcome column), who
// took a collected card out of the box (its holder by pickup, or an operator emptying the bin),
// alerts for operators (a slot door that did not open), the operators' box codes (a salted
// PBKDF2 hash like the pickup codes', never the code) and every bin opening asked for at a kiosk
// (once per kiosk and request id; refused ones throttle the kiosk). No new deposit status: a
// pickup not taken puts the deposit back to 'stored'.
constexpr std::string_view kBoxDoors = R"sql(
ALTER TABLE pickup_attempts ADD COLUMN done_outcome text
  CHECK (done_outcome IN ('taken', 'not_taken', 'door_failed', 'not_opened'));
ALTER TABLE pickup_attempts ADD COLUMN done_at timestamptz;
ALTER TABLE deposits ADD COLUMN collected_by text CHECK (collected_by IN ('pickup', 'operator'));
ALTER TABLE deposits ADD COLUMN collected_by_account bigint REFERENCES accounts (id);

CREATE TABLE kiosk_alerts (
  id          bigserial   PRIMARY KEY,
  kiosk_id    text        NOT NULL REFERENCES kiosks (id),
  deposit_id  uuid        REFERENCES deposits (id),
  kind        text        NOT NULL CHECK (kind IN ('slot_door_failed')),
  detail      text        NOT NULL DEFAULT '',
  at          timestamptz NOT NULL,
  resolved_at timestamptz
);
CREATE INDEX kiosk_alerts_open_idx ON kiosk_alerts (kiosk_id) WHERE resolved_at IS NULL;

CREATE TABLE operator_box_codes (
  account_id bigint      PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  code_hash  text        NOT NULL CHECK (code_hash LIKE 'pbkdf2-sha256$%'),
  set_at     timestamptz NOT NULL
);

CREATE TABLE bin_openings (
  id             bigserial   PRIMARY KEY,
  kiosk_id       text        NOT NULL REFERENCES kiosks (id),
  request_id     uuid        NOT NULL,
  account_id     bigint      REFERENCES accounts (id),  -- the operator, when ok
  result         text        NOT NULL CHECK (result IN ('ok', 'refused', 'throttled')),
  retry_after_ms bigint      NOT NULL DEFAULT 0 CHECK (retry_after_ms >= 0),
  at             timestamptz NOT NULL,
  emptied_at     timestamptz,
  emptied_count  integer     CHECK (emptied_count >= 0),
  UNIQUE (kiosk_id, request_id),
  CHECK ((result = 'ok') = (account_id IS NOT NULL))
);
CREATE INDEX bin_openings_refused_idx ON bin_openings (kiosk_id, at) WHERE result = 'refused';
)sql";

// Version 10: operations (issue 6). Issuers get a webhook (URL and signing secret: issuers tell
// their own systems when one of their cards is found or returned) and an outbox of such events,
// one per (deposit, kind), queued in the transaction that changes the deposit
// (issuer_events.hpp) and sent by the notice delivery worker. The payload holds no secret (the
// card id, last four, kiosk and time), so it is kept in clear. Deposits gain what operators do
// to them: marked for return to the issuer (unclaimed too long, or by an operator) and resolved
// by hand (a difficult card whose number an operator typed).
constexpr std::string_view kOperations = R"sql(
ALTER TABLE issuers ADD COLUMN webhook_url text CHECK (webhook_url ~ '^https?://');
ALTER TABLE issuers ADD COLUMN webhook_secret text CHECK (length(webhook_secret) >= 16);
ALTER TABLE issuers ADD CONSTRAINT issuers_webhook_whole
  CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL));

CREATE TABLE issuer_event_outbox (
  id              uuid        PRIMARY KEY,
  issuer_id       text        NOT NULL REFERENCES issuers (id),
  deposit_id      uuid        NOT NULL REFERENCES deposits (id),
  kind            text        NOT NULL CHECK (kind IN ('found', 'returned', 'returned_to_issuer')),
  payload         jsonb       NOT NULL,
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,
  delivered_at    timestamptz,
  gave_up_at      timestamptz,
  last_error      text,
  UNIQUE (deposit_id, kind)
);
CREATE INDEX issuer_event_outbox_due_idx ON issuer_event_outbox (next_attempt_at)
  WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- return_reason: 'unclaimed' (the sweep) or 'operator'; resolved_at: an operator typed the
-- number of a difficult card (the deposit then names the card like a store decision).
ALTER TABLE deposits ADD COLUMN return_marked_at timestamptz;
ALTER TABLE deposits ADD COLUMN return_reason text CHECK (return_reason IN ('unclaimed', 'operator'));
ALTER TABLE deposits ADD COLUMN resolved_at timestamptz;
ALTER TABLE deposits ADD COLUMN resolved_reason text;
CREATE INDEX deposits_unclaimed_idx ON deposits (stored_at) WHERE status = 'stored';
)sql"
// The deposit statuses this version adds, apart so a merge with another version that adds its
// own sees them: 'to_return' (marked for return to the issuer: on the operator's collection
// list, its pickup code no longer opens) and 'awaiting_restock' (resolved by hand: waits for
// the operator to put it in a slot, whose CardStored then queues the pickup code and notice).
R"sql(
ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_status_check
  CHECK (status IN ('decided', 'stored', 'releasing', 'collected', 'to_return',
                    'awaiting_restock'));
)sql";

// Version 9: the holder's inbox (holder_notices.hpp). Each notice gets a number in the order it
// was queued (stream_seq): the inbox lists a holder's notices by it and the live stream resumes
// after one (Last-Event-ID). Plus an index for the per-holder limit on new pickup codes, and who
// enrolled each card: its issuer, or its holder with the issuer's proof (card_proof.hpp).
constexpr std::string_view kHolderInbox = R"sql(
ALTER TABLE cards ADD COLUMN enrolled_by text NOT NULL DEFAULT 'issuer'
  CHECK (enrolled_by IN ('issuer', 'holder'));
ALTER TABLE notice_outbox ADD COLUMN stream_seq bigserial;
CREATE INDEX notice_outbox_holder_idx ON notice_outbox (holder_id, stream_seq);
CREATE INDEX audit_log_new_code_idx ON audit_log (actor_id, at) WHERE action = 'pickup.new_code';
)sql";

// Version 11: holders who sign up themselves (holder_contact.hpp). A holder's contact channel (its
// webhook) is verified or not: holders made by an admin count as verified (the admin vouches),
// a signed-up one is not until it types the code sent there, and notices to an unverified
// contact are held in the outbox (not sent, not given up). The code is kept only as a salted
// slow hash (pickup_code.hpp) with an expiry and a number of tries; the message that carries it
// waits in contact_outbox sealed like a notice (delivery.hpp), wiped once sent. Indexes for the
// sign-up limits (per client address and overall, counted in the audit log).
constexpr std::string_view kHolderSignup = R"sql(
ALTER TABLE holders ADD COLUMN contact_verified_at timestamptz DEFAULT now();
ALTER TABLE holders ADD COLUMN signed_up_at timestamptz;

CREATE TABLE contact_codes (
  holder_id   text        PRIMARY KEY REFERENCES holders (id) ON DELETE CASCADE,
  code_hash   text        NOT NULL CHECK (code_hash LIKE 'pbkdf2-sha256$%'),
  webhook_url text        NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  tries_left  integer     NOT NULL CHECK (tries_left >= 0),
  used_at     timestamptz
);

CREATE TABLE contact_outbox (
  id              uuid        PRIMARY KEY,
  holder_id       text        NOT NULL REFERENCES holders (id) ON DELETE CASCADE,
  kind            text        NOT NULL CHECK (kind IN ('contact.verify')),
  payload_key_id  text        CHECK (payload_key_id <> ''),
  payload_nonce   bytea       CHECK (octet_length(payload_nonce) = 12),
  payload_sealed  bytea       CHECK (octet_length(payload_sealed) >= 16),
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,
  delivered_at    timestamptz,
  gave_up_at      timestamptz,
  last_error      text,
  CHECK ((payload_key_id IS NULL) = (payload_sealed IS NULL)
         AND (payload_nonce IS NULL) = (payload_sealed IS NULL))
);
CREATE INDEX contact_outbox_due_idx ON contact_outbox (next_attempt_at)
  WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX contact_outbox_holder_idx ON contact_outbox (holder_id, created_at);

CREATE INDEX audit_log_signup_idx ON audit_log (actor_id, at) WHERE action = 'holder.signup';
CREATE INDEX audit_log_signup_ok_idx ON audit_log (at)
  WHERE action = 'holder.signup' AND result = 'ok';
)sql";

// Version 13: loose ends of the people's flows (issue 6). When a holder last acted on a deposit
// (asked whether a box holds their card, or asked for a new pickup code): the unclaimed sweep
// ages a card from the later of that and its storing, so a holder who is coming is not sent
// away. Who acknowledged a kiosk's alert (an operator of that kiosk: resolved_at is when).
constexpr std::string_view kLooseEnds = R"sql(
ALTER TABLE deposits ADD COLUMN holder_action_at timestamptz;
ALTER TABLE kiosk_alerts ADD COLUMN resolved_by_account bigint REFERENCES accounts (id);
CREATE INDEX audit_log_resolve_idx ON audit_log (actor_id, at) WHERE action = 'difficult.resolve';
)sql";

// Version 12: putting resolved cards back at the box. A card resolved by hand gets a restock
// number (1..999) the operator writes on it and types at the box; unique among the kiosk's cards
// still waiting to be restocked, so numbers are reused once a card is back in a slot.
constexpr std::string_view kRestock = R"sql(
ALTER TABLE deposits ADD COLUMN restock_number integer CHECK (restock_number BETWEEN 1 AND 999);
CREATE UNIQUE INDEX deposits_restock_number_idx ON deposits (kiosk_id, restock_number)
  WHERE status = 'awaiting_restock';
)sql";

const std::vector<Migration> kMigrations = {
    {1, "registry", kInitialSchema},
    {2, "kiosk inventories", kKioskInventories},
    {3, "pickup redemption", kPickupRedemption},
    {4, "difficult card images", kDifficultImages},
    {5, "people and audit", kPeopleAndAudit},
    {6, "sealed notices", kSealedNotices},
    {7, "issuer api keys", kIssuerApiKeys},
    {8, "doors opened at the box", kBoxDoors},
    {9, "holder inbox", kHolderInbox},
    {10, "operations", kOperations},
    {11, "holder signup", kHolderSignup},
    {12, "restock", kRestock},
    {13, "loose ends of the people's flows", kLooseEnds},
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
