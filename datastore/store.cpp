// The facetrain HDF5 image store (layout: datastore/README.md): StoreWriter streams whole chunks of images
// into "<path>.partial" and renames it on finish(); StoreReader reads metadata once and images either
// through H5Dread (hyperslab unions) or, for uncompressed data, with pread at the chunk addresses HDF5 reports.
#include "datastore/store.h"
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "datastore/hdf5_check.h"

namespace facetrain {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormatName = "facetrain-store";
constexpr int64_t kFormatVersion = 1;
// Target bytes per /images chunk: big enough that one H5Dwrite/pread moves a useful amount, small enough
// that a shuffled batch does not drag whole megabytes per image through a chunk cache.
constexpr int64_t kChunkTargetBytes = 768 * 1024;
constexpr int64_t kMaxChunkImages = 4096;

// Largest power of two p with p * image_bytes <= kChunkTargetBytes (at least 1): 64 for 64x64x3,
// 256 for 32x32x3, 512 for 28x28x1, 4 for 224x224x3.
int64_t chunk_images_for(int64_t image_bytes) {
  int64_t p = 1;
  while (p * 2 * image_bytes <= kChunkTargetBytes && p * 2 <= kMaxChunkImages) p *= 2;
  return p;
}

// ---- HDF5 helpers ------------------------------------------------------------------------------

H5Id vlen_string_type() {
  H5Id t(FT_H5_CHECK(H5Tcopy(H5T_C_S1), ""));
  FT_H5_CHECK(H5Tset_size(t, H5T_VARIABLE), "");
  FT_H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8), "");
  return t;
}

H5Id simple_space(std::initializer_list<hsize_t> dims) {
  std::vector<hsize_t> d(dims);
  return H5Id(FT_H5_CHECK(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), ""));
}

// An empty array is written with a null dataspace (h5py reads it as h5py.Empty); readers treat it as [].
H5Id array_space(size_t n) {
  if (n == 0) return H5Id(FT_H5_CHECK(H5Screate(H5S_NULL), ""));
  return simple_space({static_cast<hsize_t>(n)});
}

void write_attr_string(hid_t obj, const char* name, const std::string& value) {
  H5Id type = vlen_string_type();
  H5Id space(FT_H5_CHECK(H5Screate(H5S_SCALAR), ""));
  H5Id attr(FT_H5_CHECK(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), name));
  const char* ptr = value.c_str();
  FT_H5_CHECK(H5Awrite(attr, type, &ptr), name);
}

void write_attr_int(hid_t obj, const char* name, int64_t value) {
  H5Id space(FT_H5_CHECK(H5Screate(H5S_SCALAR), ""));
  H5Id attr(FT_H5_CHECK(H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), name));
  FT_H5_CHECK(H5Awrite(attr, H5T_NATIVE_INT64, &value), name);
}

template <typename T>
void write_attr_array(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const std::vector<T>& v) {
  H5Id space = array_space(v.size());
  H5Id attr(FT_H5_CHECK(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), name));
  if (!v.empty()) FT_H5_CHECK(H5Awrite(attr, mem_type, v.data()), name);
}

template <typename T>
void write_dataset(hid_t file, const char* name, hid_t file_type, hid_t mem_type, const std::vector<T>& v,
                   std::initializer_list<hsize_t> dims) {
  H5Id space = simple_space(dims);
  H5Id dset(FT_H5_CHECK(H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        std::string("cannot create dataset ") + name));
  if (!v.empty()) FT_H5_CHECK(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), name);
}

void write_strings(hid_t file, const char* name, const std::vector<std::string>& v) {
  H5Id type = vlen_string_type();
  H5Id space = simple_space({static_cast<hsize_t>(v.size())});
  H5Id dset(FT_H5_CHECK(H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        std::string("cannot create dataset ") + name));
  if (v.empty()) return;
  std::vector<const char*> ptrs(v.size());
  for (size_t i = 0; i < v.size(); ++i) ptrs[i] = v[i].c_str();
  FT_H5_CHECK(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name);
}

// The most a filtered (compressed) dataset may expand: deflate's limit is 1032:1.
constexpr uint64_t kMaxFilterExpansion = 1032;

// A damaged or hostile header can claim any number of elements: before a read allocates for them, they must fit
// in the bytes the dataset has in the file (no more than the file itself; times kMaxFilterExpansion when
// filtered). Throws std::runtime_error, which StoreReader reports as a damaged store.
// `items`: values of `type` per element (an image's H*W*C).
void check_stored(hid_t dset, hid_t type, uint64_t elements, uint64_t file_bytes, const char* name,
                  uint64_t items = 1) {
  if (elements == 0) return;
  H5Id dcpl(FT_H5_CHECK(H5Dget_create_plist(dset), name));
  const bool filtered = FT_H5_CHECK(H5Pget_nfilters(dcpl), name) > 0;
  const uint64_t stored = std::min<uint64_t>(H5Dget_storage_size(dset), file_bytes);
  const uint64_t element_bytes = std::max<uint64_t>(H5Tget_size(type), 1) * items;
  if (elements > stored * (filtered ? kMaxFilterExpansion : 1) / element_bytes)
    throw std::runtime_error(std::string("/") + name + " claims " + std::to_string(elements) + " elements of " +
                             std::to_string(element_bytes) + " bytes but holds " + std::to_string(stored) +
                             " bytes in the file");
}

void check_attr_fits(uint64_t elements, size_t element_bytes, uint64_t file_bytes, const char* name) {
  if (elements > file_bytes / std::max<size_t>(element_bytes, 1))
    throw std::runtime_error(std::string("attribute ") + name + " claims " + std::to_string(elements) + " x " +
                             std::to_string(element_bytes) + " bytes, more than the file holds");
}

