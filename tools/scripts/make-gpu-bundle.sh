#!/usr/bin/env bash
# Makes .gpu-check/, the self-contained bundle that tools/scripts/gpu-check.sh runs on a lent GPU machine.
#
# Why a bundle: that machine has no network, no Debian packages of ours (Open MPI, HDF5, OpenCV, Protobuf,
# giflib) and at most 64 MiB travels to it (working tree + carried folders). It does have PyTorch 2.11.0+cu130
# with its nvidia-* wheels (CUDA, cuDNN, NCCL), so:
#   1. facetrain and the tests/comm gtest binaries are built HERE against that same LibTorch (the torch wheel's
#      torch/ folder is a complete C++ LibTorch; pip download, no install) and the nvidia-nccl-cu13 wheel that
#      torch's METADATA pins (nccl.h + libnccl.so.2), into .gpu-check-build/ (ignored, never travels);
#   2. the Debian libraries those binaries load are copied into .gpu-check/lib/ where our code really calls
#      them (Open MPI + its singleton plugins, HDF5, OpenCV core/imgproc/imgcodecs/videoio/objdetect, PNG,
#      JPEG, WebP, TBB, Protobuf, giflib, zlib, ...);
#   3. every other library of their closure (GDAL, GDCM, ffmpeg, x265, codec2, OpenBLAS/LAPACK, ICU, GTK/
#      rsvg, GStreamer, ... ~300 MB) is replaced by a generated STUB: same SONAME, same exported dynamic
#      symbols and symbol versions, no dependencies. The loader is satisfied; a call into one prints
#      "gpu-check: called a stub: <library> <symbol>" and aborts, so a wrong guess is loud, never silent.
#   torch and CUDA libraries are NOT bundled: gpu-check.sh takes them from the machine's python3 (and
#   refuses to run when its torch is not the version built against here).
#
# Usage: bash tools/scripts/make-gpu-bundle.sh [--assemble-only] [--help]
#   --assemble-only   skip download and build; re-make .gpu-check/ from .gpu-check-build/build
# Env: FACETRAIN_GPU_TORCH_VERSION (default 2.11.0, what the lent machines' python3 holds),
#      FACETRAIN_BUILD_JOBS (default 2).
# Needs here: Debian's build dependencies (tools/scripts/install-deps.sh), /usr/local/cuda (headers and
# link-time libraries of CUDA 13.0, the CUDA of torch 2.11.0+cu130), pip with access to PyPI, ~3 GB disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
assemble_only=0
for a in "$@"; do
  case $a in
    --assemble-only) assemble_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-gpu-bundle: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

source tools/scripts/lib/ccache-env.sh
torch_version="${FACETRAIN_GPU_TORCH_VERSION:-2.11.0}"
work="$root/.gpu-check-build"      # wheels, unpacked LibTorch, build tree: never travels
bundle="$root/.gpu-check"          # what travels (carry: [".gpu-check"])
site="$work/site"                  # torch/ and nvidia/nccl/ side by side, as in site-packages
build="${FACETRAIN_GPU_BUNDLE_BUILD:-$work/build}"   # override: to assemble from another build tree
cuda="${CUDA_HOME:-/usr/local/cuda}"
# Both folders are in .gitignore: the bundle travels only when the device call names it in `carry`.

# The gtest binaries of tests/comm that run on one rank there (comm_nccl_communicator skips without a GPU).
test_targets=(comm_communicator comm_gradient_sync comm_backend comm_node_placement comm_nccl_communicator)

