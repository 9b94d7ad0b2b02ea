# Tests of lostcard_recognition and lostcard-cardgen (all unit tier: no database, no network).
lostcard_add_test(NAME luhn_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/luhn_test.cpp
  DEPS lostcard_recognition)
lostcard_add_test(NAME jpeg_probe_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/jpeg_probe_test.cpp
  DEPS lostcard_recognition opencv_imgcodecs)
lostcard_add_test(NAME recognition_decoder_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recognition_decoder_test.cpp
  DEPS lostcard_recognition)
lostcard_add_test(NAME recognition_formats_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recognition_formats_test.cpp
  DEPS lostcard_recognition lostcard_test_support)
# Renders cards in process (lostcard_cardgen) and reads them back.
lostcard_add_test(NAME recognition_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recognition_test.cpp
  DEPS lostcard_recognition lostcard_cardgen lostcard_test_support opencv_imgcodecs)
# Runs the lostcard-cardgen program itself.
lostcard_add_test(NAME recognition_cardgen_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recognition_cardgen_test.cpp
  DEPS lostcard_recognition lostcard_test_support)

# Tesseract parallelises with OpenMP; on a busy machine its spinning threads cost far more than
# they give. One Recognizer per worker thread is the intended use, so run it single-threaded.
set_property(TEST recognition_test APPEND PROPERTY ENVIRONMENT "OMP_THREAD_LIMIT=1")

# The recognizer over the committed regression images in tests/data/recognition (made by
# lostcard-cardgen --preset hard; expected.tsv says what each must give). Never a wrong number.
lostcard_add_test(NAME recognition_regression_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recognition_regression_test.cpp
  DEPS lostcard_recognition lostcard_test_support)
set_property(TEST recognition_regression_test APPEND PROPERTY ENVIRONMENT "OMP_THREAD_LIMIT=1")
# recognition_cardgen_test runs the program: build it first.
add_dependencies(recognition_cardgen_test lostcard-cardgen)

# The digit classifier and glyph segmenter, with the committed model (models/digits/).
lostcard_add_test(NAME digit_classifier_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/digit_classifier_test.cpp
  DEPS lostcard_recognition lostcard_cardgen lostcard_test_support opencv_imgproc opencv_freetype)

# The digits cardgen draws from strokes, against a FreeType font.
lostcard_add_test(NAME stroke_font_test TIER unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/stroke_font_test.cpp
  DEPS lostcard_cardgen opencv_imgproc)
