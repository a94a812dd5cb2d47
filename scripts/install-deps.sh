#!/usr/bin/env bash
# Installs the Debian packages memscoped needs to build, test and benchmark; a no-op when
# everything is present. Used by `make demo`, `make check` and `make bench`.
set -euo pipefail

packages=(
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev libdw-dev zlib1g-dev
	libjson-c-dev libmicrohttpd-dev libiberty-dev libcmocka-dev libclang-rt-14-dev
	python3 bpftrace prometheus valgrind man-db binutils librust-tokio-dev librust-libc-dev
	g++ libpcl1-dev libboost-context-dev strace libcap2-bin librust-async-std-dev librust-smol-dev
	libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev redis-tools
	chromium fonts-dejavu-core python3-yaml
	libncurses-dev libcurl4-openssl-dev tmux clang-format protobuf-compiler
	golang-github-google-pprof-dev wrk librust-hyper-dev
)

# The Rust test targets build with any cargo: rustup's (PATH or ~/.cargo/bin), else Debian's.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
	packages+=(cargo rustc)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make ...)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
