#pragma once
// Expected failures of devices are values, not exceptions.
//
//   Result<bool> present = sensor.cardPresent();
//   if (!present) { log(present.error()); }
//   else if (*present) { ... }
//
//   Status s = sorter.moveTo(Destination::toSlot(3));
//   if (!s) { log(s.error()); }
#include <optional>
#include <string>
#include <utility>

namespace lostcard::hw {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  static Result failure(std::string error) {
    Result r;
    r.error_ = std::move(error);
    return r;
  }
  explicit operator bool() const { return value_.has_value(); }
  const T& operator*() const { return *value_; }
  T& operator*() { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }
  const std::string& error() const { return error_; }

 private:
  Result() = default;
  std::optional<T> value_;
  std::string error_;
};

class [[nodiscard]] Status {
 public:
  static Status success() { return Status(); }
  static Status failure(std::string error) { return Status(std::move(error)); }
  explicit operator bool() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  Status() = default;
  explicit Status(std::string error) : error_(std::move(error)) {
    if (error_.empty()) {
      error_ = "unspecified failure";
    }
  }
  std::string error_;
};

}  // namespace lostcard::hw