if [[ $assemble_only -eq 0 ]]; then
  # --- 1. LibTorch and NCCL of the GPU machine's torch, from PyPI's wheels (no install) ---------------
  mkdir -p "$work/wheels" "$site"
  pip_dl=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_18_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64 -d "$work/wheels")
  ls "$work/wheels"/torch-"$torch_version"-*.whl >/dev/null 2>&1 || "${pip_dl[@]}" "torch==$torch_version"
  torch_whl=$(ls "$work/wheels"/torch-"$torch_version"-*.whl | head -1)
  meta=$(unzip -p "$torch_whl" '*/METADATA')
  # The nvidia wheels the torch wheel pins (its METADATA): NCCL for nccl.h + libnccl (the one the GPU
  # machine's torch loads), and the three libraries libtorch_cuda.so NEEDS that the CUDA 13.0 toolkit here
  # lacks (cuSPARSELt, NVSHMEM, cuFile; cuFile's pin is in the cuda-toolkit metapackage). They are only
  # linked against (-rpath-link) and loaded by --dry-run here; none of them is bundled.
  pins=$(sed -nE 's/^Requires-Dist: (nvidia-(nccl|cusparselt|nvshmem)-cu[0-9]+)==([0-9.]+).*/\1==\3/p' <<<"$meta")
  toolkit=$(sed -nE 's/^Requires-Dist: cuda-toolkit\[.*\]==([0-9.]+).*/\1/p' <<<"$meta")
  [[ $(wc -l <<<"$pins") -eq 3 && -n "$toolkit" ]] || { echo "make-gpu-bundle: unexpected pins in $torch_whl: $pins" >&2; exit 1; }
  ls "$work/wheels"/cuda_toolkit-"$toolkit"-*.whl >/dev/null 2>&1 || "${pip_dl[@]}" --platform any "cuda-toolkit==$toolkit"
  pins+=$'\n'$(unzip -p "$work/wheels"/cuda_toolkit-"$toolkit"-*.whl '*/METADATA' |
                sed -nE "s/^Requires-Dist: (nvidia-cufile)==([0-9.*]+);.*extra == 'cufile'.*/\1==\2/p")
  wheel_of() { local v=${1#*==}; echo "$work/wheels/$(tr - _ <<<"${1%%==*}")-${v%.\*}"; }  # + *.whl
  for pin in $pins; do
    ls "$(wheel_of "$pin")"*.whl >/dev/null 2>&1 || "${pip_dl[@]}" "$pin"
  done
  if [[ ! -f "$site/torch/version.py" ]]; then
    echo "make-gpu-bundle: unpacking LibTorch from $(basename "$torch_whl")"
    # Not torch/bin (its protoc 3.13 would be found before Debian's) nor torch/include/google (protobuf 3.13
    # headers that shadow Debian's 3.21 through -isystem): facetrain uses Debian's Protobuf.
    unzip -q -o "$torch_whl" 'torch/lib/*' 'torch/include/*' 'torch/share/*' 'torch/version.py' -x 'torch/include/google/*' -d "$site"
  fi
  for pin in $pins; do  # -n: what is unpacked already stays
    unzip -q -n "$(wheel_of "$pin")"*.whl 'nvidia/*' -d "$site"
  done

  # --- 2. build (same CMake as everywhere; CMAKE_PREFIX_PATH = the torch/ folder, as build-libtorch2.sh) ---
  # libtorch_cuda.so NEEDS cuBLAS, cuDNN, cuFFT, ... which the wheel does not hold: the linker reads them
  # from the CUDA 13.0 toolkit and the pinned wheels above (-rpath-link); nothing of it is bundled.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$site/torch" \
    "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$(ls -d "$site"/nvidia/*/lib | tr '\n' ':')$cuda/lib64" |
    grep -E '^-- facetrain:' || true
  available=()
  all_targets=$(ninja -C "$build" -t targets all)   # (not piped into grep -q: SIGPIPE under pipefail)
  for t in "${test_targets[@]}"; do
    if grep -q "^$t:" <<<"$all_targets"; then available+=("$t"); fi
  done
  ninja -C "$build" -j "${FACETRAIN_BUILD_JOBS:-2}" facetrain "${available[@]}"
fi

[[ -x "$build/bin/facetrain" ]] || { echo "make-gpu-bundle: no $build/bin/facetrain (run without --assemble-only)" >&2; exit 1; }
torch_full=$(sed -nE "s/^__version__ = '(.*)'/\1/p" "$site/torch/version.py")

# --- 3. assemble .gpu-check/ ----------------------------------------------------------------------------
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/openmpi/lib/openmpi3" "$bundle/openmpi/share"
cp "$build/bin/facetrain" "$bundle/bin/"
for t in "${test_targets[@]}"; do
  if [[ -x "$build/tests/$t" ]]; then cp "$build/tests/$t" "$bundle/bin/"; else echo "make-gpu-bundle: no $t built" >&2; fi
done
strip --strip-unneeded "$bundle"/bin/*
# Open MPI in singleton mode (no mpirun; ess_singleton_isolated=1 in gpu-check.sh, so no orted either)
# opens these components; found with LD_DEBUG=files on a 1-rank comm_communicator run. Left out: psm/psm2
# (InfiniPath hardware) and reachable_netlink (needs libnl; reachable_weighted does the same job here).
ompi=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
for c in allocator_basic allocator_bucket bml_r2 btl_self btl_sm btl_tcp btl_vader coll_adapt coll_basic coll_han \
         coll_inter coll_libnbc coll_monitoring coll_self coll_sm coll_sync coll_tuned errmgr_default_app \
         errmgr_default_hnp errmgr_default_orted errmgr_default_tool ess_singleton mpool_hugepage op_avx \
         osc_monitoring osc_rdma osc_sm pmix_isolated pml_cm pml_monitoring pml_ob1 rcache_grdma \
         reachable_weighted schizo_flux schizo_jsm schizo_ompi schizo_orte schizo_slurm shmem_mmap shmem_posix \
         shmem_sysv state_app state_hnp state_novm state_orted state_tool vprotocol_pessimist; do
  cp "$ompi/mca_$c.so" "$bundle/openmpi/lib/openmpi3/"
done
# Open MPI's help texts (its error messages are read from them; OPAL_PREFIX points there).
cp -r /usr/share/openmpi "$bundle/openmpi/share/"

nvidia_dirs=$(ls -d "$site"/nvidia/*/lib | tr '\n' ':')
LD_LIBRARY_PATH="$site/torch/lib:$nvidia_dirs$cuda/lib64" python3 - "$bundle" <<'PY'
"""Copies the real libraries of the bundle's closure, writes stubs for the rest, fixes the run paths."""
import os, re, shutil, struct, subprocess, sys, tempfile

bundle = sys.argv[1]
lib = os.path.join(bundle, 'lib')
# Libraries facetrain's code paths (synth, train, bench, the comm tests) really call, and what they need.
REAL = re.compile(r'^lib(gif|z|protobuf|hdf5_serial|sz|aec|opencv_(core|imgproc|imgcodecs|videoio|objdetect)|tbb'
                  r'|jpeg|png16|webp|sharpyuv|mpi|mpi_cxx|open-rte|open-pal|hwloc|event_core-2\.1'
                  r'|event_pthreads-2\.1|udev|mca_common_sm|mca_common_monitoring)\.so')
# Present on any Linux with a C++ toolchain runtime (the GPU image: glibc 2.39, gcc 13's libstdc++, as
# Ubuntu 24.04's python3 3.12.3 suggests) or provided there by torch and its nvidia-* wheels.
SYSTEM = re.compile(r'^(libc|libm|libdl|libpthread|librt|libutil|libresolv|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so')
TORCH = re.compile(r'^(libtorch|libc10|libcaffe2|libshm|libgomp|libcuda\.|libcudart|libcublas|libcudnn|libcufft|libcufile'
                   r'|libcurand|libcusolver|libcusparse|libcupti|libnccl|libnvrtc|libnvJitLink|libnvshmem|libnvToolsExt|libnvidia-)')

def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

def needed(path):
    return re.findall(r'\(NEEDED\)\s+Shared library: \[(.*)\]', run('readelf', '-d', path))

def resolve(obj):
    """soname -> path as the loader finds it here (LD_LIBRARY_PATH: this LibTorch, NCCL, CUDA 13.0)."""
    out = subprocess.run(['ldd', obj], capture_output=True, text=True).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r'^\s*(\S+) => (/\S+)', out, re.M)}

