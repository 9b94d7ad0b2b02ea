# One way to declare every lostcard target.
#
#   lostcard_add_library(NAME lostcard_proto
#     SOURCES src/a.cpp src/b.cpp
#     DEPS protobuf::libprotobuf)
#   lostcard_add_executable(NAME lostcard-cloud SOURCES src/main.cpp DEPS lostcard_cloud)
#   lostcard_add_test(NAME luhn_test TIER unit SOURCES luhn_test.cpp DEPS lostcard_cloud)
#
# Libraries expose include/ as their public header folder. Tests are Catch2 programs that share
# one prebuilt main (lostcard_catch_main) and are registered with ctest under their tier label
# (unit, pg, sim, e2e).

set(LOSTCARD_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)

function(lostcard_add_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SOURCES})
  target_include_directories(${ARG_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${LOSTCARD_WARNINGS})
endfunction()

function(lostcard_add_executable)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${LOSTCARD_WARNINGS})
endfunction()

# TIER is one of unit, pg, sim, e2e. FIXTURES names ctest fixtures the test needs (the pg tier
# needs the throwaway PostgreSQL cluster fixture "pg").
function(lostcard_add_test)
  cmake_parse_arguments(ARG "" "NAME;TIER;TIMEOUT" "SOURCES;DEPS;FIXTURES" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE lostcard_catch_main ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${LOSTCARD_WARNINGS})
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS ${ARG_TIER} TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "LOSTCARD_BIN_DIR=${CMAKE_BINARY_DIR}/bin;LOSTCARD_SOURCE_DIR=${CMAKE_SOURCE_DIR};LOSTCARD_TEST_PG_DIR=${CMAKE_BINARY_DIR}/test-pg")
  if(ARG_FIXTURES)
    set_tests_properties(${ARG_NAME} PROPERTIES FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
endfunction()
