# Tests of lostcard_auth and lostcard_http_api (people, roles, audit, the HTTPS API).
lostcard_add_test(NAME authorization_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/authorization_test.cpp
  DEPS lostcard_auth)

lostcard_add_test(NAME http_api_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_api_pgtest.cpp
  DEPS lostcard_http_api lostcard_test_support)

lostcard_add_test(NAME http_router_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_router_test.cpp
  DEPS lostcard_http_api lostcard_test_support)

lostcard_add_test(NAME card_import_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/card_import_test.cpp
  DEPS lostcard_enrollment)

lostcard_add_test(NAME issuer_api_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/issuer_api_pgtest.cpp
  DEPS lostcard_http_api lostcard_test_support)

lostcard_add_test(NAME operator_api_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/operator_api_pgtest.cpp
  DEPS lostcard_http_api lostcard_test_support)

lostcard_add_test(NAME holder_api_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/holder_api_pgtest.cpp
  DEPS lostcard_http_api lostcard_test_support)

lostcard_add_test(NAME holder_signup_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/holder_signup_pgtest.cpp
  DEPS lostcard_http_api lostcard_test_support)