// The raw bytes of a store, for the checks HDF5 1.10 does not make before it trusts them (below).
struct RawFile {
  int fd = -1;
  uint64_t bytes = 0;
  RawFile(const std::string& path, uint64_t file_bytes)
      : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), bytes(file_bytes) {
    if (fd < 0) throw std::runtime_error("cannot open: " + std::string(std::strerror(errno)));
  }
  ~RawFile() { ::close(fd); }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;
  bool read(uint64_t offset, void* out, size_t n) const {
    return offset <= bytes && n <= bytes - offset &&
           ::pread(fd, out, n, static_cast<off_t>(offset)) == static_cast<ssize_t>(n);
  }
};

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// A global heap collection (where variable-length strings live) as HDF5 1.10 walks it when it loads one
// (H5HG__cache_heap_deserialize): its objects, index -> size. HDF5 sizes its buffers from the collection size
// (one below the 4096-byte minimum underflows into a 6 GB allocation), loops forever on a free-space object of
// size 0 before the end and runs off its buffer on an object larger than the collection: those throw. nullopt
// when `at` holds no collection (HDF5 then fails cleanly). 8-byte lengths, as StoreWriter and h5py write.
std::optional<std::map<uint64_t, uint64_t>> global_heap_objects(const RawFile& raw, uint64_t at) {
  uint8_t header[16];  // "GCOL", version 1, 3 reserved, collection size
  if (!raw.read(at, header, sizeof(header)) || std::memcmp(header, "GCOL", 4) != 0 || header[4] != 1)
    return std::nullopt;
  const uint64_t size = get_le(header + 8, 8);
  if (size < 4096 || size > raw.bytes - at)
    throw std::runtime_error("global heap at byte " + std::to_string(at) + " is damaged (" + std::to_string(size) +
                             " bytes)");
  std::map<uint64_t, uint64_t> objects;
  for (uint64_t p = sizeof(header); p + 16 <= size;) {  // less than an object header left: free space
    uint8_t object[16];                                 // index, references, reserved, size
    if (!raw.read(at + p, object, sizeof(object))) return std::nullopt;
    const uint64_t index = get_le(object, 2), object_size = get_le(object + 8, 8);
    const uint64_t need = index > 0 ? (object_size > size ? size + 1 : 16 + (object_size + 7) / 8 * 8) : object_size;
    if (need == 0 || need > size - p)
      throw std::runtime_error("global heap at byte " + std::to_string(at) + " is damaged (object " +
                               std::to_string(index) + " of " + std::to_string(object_size) + " bytes)");
    if (index > 0) objects[index] = object_size;
    p += need;
  }
  return objects;
}

// HDF5 1.10 trusts a variable-length string's reference (H5T__conv_vlen, H5HG_read): it allocates the buffer
// from the stored length (up to 4 GiB) and indexes the heap collection's objects with the stored index, unchecked.
// So a dataset's references are checked in its raw data first: contiguous (as StoreWriter and h5py write
// strings), each a uint32 length, the collection's address and a uint32 object index; the object must exist and
// fit the length.
void check_vlen_references(hid_t file, hid_t dset, size_t n, const RawFile& raw, const char* name) {
  H5Id dcpl(FT_H5_CHECK(H5Dget_create_plist(dset), name));
  const haddr_t offset = H5Dget_offset(dset);
  if (H5Pget_layout(dcpl) != H5D_CONTIGUOUS || offset == HADDR_UNDEF)
    throw std::runtime_error(std::string("/") + name + " is not a contiguous dataset of strings");
  H5Id fcpl(FT_H5_CHECK(H5Fget_create_plist(file), name));
  size_t address_bytes = 0, length_bytes = 0;
  FT_H5_CHECK(H5Pget_sizes(fcpl, &address_bytes, &length_bytes), name);
  if (address_bytes != 8 || length_bytes != 8) throw std::runtime_error("not 8-byte file addresses");
  const uint64_t element_bytes = 16;
  std::vector<uint8_t> data(n > raw.bytes / element_bytes ? 0 : n * element_bytes);
  if (n > raw.bytes / element_bytes || !raw.read(offset, data.data(), data.size()))
    throw std::runtime_error(std::string("/") + name + " claims more strings than the file holds");
  std::map<uint64_t, std::optional<std::map<uint64_t, uint64_t>>> heaps;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = data.data() + i * element_bytes;
    const uint64_t length = get_le(p, 4), address = get_le(p + 4, 8), index = get_le(p + 12, 4);
    if (address == 0 && length == 0) continue;  // a null string: no heap object
    auto it = heaps.find(address);
    if (it == heaps.end()) it = heaps.emplace(address, global_heap_objects(raw, address)).first;
    const auto object = it->second ? it->second->find(index) : decltype(it->second->find(index)){};
    if (!it->second || object == it->second->end() || object->second > length || length > raw.bytes)
      throw std::runtime_error(std::string("/") + name + "[" + std::to_string(i) + "] refers to a heap object (" +
                               std::to_string(length) + " bytes, index " + std::to_string(index) + " at byte " +
                               std::to_string(address) + ") the file does not hold");
  }
}

// Every global heap collection in the file (a "GCOL" signature) outside /images' data (`skip`: pixels, never
// metadata) is walked as HDF5 would walk it (global_heap_objects throws on one it would hang or crash on):
// string attributes point into them from object headers, out of reach of check_vlen_references. Costs one read
// of the non-image bytes of the file. (A file crafted to lay an image chunk over a collection hides that
// collection from this scan; a damaged one does not.)
void check_global_heaps(const RawFile& raw, std::vector<std::pair<uint64_t, uint64_t>> skip) {
  for (auto& [first, size] : skip) size = first < raw.bytes ? std::min(size, raw.bytes - first) : 0;
  std::sort(skip.begin(), skip.end());
  std::vector<char> block(size_t{1} << 20);
  uint64_t offset = 0;
  size_t next_skip = 0;
  while (offset < raw.bytes) {
    while (next_skip < skip.size() && skip[next_skip].first + skip[next_skip].second <= offset) ++next_skip;
    if (next_skip < skip.size() && skip[next_skip].first <= offset) {
      offset = skip[next_skip].first + skip[next_skip].second;
      continue;
    }
    uint64_t end = std::min<uint64_t>(raw.bytes, offset + block.size());
    if (next_skip < skip.size()) end = std::min<uint64_t>(end, skip[next_skip].first);
    const size_t n = static_cast<size_t>(end - offset);
    if (!raw.read(offset, block.data(), n)) throw std::runtime_error("cannot read byte " + std::to_string(offset));
    for (const char* hit = block.data();
         (hit = static_cast<const char*>(::memmem(hit, block.data() + n - hit, "GCOL", 4))) != nullptr; ++hit)
      global_heap_objects(raw, offset + static_cast<uint64_t>(hit - block.data()));
    // Blocks overlap by 3 bytes so that a signature across a block boundary is found.
    offset = end >= raw.bytes || n <= 3 ? end : end - 3;
  }
}

