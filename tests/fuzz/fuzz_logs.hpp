#pragma once
// Log level of the fuzz targets: the project's component loggers, and protobuf's own complaints
// (e.g. invalid UTF-8 in a string field), are off while fuzzing (thousands of sessions a
// second); LOSTCARD_FUZZ_LOG=debug (or another spdlog level) shows them when looking into one
// input.
//
//   extern "C" int LLVMFuzzerInitialize(int*, char***) { lostcard::fuzz::quietLogs(); ... }
#include <google/protobuf/stubs/logging.h>

#include <cstdlib>

#include "lostcard/wire/log.hpp"

namespace lostcard::fuzz {

inline void quietLogs() {
  const char* level = std::getenv("LOSTCARD_FUZZ_LOG");
  wire::setLogLevel(level != nullptr ? level : "off");
  if (level == nullptr) {
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                       const std::string&) {});
  }
}

}  // namespace lostcard::fuzz
