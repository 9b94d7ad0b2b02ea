# lostcard_recognition: reads card numbers from the box's JPEGs (OpenCV + Tesseract). No network,
# no database. Public headers in include/lostcard/cloud/: recognition.hpp (the Recognizer),
# recognition_stages.hpp (the pipeline stages), card_number_decoder.hpp, luhn.hpp, jpeg_probe.hpp.
lostcard_add_library(NAME lostcard_recognition
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/src/card_formats.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/card_number_decoder.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/digit_classifier.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/jpeg_probe.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/luhn.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/pitch_cut.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/recognition.cpp
    ${CMAKE_CURRENT_LIST_DIR}/src/recognition_stages.cpp
  DEPS opencv_core lostcard_wire
  PRIVATE_DEPS opencv_dnn opencv_imgproc opencv_imgcodecs opencv_ml opencv_objdetect PkgConfig::TESSERACT spdlog::spdlog)
