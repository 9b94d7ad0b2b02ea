# The photos the cloud keeps of difficult cards (see cloud/CMakeLists.txt):
#   lostcard_image_vault       AES-256-GCM sealing of kept photos (OpenSSL); used by the gateway
#                              and by lostcard-admin (difficult-image)
#   lostcard_difficult_images  which frames are kept and how (straightened, the signature band
#                              blacked out: OpenCV and the recognizer's card-finding stages), and
#                              the retention sweep that deletes them
lostcard_add_library(NAME lostcard_image_vault
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/src/image_vault.cpp
  DEPS OpenSSL::Crypto)

lostcard_add_library(NAME lostcard_difficult_images
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/src/image_redaction.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/image_retention.cpp
  DEPS lostcard_recognition lostcard_registry opencv_core
  PRIVATE_DEPS opencv_imgproc opencv_imgcodecs spdlog::spdlog)