// The file ranges of /images' data (contiguous, or each allocated chunk), which hold pixels, never metadata.
std::vector<std::pair<uint64_t, uint64_t>> image_data_ranges(hid_t images) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  H5Id dcpl(FT_H5_CHECK(H5Dget_create_plist(images), "images"));
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  if (layout == H5D_CONTIGUOUS) {
    const haddr_t offset = H5Dget_offset(images);
    if (offset != HADDR_UNDEF) ranges.emplace_back(offset, H5Dget_storage_size(images));
  } else if (layout == H5D_CHUNKED) {
    hsize_t chunks = 0;
    if (H5Dget_num_chunks(images, H5S_ALL, &chunks) >= 0) {
      for (hsize_t i = 0; i < chunks; ++i) {
        haddr_t address = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info(images, H5S_ALL, i, nullptr, nullptr, &address, &size) < 0) break;
        if (address != HADDR_UNDEF) ranges.emplace_back(address, size);
      }
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return ranges;
}

bool has_attr(hid_t obj, const char* name) { return FT_H5_CHECK(H5Aexists(obj, name), name) > 0; }

bool has_link(hid_t file, const char* name) { return FT_H5_CHECK(H5Lexists(file, name, H5P_DEFAULT), name) > 0; }

// Reads a scalar string attribute, variable- or fixed-length.
std::string read_attr_string(hid_t obj, const char* name, uint64_t file_bytes) {
  H5Id attr(FT_H5_CHECK(H5Aopen(obj, name, H5P_DEFAULT), name));
  H5Id type(FT_H5_CHECK(H5Aget_type(attr), name));
  FT_CHECK(H5Tget_class(type) == H5T_STRING, "attribute " << name << " is not a string");
  H5Id space(FT_H5_CHECK(H5Aget_space(attr), name));
  if (FT_H5_CHECK(H5Sget_simple_extent_npoints(space), name) != 1)
    throw std::runtime_error(std::string("attribute ") + name + " is not one string");
  if (FT_H5_CHECK(H5Tis_variable_str(type), name) > 0) {
    H5Id mem = vlen_string_type();
    char* ptr = nullptr;
    FT_H5_CHECK(H5Aread(attr, mem, &ptr), name);
    std::string s = ptr ? ptr : "";
    H5free_memory(ptr);
    return s;
  }
  size_t size = H5Tget_size(type);
  check_attr_fits(1, size, file_bytes, name);
  std::string s(size, '\0');
  FT_H5_CHECK(H5Aread(attr, type, s.data()), name);
  return s.substr(0, s.find('\0'));
}

int64_t read_attr_int(hid_t obj, const char* name) {
  H5Id attr(FT_H5_CHECK(H5Aopen(obj, name, H5P_DEFAULT), name));
  H5Id space(FT_H5_CHECK(H5Aget_space(attr), name));
  if (FT_H5_CHECK(H5Sget_simple_extent_npoints(space), name) != 1)
    throw std::runtime_error(std::string("attribute ") + name + " is not one integer");
  int64_t v = 0;
  FT_H5_CHECK(H5Aread(attr, H5T_NATIVE_INT64, &v), name);
  return v;
}

template <typename T>
std::vector<T> read_attr_array(hid_t obj, const char* name, hid_t mem_type, uint64_t file_bytes) {
  if (!has_attr(obj, name)) return {};
  H5Id attr(FT_H5_CHECK(H5Aopen(obj, name, H5P_DEFAULT), name));
  H5Id space(FT_H5_CHECK(H5Aget_space(attr), name));
  hssize_t n = FT_H5_CHECK(H5Sget_simple_extent_npoints(space), name);
  H5Id type(FT_H5_CHECK(H5Aget_type(attr), name));
  check_attr_fits(static_cast<uint64_t>(n), H5Tget_size(type), file_bytes, name);
  std::vector<T> v(static_cast<size_t>(n));
  if (n > 0) FT_H5_CHECK(H5Aread(attr, mem_type, v.data()), name);
  return v;
}

template <typename T>
std::vector<T> read_dataset(hid_t file, const char* name, hid_t mem_type, int64_t expected, uint64_t file_bytes) {
  H5Id dset(FT_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), std::string("store has no dataset ") + name));
  H5Id space(FT_H5_CHECK(H5Dget_space(dset), name));
  hssize_t n = FT_H5_CHECK(H5Sget_simple_extent_npoints(space), name);
  if (n != expected)
    throw std::runtime_error(std::string("/") + name + " has " + std::to_string(n) + " entries where " +
                             std::to_string(expected) + " were expected");
  H5Id type(FT_H5_CHECK(H5Dget_type(dset), name));
  check_stored(dset, type, static_cast<uint64_t>(n), file_bytes, name);
  std::vector<T> v(static_cast<size_t>(n));
  if (n > 0) FT_H5_CHECK(H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), name);
  return v;
}

// expected < 0: any number of strings.
std::vector<std::string> read_strings(hid_t file, const char* name, int64_t expected, const std::string& path,
                                      uint64_t file_bytes) {
  H5Id dset(FT_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), std::string("store has no dataset ") + name));
  H5Id space(FT_H5_CHECK(H5Dget_space(dset), name));
  H5Id type(FT_H5_CHECK(H5Dget_type(dset), name));
  const size_t n = static_cast<size_t>(FT_H5_CHECK(H5Sget_simple_extent_npoints(space), name));
  if (expected >= 0 && n != static_cast<size_t>(expected))
    throw std::runtime_error(std::string("/") + name + " has " + std::to_string(n) + " entries where " +
                             std::to_string(expected) + " were expected");
  if (H5Tget_class(type) != H5T_STRING) throw std::runtime_error(std::string("/") + name + " is not strings");
  check_stored(dset, type, n, file_bytes, name);
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (FT_H5_CHECK(H5Tis_variable_str(type), name) > 0) {
    check_vlen_references(file, dset, n, RawFile(path, file_bytes), name);
    H5Id mem = vlen_string_type();
    std::vector<char*> ptrs(n, nullptr);
    FT_H5_CHECK(H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name);
    for (size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
  } else {
    const size_t size = H5Tget_size(type);
    std::vector<char> buf(n * size);
    FT_H5_CHECK(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), name);
    for (size_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out[i].assign(p, strnlen(p, size));
    }
  }
  return out;
}

}  // namespace

