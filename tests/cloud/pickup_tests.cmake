# Tests of pickup code redemption: the pure rules, the store's rules on a real PostgreSQL, and
# the PickupRequest/PickupAnswer round trip through the TLS gateway.
lostcard_add_test(NAME pickup_rules_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pickup_rules_test.cpp
  DEPS lostcard_registry)
lostcard_add_test(NAME pickup_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pickup_pgtest.cpp
  DEPS lostcard_registry lostcard_test_support)
lostcard_add_test(NAME pickup_gateway_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pickup_gateway_pgtest.cpp
  DEPS lostcard_gateway lostcard_test_support)
# Doors opened at the box (issue 6): the kiosk's pickup reports, operators' box codes, the bin,
# the check of a card put back (RestockCheck, through the DepositService).
lostcard_add_test(NAME box_doors_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/box_doors_pgtest.cpp
  DEPS lostcard_gateway lostcard_test_support)
