// Plain-file helpers of the eval commands that write reports: CSV fields, whole-file text I/O with atomic
// replacement (core/atomic_file.h) and base64 for data: URIs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace facetrain {

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or line break.
std::string csv_field(const std::string& text);

// Writes `text` to path atomically ("<path>.partial", then rename); creates the parent directory.
// Throws UserError naming the path when it cannot be written.
void write_text_file(const std::string& path, const std::string& text);
// The file's bytes. Throws UserError naming the path (and `what`, e.g. the run directory) when it cannot be read.
std::string read_file_bytes(const std::string& path, const std::string& what);

// RFC 4648 base64 (with padding). Hand-written (20 lines) because no library facetrain already links
// offers it; OpenSSL's EVP_EncodeBlock would add a dependency for this one function.
std::string base64_encode(const std::string& bytes);

}  // namespace facetrain
