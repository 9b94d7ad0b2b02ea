# The notice outbox sealed with the notice key (cloud/include/lostcard/cloud/delivery.hpp): no
# pickup code in clear in notice_outbox, delivery to a real lostcard-webhook-sink, payload wiped.
lostcard_add_test(NAME outbox_sealing_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/outbox_sealing_pgtest.cpp
  DEPS lostcard_registry lostcard_test_support)
add_dependencies(outbox_sealing_pgtest lostcard-webhook-sink)
