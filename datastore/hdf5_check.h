// The one check macro for the HDF5 C API (FT_H5_CHECK) and a small RAII id holder. A failing call throws
// with file:line, the call, its return value, HDF5's innermost error message and a HINT for the user.
// Internal to datastore/: other libraries use StoreReader/StoreWriter, never HDF5 directly.
#pragma once

#include <hdf5.h>

#include <string>
#include <utility>

namespace facetrain {

// Turns HDF5's automatic error printing off for the calling thread (the threadsafe build keeps error
// stacks per thread); FT_H5_CHECK reports errors instead. Cheap after the first call on a thread.
void hdf5_quiet();

[[noreturn]] void hdf5_fail(const char* file, int line, const char* call, long long value, const std::string& hint);

// Owns one HDF5 id (file, dataset, dataspace, type, property list, attribute) and releases it.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  ~H5Id() { reset(); }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  H5Id& operator=(H5Id&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: passes straight into the C API
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0) H5Idec_ref(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace facetrain

// FT_H5_CHECK(H5Dread(...), "is the store complete?"): evaluates the call once and returns its value;
// a negative value throws std::runtime_error. `hint` is evaluated only on failure.
#define FT_H5_CHECK(call, hint)                                                                        \
  ([&]() {                                                                                             \
    auto ft_h5_value_ = (call);                                                                        \
    if (ft_h5_value_ < 0)                                                                              \
      ::facetrain::hdf5_fail(__FILE__, __LINE__, #call, static_cast<long long>(ft_h5_value_), (hint)); \
    return ft_h5_value_;                                                                               \
  }())