def set_runpath(path, new):
    """Rewrites DT_RUNPATH/DT_RPATH in place (no patchelf here): the build tree's absolute run path would
    make the loader fall back to this machine's folders; the new one must not be longer than the old."""
    data = bytearray(open(path, 'rb').read())
    phoff, = struct.unpack_from('<Q', data, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
    loads, dyn = [], None
    for i in range(phnum):
        p_type, _, off, vaddr, _, filesz, _, _ = struct.unpack_from('<IIQQQQQQ', data, phoff + i * phentsize)
        if p_type == 1: loads.append((vaddr, off, filesz))
        if p_type == 2: dyn = (off, filesz)
    v2o = lambda v: next(v - va + off for va, off, sz in loads if va <= v < va + sz)
    strtab, paths = None, []
    for o in range(dyn[0], dyn[0] + dyn[1], 16):
        tag, val = struct.unpack_from('<qQ', data, o)
        if tag == 0: break
        if tag == 5: strtab = val
        if tag in (15, 29): paths.append(val)
    for val in paths:
        s = v2o(strtab) + val
        old = data.index(0, s) - s
        enc = new.encode()
        assert len(enc) <= old, (path, new)
        data[s:s + old] = enc + b'\0' * (old - len(enc))
    open(path, 'wb').write(data)

STUB_C = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* Every exported function of a stub is "sub $8, %rsp; call __gpu_stub_trap" (the sub keeps the stack
   16-byte aligned, as the ABI wants at a call): the return address names the symbol. */
__attribute__((visibility("hidden"), noreturn)) void __gpu_stub_trap(void) {
  Dl_info info = {0};
  void *at = (char *)__builtin_return_address(0) - 5;
  dladdr(at, &info);
  char b[512];
  int k = snprintf(b, sizeof b, "gpu-check: called a stub: %s %s (left out of the bundle: "
                   "tools/scripts/make-gpu-bundle.sh)\n", SONAME, info.dli_sname ? info.dli_sname : "?");
  if (write(2, b, k) < 0) {}
  abort();
}
'''

def make_stub(real, soname, out_dir):
    """A library with the same SONAME, exported symbols (types, sizes) and symbol versions as `real`."""
    syms = run('readelf', '--dyn-syms', '-W', real)
    vdef = re.search(r"Version definition section.*?(?=\n\n|\Z)", run('readelf', '-V', '-W', real), re.S)
    nodes = [m.group(2) for m in re.finditer(r"Flags: (\S+)\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)",
                                             vdef.group(0) if vdef else '') if m.group(1) != 'BASE']
    asm, n = ['.text'], 0
    for line in syms.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0][:-1].isdigit(): continue
        typ, bind, vis, ndx, name, size = f[3], f[4], f[5], f[6], f[7], int(f[2], 0)
        # Only GLOBAL definitions: WEAK/UNIQUE ones (C++ template instances, vtables) also live in the real
        # libraries, and a stub's copy found first in the search order would shadow them.
        if ndx in ('UND', 'ABS') or bind != 'GLOBAL' or vis != 'DEFAULT': continue
        if name in ('_init', '_fini', '_edata', '_end', '__bss_start'): continue
        base, ver, default = name, None, True
        if '@@' in name: base, ver = name.split('@@')
        elif '@' in name: base, ver = name.split('@'); default = False
        s = f'__gs_{n}'
        if typ in ('FUNC', 'IFUNC'):
            asm += ['.p2align 3', f'.globl {s}', f'.type {s},@function', f'{s}: sub $8, %rsp', 'call __gpu_stub_trap', 'ud2',
                    f'.size {s},.-{s}']
        elif typ == 'TLS':
            asm += ['.section .tbss,"awT",@nobits', f'.globl {s}', f'.type {s},@tls_object', f'.size {s},{size}',
                    f'{s}: .zero {max(size, 1)}', '.text']
        else:  # data: zeros of the same size (a copy relocation in an executable reads that many bytes)
            asm += ['.data', '.p2align 4', f'.globl {s}', f'.type {s},@object', f'.size {s},{size}',
                    f'{s}: .zero {max(size, 1)}', '.text']
        if ver:
            asm.append(f'.symver {s}, "{base}{"@@" if default else "@"}{ver}"')
        else:
            asm += [f'.globl "{base}"', f'.set "{base}", {s}']
            if typ in ('FUNC', 'IFUNC'): asm.append(f'.type "{base}",@function')
        n += 1
    asm.append('.section .note.GNU-stack,"",@progbits')
    with tempfile.TemporaryDirectory() as tmp:
        open(f'{tmp}/s.s', 'w').write('\n'.join(asm) + '\n')
        open(f'{tmp}/s.c', 'w').write(STUB_C)
        vs = (''.join(f'{v} {{ }};\n' for v in nodes[:-1]) + f'{nodes[-1]} {{ local: __gs_*; }};\n') if nodes \
            else '{ global: *; local: __gs_*; };\n'
        open(f'{tmp}/s.map', 'w').write(vs)
        subprocess.run(['gcc', '-shared', '-O2', '-s', f'-DSONAME="{soname}"', '-o', os.path.join(out_dir, soname),
                        f'{tmp}/s.c', f'{tmp}/s.s', f'-Wl,-soname,{soname}', f'-Wl,--version-script,{tmp}/s.map'],
                       check=True)
    return n

roots = [os.path.join(bundle, 'bin', b) for b in sorted(os.listdir(os.path.join(bundle, 'bin')))]
plugins = []
for d, _, files in os.walk(os.path.join(bundle, 'openmpi')):
    plugins += [os.path.join(d, f) for f in files if f.endswith('.so')]
paths = {}
for o in roots + plugins: paths.update(resolve(o))
real, stubs, seen = [], {}, set()
queue = [n for o in roots + plugins for n in needed(o)]
while queue:
    so = queue.pop(0)
    if so in seen or SYSTEM.match(so) or TORCH.match(so): continue
    seen.add(so)
    p = paths.get(so)
    if p is None:
        sys.exit(f'make-gpu-bundle: {so} is not found here')
    if REAL.match(so):
        shutil.copy2(os.path.realpath(p), os.path.join(lib, so))
        real.append(so)
        for n in needed(p):
            if n not in paths: paths.update(resolve(p))
            queue.append(n)
    else:
        stubs[so] = (p, make_stub(os.path.realpath(p), so, lib))
for o in roots: set_runpath(o, '$ORIGIN/../lib')
size = lambda f: os.path.getsize(os.path.join(lib, f))
with open(os.path.join(bundle, 'STUBS.txt'), 'w') as f:
    f.write('# soname  exported-symbols  stub-bytes  real-bytes  (real: the Debian library it stands in for)\n')
    for so, (p, n) in sorted(stubs.items()):
        f.write(f'{so} {n} {size(so)} {os.path.getsize(os.path.realpath(p))} {p}\n')
print(f'make-gpu-bundle: {len(real)} real libraries ({sum(map(size, real)) / 2**20:.1f} MiB), '
      f'{len(stubs)} stubs ({sum(map(size, stubs)) / 2**20:.1f} MiB) standing in for '
      f'{sum(os.path.getsize(os.path.realpath(p)) for p, _ in stubs.values()) / 2**20:.1f} MiB')
PY

# A record of what the bundle was built for; gpu-check.sh refuses another torch.
{
  echo "torch_version=$torch_full"
  echo "nccl=$(ls "$work"/wheels/nvidia_nccl_*.whl 2>/dev/null | sed -nE 's/.*nvidia_nccl_[a-z0-9]+-([0-9.]+)-.*/\1/p' | head -1)"
  echo "git_commit=$(git rev-parse HEAD)"
  echo "made=$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
} > "$bundle/MANIFEST"

# --- 4. size: everything that travels must stay under 64 MiB ----------------------------------------------
bundle_b=$(du -sb "$bundle" | cut -f1)
tree_b=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
awk -v b="$bundle_b" -v t="$tree_b" 'BEGIN { printf "make-gpu-bundle: .gpu-check/ %.2f MiB + working tree %.2f MiB = %.2f MiB that travel (limit 64 MiB)\n", b / 2^20, t / 2^20, (b + t) / 2^20 }'
if (( bundle_b + tree_b > 64 * 1048576 )); then echo "make-gpu-bundle: over 64 MiB" >&2; exit 1; fi
