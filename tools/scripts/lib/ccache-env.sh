# ccache for every build folder of this checkout (sourced by the build scripts from the repository root):
# paths relative to the tree, so build/, build-torch2/, build-fuzz/ and other checkouts' folders share hits;
# the precompiled torch header and __DATE__-free sources made cacheable.
# shellcheck shell=bash
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