// ---- hdf5_check.h --------------------------------------------------------------------------------

void hdf5_quiet() {
  thread_local bool quiet = false;
  if (!quiet) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    quiet = true;
  }
}

namespace {
herr_t innermost_error(unsigned n, const H5E_error2_t* err, void* data) {
  if (n == 0 && err->desc) *static_cast<std::string*>(data) = std::string(err->func_name) + ": " + err->desc;
  return 0;
}
herr_t every_error(unsigned, const H5E_error2_t* err, void* data) {
  if (err->desc) *static_cast<std::string*>(data) += std::string(err->desc) + "; ";
  return 0;
}
// Every description on HDF5's error stack (not cleared), for telling one cause of a failed call from another.
std::string hdf5_error_text() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, every_error, &text);
  return text;
}
}  // namespace

void hdf5_fail(const char* file, int line, const char* call, long long value, const std::string& hint) {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &detail);
  H5Eclear2(H5E_DEFAULT);
  std::ostringstream msg;
  msg << file << ":" << line << ": HDF5 call failed: " << call << " returned " << value;
  if (!detail.empty()) msg << " (" << detail << ")";
  if (!hint.empty()) msg << " HINT: " << hint;
  throw std::runtime_error(msg.str());
}

// ---- splits ---------------------------------------------------------------------------------------

const char* split_name(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kVal: return "val";
    case Split::kTest: return "test";
  }
  return "?";
}

Split parse_split(const std::string& name, const std::string& what) {
  if (name == "train") return Split::kTrain;
  if (name == "val") return Split::kVal;
  if (name == "test") return Split::kTest;
  throw UserError(what + ": unknown split '" + name + "' (expected train, val or test)");
}

// ---- StoreWriter ------------------------------------------------------------------------------------

struct StoreWriter::Impl {
  std::string path, partial;
  StoreLayout layout;
  int64_t image_bytes = 0, chunk_images = 0, pixels_per_image = 0;
  H5Id file, images;
  std::vector<uint8_t> buffer;  // one chunk of images, written with one H5Dwrite when full
  int64_t buffered = 0, written = 0;
  std::vector<int64_t> labels;
  std::vector<uint8_t> splits;
  std::vector<std::string> filenames;
  std::vector<int8_t> attributes;
  std::vector<int32_t> identities;
  // Exact per-channel sums of train pixel values (0..255) and of their squares: integers, so the
  // statistics do not depend on order or on the data set size (2^64 / 255^2 ~ 2.8e14 pixels per channel).
  std::vector<uint64_t> sum, sum_sq;
  int64_t train_images = 0;
  bool finished = false;

  void flush() {
    if (buffered == 0) return;
    hsize_t new_dims[4] = {static_cast<hsize_t>(written + buffered), static_cast<hsize_t>(layout.height),
                           static_cast<hsize_t>(layout.width), static_cast<hsize_t>(layout.channels)};
    FT_H5_CHECK(H5Dset_extent(images, new_dims), "is the disk full?");
    H5Id file_space(FT_H5_CHECK(H5Dget_space(images), ""));
    hsize_t start[4] = {static_cast<hsize_t>(written), 0, 0, 0};
    hsize_t count[4] = {static_cast<hsize_t>(buffered), new_dims[1], new_dims[2], new_dims[3]};
    FT_H5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr), "");
    H5Id mem_space(FT_H5_CHECK(H5Screate_simple(4, count, nullptr), ""));
    FT_H5_CHECK(H5Dwrite(images, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT, buffer.data()),
                "could not write " + partial + "; is the disk full?");
    written += buffered;
    buffered = 0;
  }

  void accumulate_stats(const uint8_t* pixels) {
    const int c = layout.channels;
    // Per-image partial sums fit 64 bits for any image size; one pass, channel-interleaved.
    for (int ch = 0; ch < c; ++ch) {
      uint64_t s = 0, s2 = 0;
      for (int64_t p = ch; p < image_bytes; p += c) {
        const uint64_t v = pixels[p];
        s += v;
        s2 += v * v;
      }
      sum[ch] += s;
      sum_sq[ch] += s2;
    }
    ++train_images;
  }

  void write_metadata() {
    const hsize_t n = static_cast<hsize_t>(written);
    write_dataset(file, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, labels, {n});
    write_dataset(file, "split", H5T_STD_U8LE, H5T_NATIVE_UINT8, splits, {n});
    write_strings(file, "filenames", filenames);
    write_strings(file, "class_names", layout.class_names);
    if (!layout.attribute_names.empty()) {
      write_dataset(file, "attributes", H5T_STD_I8LE, H5T_NATIVE_INT8, attributes,
                    {n, static_cast<hsize_t>(layout.attribute_names.size())});
      write_strings(file, "attribute_names", layout.attribute_names);
    }
    if (layout.has_identities) write_dataset(file, "identities", H5T_STD_I32LE, H5T_NATIVE_INT32, identities, {n});

    // Statistics of the train split.
    const int c = layout.channels;
    std::vector<double> mean(c, 0.0), stddev(c, 0.0);
    const double n_pix = static_cast<double>(train_images) * layout.height * layout.width;
    for (int ch = 0; ch < c && train_images > 0; ++ch) {
      // var = (S2 - S1^2/n) / n in long double from exact integer sums; population std (ddof = 0).
      const long double s = static_cast<long double>(sum[ch]), s2 = static_cast<long double>(sum_sq[ch]);
      const long double m = s / n_pix;
      long double var = (s2 - s * m) / n_pix;
      if (var < 0) var = 0;
      mean[ch] = static_cast<double>(m / 255.0L);
      stddev[ch] = static_cast<double>(std::sqrt(var) / 255.0L);
    }
    const size_t k = layout.class_names.size();
    std::vector<int64_t> class_counts(k, 0);
    std::vector<int64_t> split_counts(3, 0);
    for (size_t i = 0; i < labels.size(); ++i) {
      split_counts[splits[i]]++;
      if (splits[i] == static_cast<uint8_t>(Split::kTrain) && k > 0) class_counts[labels[i]]++;
    }
    std::vector<double> class_weights(k, 0.0);
    for (size_t j = 0; j < k; ++j) {
      // sklearn's compute_class_weight('balanced'); a class absent from train gets weight 0.
      if (class_counts[j] > 0)
        class_weights[j] = static_cast<double>(split_counts[0]) / (static_cast<double>(k) * class_counts[j]);
    }

    write_attr_string(file, "format", kFormatName);
    write_attr_int(file, "format_version", kFormatVersion);
    write_attr_int(file, "count", written);
    write_attr_int(file, "height", layout.height);
    write_attr_int(file, "width", layout.width);
    write_attr_int(file, "channels", layout.channels);
    write_attr_string(file, "pixel_layout", layout.channels == 1 ? "NHWC uint8 gray" : "NHWC uint8 RGB");
    write_attr_string(file, "label_source", layout.label_source);
    write_attr_string(file, "split_codes", "0=train 1=val 2=test");
    write_attr_array(file, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, mean);
    write_attr_array(file, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, stddev);
    write_attr_array(file, "class_counts", H5T_STD_I64LE, H5T_NATIVE_INT64, class_counts);
    write_attr_array(file, "class_weights", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, class_weights);
    write_attr_array(file, "split_counts", H5T_STD_I64LE, H5T_NATIVE_INT64, split_counts);
  }

  void close_and_remove() noexcept {
    images.reset();
    file.reset();
    std::error_code ec;
    fs::remove(partial, ec);
  }

  // Also runs when the StoreWriter constructor throws after creating the partial file.
  ~Impl() {
    if (!finished && !partial.empty()) close_and_remove();
  }
};

