# Sourced by the Rust test and benchmark targets' build.sh (POSIX sh).
#
# offline_cargo "APT PACKAGES" CRATE-VERSION...: puts cargo on PATH, rustup's where it is
# installed (sudo's PATH leaves it out; root in CI: /root/.cargo) before a distribution's: the
# tests' type names assume a current rustc, and Debian 12's 1.63 builds these targets too but
# names futures otherwise (GenFuture<...>). Then checks that Debian's crate sources are there
# (/usr/share/cargo/registry, which each target's .cargo/config.toml puts in crates.io's place),
# naming the packages that bring the missing one.
offline_cargo() {
    _packages=$1
    shift
    for _d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
        if [ -x "$_d/cargo" ]; then
            PATH=$_d:$PATH
            break
        fi
    done
    export PATH
    command -v cargo >/dev/null || { echo "build.sh: cargo not found" >&2; exit 1; }
    for _c in "$@"; do
        [ -d "/usr/share/cargo/registry/$_c" ] || {
            echo "build.sh: /usr/share/cargo/registry/$_c missing (apt-get install $_packages)" >&2
            exit 1
        }
    done
}
