# Tests of lostcard_gateway.
lostcard_add_test(NAME decision_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/decision_test.cpp
  DEPS lostcard_gateway)

lostcard_add_test(NAME gateway_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gateway_pgtest.cpp
  DEPS lostcard_gateway lostcard_test_support)

lostcard_add_test(NAME async_semaphore_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/async_semaphore_test.cpp
  DEPS lostcard_gateway)
