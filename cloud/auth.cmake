# lostcard_auth: people — accounts (Argon2id passwords with libsodium), API tokens, authorization
# by role and tenant (a pure module), audited reads of card data.
# lostcard_enrollment: issuers' bulk enrollment — the streamed CSV/NDJSON row parser (pure) and
# the batched writes to the cards table.
# lostcard_http_api: the HTTPS API server on Boost.Beast and its v1 endpoints.
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET GLOBAL libsodium)

lostcard_add_library(NAME lostcard_auth
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/src/accounts.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/authorization.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/card_data.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/issuer_keys.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/password_hash.cpp
  DEPS lostcard_registry lostcard_proto PkgConfig::SODIUM)

lostcard_add_library(NAME lostcard_enrollment
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/src/card_enrollment.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/card_import.cpp
  DEPS lostcard_registry lostcard_recognition lostcard_proto)

lostcard_add_library(NAME lostcard_http_api
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/src/api_v1.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/holder_api.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/holder_contact.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/http_api.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/operator_api.cpp
  DEPS lostcard_auth lostcard_enrollment Boost::boost Boost::system OpenSSL::SSL OpenSSL::Crypto)