StoreWriter::StoreWriter(const std::string& path, const StoreLayout& layout, bool overwrite)
    : impl_(std::make_unique<Impl>()) {
  hdf5_quiet();
  auto& m = *impl_;
  FT_USER_CHECK(!path.empty(), "store output path is empty");
  FT_USER_CHECK(!fs::is_directory(path), "store output " << path << " is a directory");
  FT_USER_CHECK(overwrite || !fs::exists(path),
                "store output " << path << " already exists; pass --overwrite to replace it");
  const fs::path parent = fs::path(path).parent_path();
  FT_USER_CHECK(parent.empty() || fs::is_directory(parent),
                "cannot create store " << path << ": directory " << parent.string() << " does not exist");
  FT_CHECK(layout.height > 0 && layout.width > 0 && (layout.channels == 1 || layout.channels == 3),
           "bad store shape " << layout.height << "x" << layout.width << "x" << layout.channels);
  m.path = path;
  m.partial = path + ".partial";
  m.layout = layout;
  m.pixels_per_image = static_cast<int64_t>(layout.height) * layout.width;
  m.image_bytes = m.pixels_per_image * layout.channels;
  m.chunk_images = chunk_images_for(m.image_bytes);
  m.buffer.resize(static_cast<size_t>(m.chunk_images * m.image_bytes));
  m.sum.assign(layout.channels, 0);
  m.sum_sq.assign(layout.channels, 0);

  // Superblock version 3 (the 1.10 format) records in the file that a writer has it open, so a reader that
  // does not lock files (StoreReader) still refuses a store being written instead of reading a torn one.
  H5Id create_fapl(FT_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), ""));
  FT_H5_CHECK(H5Pset_libver_bounds(create_fapl, H5F_LIBVER_V110, H5F_LIBVER_V110), "");
  m.file = H5Id(FT_H5_CHECK(H5Fcreate(m.partial.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, create_fapl),
                            "cannot create " + m.partial + "; is the directory writable?"));
  hsize_t dims[4] = {0, static_cast<hsize_t>(layout.height), static_cast<hsize_t>(layout.width),
                     static_cast<hsize_t>(layout.channels)};
  hsize_t max_dims[4] = {H5S_UNLIMITED, dims[1], dims[2], dims[3]};
  hsize_t chunk[4] = {static_cast<hsize_t>(m.chunk_images), dims[1], dims[2], dims[3]};
  H5Id space(FT_H5_CHECK(H5Screate_simple(4, dims, max_dims), ""));
  H5Id dcpl(FT_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), ""));
  FT_H5_CHECK(H5Pset_chunk(dcpl, 4, chunk), "");
  // Every chunk is written whole, so HDF5 need not pre-fill it.
  FT_H5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "");
  m.images =
      H5Id(FT_H5_CHECK(H5Dcreate2(m.file, "images", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), m.partial));
  write_attr_string(m.images, "layout", "N x height x width x channels, uint8, RGB channel order");
}

StoreWriter::~StoreWriter() = default;  // Impl removes an unfinished partial file

void StoreWriter::append(const uint8_t* pixels, int64_t label, Split split, const std::string& filename,
                         const std::vector<int8_t>& attributes, int32_t identity) {
  auto& m = *impl_;
  FT_CHECK(!m.finished, "append after finish()");
  FT_CHECK(pixels != nullptr, "null pixels");
  const auto k = static_cast<int64_t>(m.layout.class_names.size());
  FT_CHECK(k == 0 || (label >= 0 && label < k), "label " << label << " outside [0, " << k << ") for " << filename);
  FT_CHECK(static_cast<uint8_t>(split) <= 2, "bad split code " << static_cast<int>(split));
  FT_CHECK(attributes.size() == m.layout.attribute_names.size(),
           "expected " << m.layout.attribute_names.size() << " attributes, got " << attributes.size());
  hdf5_quiet();
  std::memcpy(m.buffer.data() + m.buffered * m.image_bytes, pixels, static_cast<size_t>(m.image_bytes));
  ++m.buffered;
  m.labels.push_back(label);
  m.splits.push_back(static_cast<uint8_t>(split));
  m.filenames.push_back(filename);
  m.attributes.insert(m.attributes.end(), attributes.begin(), attributes.end());
  if (m.layout.has_identities) m.identities.push_back(identity);
  if (split == Split::kTrain) m.accumulate_stats(pixels);
  if (m.buffered == m.chunk_images) m.flush();
}

