# Tests of the photos kept of difficult cards (cloud/privacy.cmake): sealing, redaction, and
# their storage and retention in PostgreSQL.
lostcard_add_test(NAME image_vault_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/image_vault_test.cpp
  DEPS lostcard_image_vault lostcard_test_support)
lostcard_add_test(NAME image_redaction_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/image_redaction_test.cpp
  DEPS lostcard_difficult_images lostcard_cardgen opencv_imgcodecs opencv_imgproc)
# Stores sealed photos with a difficult decision, purges them after the retention period, and
# runs lostcard-admin difficult-images / difficult-image / purge-images.
lostcard_add_test(NAME difficult_images_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/difficult_images_pgtest.cpp
  DEPS lostcard_difficult_images lostcard_image_vault lostcard_test_support PkgConfig::PQXX)
add_dependencies(difficult_images_pgtest lostcard-admin)
# DepositService keeping the photos of difficult cards (and only those) on rendered cards.
lostcard_add_test(NAME difficult_deposit_pgtest TIER pg FIXTURES pg
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/difficult_deposit_pgtest.cpp
  DEPS lostcard_gateway lostcard_cardgen lostcard_test_support opencv_imgcodecs opencv_imgproc)
set_property(TEST difficult_deposit_pgtest APPEND PROPERTY ENVIRONMENT "OMP_THREAD_LIMIT=1")
