# Tests of lostcard_registry (cloud/registry.cmake) and lostcard-webhook-sink.
lostcard_add_test(NAME card_hasher_test TIER unit SOURCES card_hasher_test.cpp
  DEPS lostcard_registry lostcard_test_support)
lostcard_add_test(NAME pickup_code_test TIER unit SOURCES pickup_code_test.cpp
  DEPS lostcard_registry)
lostcard_add_test(NAME notice_test TIER unit SOURCES notice_test.cpp
  DEPS lostcard_registry)
lostcard_add_test(NAME webhook_signature_test TIER unit SOURCES webhook_signature_test.cpp
  DEPS lostcard_registry)
lostcard_add_test(NAME reconcile_test TIER unit SOURCES reconcile_test.cpp
  DEPS lostcard_registry)

lostcard_add_test(NAME store_pgtest TIER pg SOURCES store_pgtest.cpp
  DEPS lostcard_registry lostcard_test_support FIXTURES pg)
lostcard_add_test(NAME delivery_pgtest TIER pg SOURCES delivery_pgtest.cpp
  DEPS lostcard_registry lostcard_test_support FIXTURES pg)
lostcard_add_test(NAME reconcile_pgtest TIER pg SOURCES reconcile_pgtest.cpp
  DEPS lostcard_registry lostcard_test_support FIXTURES pg)
# The connection pool is internal to lostcard_registry: its test reads the private header.
lostcard_add_test(NAME connection_pool_pgtest TIER pg SOURCES connection_pool_pgtest.cpp
  DEPS lostcard_registry lostcard_test_support FIXTURES pg)
target_include_directories(connection_pool_pgtest PRIVATE ${CMAKE_SOURCE_DIR}/cloud/src)
lostcard_add_test(NAME fleet_test TIER unit SOURCES fleet_test.cpp
  DEPS lostcard_registry)
