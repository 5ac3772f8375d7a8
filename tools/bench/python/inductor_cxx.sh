#!/usr/bin/env bash
# The C++ compiler torch.compile (inductor) uses for the bench peers (compare.py sets CXX to this script).
# Inductor links its CPU kernels with -L/usr/lib/x86_64-linux-gnu ahead of the wheel's torch/lib, so where
# Debian's libtorch-dev is installed (here: always) -ltorch_cpu resolves to Debian's 1.13 library, the
# kernels lose their link to the wheel's (Sleef symbols unresolved at load) and inductor silently falls back
# to unvectorised code (measured: the ViT step 2.1x slower than eager). The wheel's torch/lib goes first.
# FACETRAIN_BENCH_TORCH_LIB: that folder (compare.py passes the one of the interpreter it runs).
exec g++ -L"${FACETRAIN_BENCH_TORCH_LIB:?the torch/lib folder of the wheel}" "$@"
