# lostcard_gateway: the kiosk-facing TLS server, the per-kiosk session and the decision rule.
lostcard_add_library(NAME lostcard_gateway
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/src/decision.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/deposit_service.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/gateway.cpp
  DEPS lostcard_recognition lostcard_registry lostcard_wire lostcard_image_vault
       lostcard_difficult_images lostcard_enrollment)

lostcard_add_executable(NAME lostcard-cloud
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/src/cloud_main.cpp
  DEPS lostcard_gateway Boost::program_options lostcard_http_api)