int64_t StoreWriter::count() const { return impl_->written + impl_->buffered; }

void StoreWriter::finish() {
  auto& m = *impl_;
  FT_CHECK(!m.finished, "finish() called twice");
  hdf5_quiet();
  m.flush();
  m.write_metadata();
  m.images.reset();
  const hid_t file = m.file.get();
  // H5Fclose flushes; check it (a full disk shows up here), then release our id without a second close.
  H5Iinc_ref(file);
  m.file.reset();
  FT_H5_CHECK(H5Fclose(file), "could not finish " + m.partial + "; is the disk full?");
  publish_file(m.partial, m.path);
  m.finished = true;
}

StoreLayout layout_of(const StoreInfo& info) {
  return StoreLayout{info.height,       info.width,           info.channels,      info.class_names,
                     info.label_source, info.attribute_names, info.has_identities};
}

// ---- StoreReader ------------------------------------------------------------------------------------

// Reading a store turns every failure the file can cause (a failed HDF5 call, a size that does not add up, a
// short pread: std::runtime_error) into one UserError naming the store: a damaged or hostile file is the user's
// to replace, not a facetrain bug. UserErrors pass unchanged.
namespace {
template <typename F>
auto reading(const std::string& path, F&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const UserError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw UserError("store " + path + " is damaged: " + e.what());
  }
}
}  // namespace

struct StoreReader::Impl {
  std::string path;
  uint64_t file_bytes = 0;  // bounds every allocation a header asks for
  StoreInfo info;
  H5Id file, images;
  int64_t image_bytes = 0, chunk_images = 0;
  // Direct reads: file offset of each chunk (uncompressed data, no user block), read with pread.
  bool direct_possible = false, direct_enabled = false;
  int fd = -1;
  std::vector<int64_t> chunk_offset;
  std::vector<int64_t> order;    // scratch: positions sorted by store index
  std::vector<uint8_t> staging;  // scratch for the HDF5 path and multi-image runs

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  void check_index(int64_t i) const {
    FT_CHECK(i >= 0 && i < info.count, "image index " << i << " outside [0, " << info.count << ") of " << path);
  }

  int64_t image_offset(int64_t i) const {
    return chunk_offset[static_cast<size_t>(i / chunk_images)] + (i % chunk_images) * image_bytes;
  }

  void pread_all(uint8_t* dst, int64_t bytes, int64_t offset) const {
    while (bytes > 0) {
      const ssize_t got = ::pread(fd, dst, static_cast<size_t>(bytes), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0)
        throw std::runtime_error("reading " + path + " at byte " + std::to_string(offset) + " failed: " +
                                 (got < 0 ? std::strerror(errno) : "unexpected end of file (truncated store?)"));
      dst += got;
      bytes -= got;
      offset += got;
    }
  }

  void setup_direct_reads() {
    H5Id fcpl(FT_H5_CHECK(H5Fget_create_plist(file), path));
    hsize_t userblock = 0;
    FT_H5_CHECK(H5Pget_userblock(fcpl, &userblock), path);
    H5Id dcpl(FT_H5_CHECK(H5Dget_create_plist(images), path));
    if (userblock != 0 || FT_H5_CHECK(H5Pget_nfilters(dcpl), path) != 0) return;
    const int64_t n = info.count;
    const int64_t n_chunks = (n + chunk_images - 1) / chunk_images;
    std::vector<int64_t> offsets(static_cast<size_t>(n_chunks));
    const H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout == H5D_CONTIGUOUS) {
      const haddr_t base = H5Dget_offset(images);
      if (base == HADDR_UNDEF) return;
      for (int64_t k = 0; k < n_chunks; ++k) offsets[k] = static_cast<int64_t>(base) + k * chunk_images * image_bytes;
    } else if (layout == H5D_CHUNKED) {
      for (int64_t k = 0; k < n_chunks; ++k) {
        hsize_t coord[4] = {static_cast<hsize_t>(k * chunk_images), 0, 0, 0};
        unsigned filter_mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info_by_coord(images, coord, &filter_mask, &addr, &size) < 0 || addr == HADDR_UNDEF ||
            size != static_cast<hsize_t>(chunk_images * image_bytes)) {
          H5Eclear2(H5E_DEFAULT);
          return;  // unallocated or unusual chunk: stay on H5Dread
        }
        offsets[k] = static_cast<int64_t>(addr);
      }
    } else {
      return;
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    chunk_offset = std::move(offsets);
    direct_possible = direct_enabled = true;
  }

  // HDF5 path: reads the sorted, de-duplicated indices uniq[0..u) into staging (in that order), one
  // H5Dread per run of consecutive indices. (One H5Dread over the union of a batch's hyperslabs was
  // measured at ~600 images/s for 256-image batches of 64x64x3: HDF5 1.10 walks the span tree per chunk.)
  void h5_read_sorted(const int64_t* uniq, int64_t u) {
    const hsize_t h = static_cast<hsize_t>(info.height), w = static_cast<hsize_t>(info.width),
                  c = static_cast<hsize_t>(info.channels);
    H5Id file_space(FT_H5_CHECK(H5Dget_space(images), path));
    for (int64_t a = 0; a < u;) {
      int64_t b = a + 1;
      while (b < u && uniq[b] == uniq[b - 1] + 1) ++b;
      hsize_t start[4] = {static_cast<hsize_t>(uniq[a]), 0, 0, 0};
      hsize_t count[4] = {static_cast<hsize_t>(b - a), h, w, c};
      FT_H5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr), path);
      H5Id mem_space(FT_H5_CHECK(H5Screate_simple(4, count, nullptr), path));
      FT_H5_CHECK(
          H5Dread(images, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT, staging.data() + a * image_bytes),
          "is " + path + " complete and readable?");
      a = b;
    }
  }
};

