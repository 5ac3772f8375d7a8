// Errors shared by every facetrain library: UserError for mistakes a user can fix (bad flag, file,
// field; printed as one line) and FT_CHECK for both kinds. Libraries throw; only launcher/ ends the process.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace facetrain {

// A mistake the user can fix: a missing file, a bad flag or config field. The launcher prints what() as
// one line and exits non-zero (no stack, no "internal error" wording).
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when a collective does not complete in time (a hung or dead peer); see comm/.
class CollectiveTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace facetrain

// FT_USER_CHECK(cond, "text " << value): throws UserError with the streamed message when cond is false.
#define FT_USER_CHECK(cond, msg)                   \
  do {                                             \
    if (!(cond)) {                                 \
      std::ostringstream ft_oss_;                  \
      ft_oss_ << msg;                              \
      throw ::facetrain::UserError(ft_oss_.str()); \
    }                                              \
  } while (0)

// FT_CHECK(cond, "text " << value): an internal invariant; throws std::runtime_error with file:line.
#define FT_CHECK(cond, msg)                                                           \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::ostringstream ft_oss_;                                                     \
      ft_oss_ << __FILE__ << ":" << __LINE__ << ": check failed: " #cond ": " << msg; \
      throw std::runtime_error(ft_oss_.str());                                        \
    }                                                                                 \
  } while (0)
