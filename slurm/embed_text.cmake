# Build-time helper: writes OUTPUT, a C++ header holding the text of INPUT as `constexpr char NAME[]` (a raw
# string literal). Used to embed slurm/train.sbatch in the binary, so the script exists in one copy only.
#   cmake -DINPUT=file -DOUTPUT=header.h -DNAME=kSymbol -P embed_text.cmake
file(READ "${INPUT}" text)
set(delimiter "ftembed")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
     "// Generated from ${INPUT} by slurm/embed_text.cmake at build time; do not edit.\n#pragma once\n\n"
     "namespace facetrain {\n\nconstexpr char ${NAME}[] = R\"${delimiter}(${text})${delimiter}\";\n\n}  // namespace facetrain\n")
# Only touch the header when the text changed, so unrelated builds do not recompile its users.
configure_file("${OUTPUT}.tmp" "${OUTPUT}" COPYONLY)
file(REMOVE "${OUTPUT}.tmp")