// A function-try-block: whatever the file makes fail on the way becomes one UserError (reading() above).
StoreReader::StoreReader(const std::string& path) try : impl_(std::make_unique<Impl>()) {
  hdf5_quiet();
  auto& m = *impl_;
  m.path = path;
  FT_USER_CHECK(fs::exists(path), "store " << path << " does not exist (create one with facetrain ingest or synth)");
  FT_USER_CHECK(!fs::is_directory(path), "store " << path << " is a directory, not an HDF5 file");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  FT_USER_CHECK(is_hdf5 > 0, "store " << path << " is not an HDF5 file (is it a partial or foreign file?)");
  m.file_bytes = fs::file_size(path);
  // A small chunk cache would hold whole 768 KiB chunks for one 12 KiB image of a shuffled batch; with the
  // cache off HDF5 reads only the selected bytes of uncompressed chunks.
  // No file locking: read-only readers need none, and flock fails on many cluster file systems (NFS, Lustre:
  // h5py's "unable to lock file"). A writer is detected by the superblock's write flag instead (v3 stores).
  H5Id fapl(FT_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), ""));
  FT_H5_CHECK(H5Pset_file_locking(fapl, false, true), "");
  m.file = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl));
  if (!m.file.valid()) {
    const std::string why = hdf5_error_text();
    H5Eclear2(H5E_DEFAULT);
    FT_USER_CHECK(why.find("already open for write") == std::string::npos,
                  "store " << path
                           << " is open for writing in another process; wait until it is closed (if "
                              "the writer died: h5clear -s "
                           << path << ")");
    throw UserError("store " + path + " cannot be opened by HDF5 (truncated or damaged?)");
  }
  {
    std::vector<std::pair<uint64_t, uint64_t>> pixels;
    if (has_link(m.file, "images")) {
      H5Id images(H5Dopen2(m.file, "images", H5P_DEFAULT));
      if (images.valid()) pixels = image_data_ranges(images);
      H5Eclear2(H5E_DEFAULT);
    }
    check_global_heaps(RawFile(path, m.file_bytes), std::move(pixels));
  }
  FT_USER_CHECK(has_attr(m.file, "format") && read_attr_string(m.file, "format", m.file_bytes) == kFormatName,
                "store " << path << " is an HDF5 file but not a facetrain store (no root attribute format = '"
                         << kFormatName << "'); create one with facetrain ingest or synth");
  const int64_t version = read_attr_int(m.file, "format_version");
  FT_USER_CHECK(version <= kFormatVersion, "store " << path << " has format_version " << version
                                                    << ", newer than this facetrain reads (" << kFormatVersion << ")");
  FT_USER_CHECK(has_link(m.file, "images") && has_link(m.file, "labels") && has_link(m.file, "split"),
                "store " << path << " lacks /images, /labels or /split; it is damaged");

  H5Id dapl(FT_H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), ""));
  FT_H5_CHECK(H5Pset_chunk_cache(dapl, 0, 0, 1.0), "");
  m.images = H5Id(FT_H5_CHECK(H5Dopen2(m.file, "images", dapl), path));
  H5Id space(FT_H5_CHECK(H5Dget_space(m.images), path));
  hsize_t dims[4] = {0, 0, 0, 0};
  FT_USER_CHECK(H5Sget_simple_extent_ndims(space) == 4, "store " << path << ": /images is not 4-D (N,H,W,C)");
  FT_H5_CHECK(H5Sget_simple_extent_dims(space, dims, nullptr), path);
  H5Id type(FT_H5_CHECK(H5Dget_type(m.images), path));
  FT_USER_CHECK(H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1,
                "store " << path << ": /images is not uint8");

  // Every image dimension fits an int, and the images fit in the file (compression aside): no reader allocates
  // for images a header merely claims.
  const hsize_t kMaxSide = 1 << 16;
  FT_USER_CHECK(
      dims[1] >= 1 && dims[1] <= kMaxSide && dims[2] >= 1 && dims[2] <= kMaxSide && dims[3] >= 1 && dims[3] <= kMaxSide,
      "store " << path << ": /images has a bad shape [" << dims[0] << ", " << dims[1] << ", " << dims[2] << ", "
               << dims[3] << "] (damaged?)");
  check_stored(m.images, type, dims[0], m.file_bytes, "images", dims[1] * dims[2] * dims[3]);

  auto& info = m.info;
  info.count = static_cast<int64_t>(dims[0]);
  info.height = static_cast<int>(dims[1]);
  info.width = static_cast<int>(dims[2]);
  info.channels = static_cast<int>(dims[3]);
  m.image_bytes = static_cast<int64_t>(dims[1] * dims[2] * dims[3]);
  H5Id dcpl(FT_H5_CHECK(H5Dget_create_plist(m.images), path));
  if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
    hsize_t chunk[4] = {0, 0, 0, 0};
    FT_H5_CHECK(H5Pget_chunk(dcpl, 4, chunk), path);
    m.chunk_images = static_cast<int64_t>(chunk[0]);
    FT_USER_CHECK(m.chunk_images >= 1, "store " << path << ": /images has chunks of " << chunk[0] << " images");
  } else {
    m.chunk_images = chunk_images_for(m.image_bytes);  // contiguous: pseudo-chunks of the same size
  }
  info.class_names = read_strings(m.file, "class_names", -1, path, m.file_bytes);
  info.label_source = has_attr(m.file, "label_source") ? read_attr_string(m.file, "label_source", m.file_bytes) : "";
  info.mean = read_attr_array<float>(m.file, "mean", H5T_NATIVE_FLOAT, m.file_bytes);
  info.std = read_attr_array<float>(m.file, "std", H5T_NATIVE_FLOAT, m.file_bytes);
  info.class_counts = read_attr_array<int64_t>(m.file, "class_counts", H5T_NATIVE_INT64, m.file_bytes);
  info.class_weights = read_attr_array<float>(m.file, "class_weights", H5T_NATIVE_FLOAT, m.file_bytes);
  info.split_counts = read_attr_array<int64_t>(m.file, "split_counts", H5T_NATIVE_INT64, m.file_bytes);
  if (has_link(m.file, "attribute_names"))
    info.attribute_names = read_strings(m.file, "attribute_names", -1, path, m.file_bytes);
  info.has_identities = has_link(m.file, "identities");
  m.setup_direct_reads();
} catch (const UserError&) {
  throw;
} catch (const std::runtime_error& e) {
  throw UserError("store " + path + " is damaged: " + e.what());
}

StoreReader::~StoreReader() = default;

