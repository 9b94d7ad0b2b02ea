#pragma once
// What the libFuzzer targets in tests/fuzz/ share: a check that aborts (a crash to libFuzzer, a
// failed test to the corpus replay) with the condition and where it failed.
//
//   extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
//     auto result = parse(asView(data, size));
//     FUZZ_CHECK(result.ok || !result.error.empty());
//     return 0;
//   }
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(condition)                                                            \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)

namespace lostcard::fuzz {

inline std::string_view asView(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace lostcard::fuzz
