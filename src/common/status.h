// Status and Result<T>: how every fallible function in Tandem reports failure.
//
// A Status is a code for programs plus one operator-readable sentence (STYLE.md §3). It is a
// value type, cheap to copy, and safe to use from any thread. Result<T> is tl::expected<T,
// Status>, the shape of C++23 std::expected, so we can switch later.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace tandem {

enum class StatusCode {
  kOk = 0,
  kNotFound,
  kInvalidArgument,
  kFailedPrecondition,
  kUnavailable,
  kConflict,
  kDataLoss,
  kInternal,
  kTimeout,
};

// The code's stable name, e.g. "FailedPrecondition" (used in JSON output and logs).
std::string_view statusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  // One sentence for the operator; empty when OK.
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<context>: <message>" (the cause kept, STYLE.md §3).
  Status withContext(std::string_view context) const;

  // "<CodeName>: <message>" for logs.
  std::string toString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Status>;

// Builds the error side of a Result: `return fail(StatusCode::kNotFound, "store `x` is unknown");`
inline tl::unexpected<Status> fail(StatusCode code, std::string message) {
  return tl::unexpected<Status>(Status(code, std::move(message)));
}
inline tl::unexpected<Status> fail(Status status) {
  return tl::unexpected<Status>(std::move(status));
}

// Shorthands for the common codes.
inline Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status invalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status failedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
inline Status dataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status internalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status timeoutError(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }

}  // namespace tandem

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define TANDEM_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::tandem::Status _st = (expr);              \
    if (!_st.isOk()) return _st;                \
  } while (0)