const std::string& StoreReader::path() const { return impl_->path; }
const StoreInfo& StoreReader::info() const { return impl_->info; }
int64_t StoreReader::image_bytes() const { return impl_->image_bytes; }
int64_t StoreReader::chunk_images() const { return impl_->chunk_images; }
bool StoreReader::direct_reads() const { return impl_->direct_enabled; }
void StoreReader::set_direct_reads(bool enabled) { impl_->direct_enabled = enabled && impl_->direct_possible; }

std::vector<int64_t> StoreReader::labels() const {
  hdf5_quiet();
  return reading(impl_->path, [&] {
    return read_dataset<int64_t>(impl_->file, "labels", H5T_NATIVE_INT64, impl_->info.count, impl_->file_bytes);
  });
}

std::vector<uint8_t> StoreReader::splits() const {
  hdf5_quiet();
  return reading(impl_->path, [&] {
    return read_dataset<uint8_t>(impl_->file, "split", H5T_NATIVE_UINT8, impl_->info.count, impl_->file_bytes);
  });
}

std::vector<int64_t> StoreReader::split_indices(Split split) const {
  const std::vector<uint8_t> s = splits();
  std::vector<int64_t> out;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == static_cast<uint8_t>(split)) out.push_back(static_cast<int64_t>(i));
  return out;
}

std::vector<std::string> StoreReader::filenames() const {
  hdf5_quiet();
  return reading(impl_->path, [&] {
    return read_strings(impl_->file, "filenames", impl_->info.count, impl_->path, impl_->file_bytes);
  });
}

std::vector<int32_t> StoreReader::identities() const {
  hdf5_quiet();
  if (!impl_->info.has_identities) return {};
  return reading(impl_->path, [&] {
    return read_dataset<int32_t>(impl_->file, "identities", H5T_NATIVE_INT32, impl_->info.count, impl_->file_bytes);
  });
}

std::vector<int8_t> StoreReader::attributes() const {
  hdf5_quiet();
  if (impl_->info.attribute_names.empty()) return {};
  const int64_t n = impl_->info.count * static_cast<int64_t>(impl_->info.attribute_names.size());
  return reading(impl_->path, [&] {
    return read_dataset<int8_t>(impl_->file, "attributes", H5T_NATIVE_INT8, n, impl_->file_bytes);
  });
}

void StoreReader::read_range(int64_t begin, int64_t end, uint8_t* out) {
  auto& m = *impl_;
  FT_CHECK(begin >= 0 && begin <= end && end <= m.info.count,
           "range [" << begin << ", " << end << ") outside [0, " << m.info.count << ") of " << m.path);
  if (begin == end) return;
  reading(m.path, [&] {
    if (m.direct_enabled) {
      // One pread per chunk touched (chunks are not guaranteed adjacent in the file).
      for (int64_t i = begin; i < end;) {
        const int64_t chunk_end = std::min(end, (i / m.chunk_images + 1) * m.chunk_images);
        m.pread_all(out + (i - begin) * m.image_bytes, (chunk_end - i) * m.image_bytes, m.image_offset(i));
        i = chunk_end;
      }
      return;
    }
    hdf5_quiet();
    hsize_t start[4] = {static_cast<hsize_t>(begin), 0, 0, 0};
    hsize_t count[4] = {static_cast<hsize_t>(end - begin), static_cast<hsize_t>(m.info.height),
                        static_cast<hsize_t>(m.info.width), static_cast<hsize_t>(m.info.channels)};
    H5Id file_space(FT_H5_CHECK(H5Dget_space(m.images), m.path));
    FT_H5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr), m.path);
    H5Id mem_space(FT_H5_CHECK(H5Screate_simple(4, count, nullptr), m.path));
    FT_H5_CHECK(H5Dread(m.images, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT, out),
                "is " + m.path + " complete and readable?");
  });
}

void StoreReader::read_images(const int64_t* indices, int64_t count, uint8_t* out) {
  auto& m = *impl_;
  if (count <= 0) return;
  const int64_t bytes = m.image_bytes;
  // Visit the batch in store order so reads walk the file forward (and runs of neighbours merge).
  m.order.resize(static_cast<size_t>(count));
  std::iota(m.order.begin(), m.order.end(), 0);
  std::sort(m.order.begin(), m.order.end(), [&](int64_t a, int64_t b) { return indices[a] < indices[b]; });
  for (int64_t k = 0; k < count; ++k) m.check_index(indices[k]);
  reading(m.path, [&] {
    if (m.direct_enabled) {
      for (int64_t a = 0; a < count;) {
        // A run: sorted positions whose images are back to back in the file.
        int64_t b = a + 1;
        int64_t end_offset = m.image_offset(indices[m.order[a]]) + bytes;
        while (b < count && m.image_offset(indices[m.order[b]]) == end_offset) {
          end_offset += bytes;
          ++b;
        }
        const int64_t start_offset = m.image_offset(indices[m.order[a]]);
        if (b - a == 1) {
          m.pread_all(out + m.order[a] * bytes, bytes, start_offset);
        } else {
          if (static_cast<int64_t>(m.staging.size()) < (b - a) * bytes) m.staging.resize((b - a) * bytes);
          m.pread_all(m.staging.data(), (b - a) * bytes, start_offset);
          for (int64_t k = a; k < b; ++k)
            std::memcpy(out + m.order[k] * bytes, m.staging.data() + (k - a) * bytes, bytes);
        }
        a = b;
      }
      return;
    }

    hdf5_quiet();
    std::vector<int64_t> uniq;
    uniq.reserve(static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) {
      const int64_t idx = indices[m.order[k]];
      if (uniq.empty() || uniq.back() != idx) uniq.push_back(idx);
    }
    const auto u = static_cast<int64_t>(uniq.size());
    if (static_cast<int64_t>(m.staging.size()) < u * bytes) m.staging.resize(u * bytes);
    m.h5_read_sorted(uniq.data(), u);
    int64_t j = -1;
    for (int64_t k = 0; k < count; ++k) {
      const int64_t idx = indices[m.order[k]];
      if (j < 0 || uniq[j] != idx) ++j;
      std::memcpy(out + m.order[k] * bytes, m.staging.data() + j * bytes, bytes);
    }
  });
}

}  // namespace facetrain
