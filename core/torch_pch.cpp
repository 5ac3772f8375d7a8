// Empty unit that owns the shared precompiled <torch/torch.h> (see the top-level CMakeLists.txt).
