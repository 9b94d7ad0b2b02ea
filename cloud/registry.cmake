# lostcard_registry: the cloud's PostgreSQL side (see cloud/CMakeLists.txt) — migrations, the
# keyed card hash, holders/cards/kiosks/deposits, pickup codes, the notice outbox and its
# delivery worker — and lostcard-admin, the enrollment and inspection tool.
lostcard_add_library(NAME lostcard_registry
  SOURCES
    src/audit.cpp
    src/card_hasher.cpp
    src/card_proof.cpp
    src/delivery.cpp
    src/fleet.cpp
    src/issuer_events.cpp
    src/migrations.cpp
    src/notice.cpp
    src/pickup_code.cpp
    src/pickup_rules.cpp
    src/reconcile.cpp
    src/registry_hex.cpp
    src/registry_http_client.cpp
    src/registry_pg.cpp
    src/store.cpp
    src/unclaimed.cpp
    src/webhook_signature.cpp
  DEPS lostcard_wire lostcard_proto lostcard_image_vault PkgConfig::PQXX OpenSSL::SSL
       OpenSSL::Crypto Boost::boost Boost::system spdlog::spdlog Threads::Threads)

lostcard_add_executable(NAME lostcard-admin
  SOURCES src/admin_main.cpp
  DEPS lostcard_registry lostcard_image_vault lostcard_auth Boost::program_options)
