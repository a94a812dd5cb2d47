# memscoped: one entry point for building, testing and benchmarking.
BUILD ?= build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH ?= x86
PREFIX ?= /usr/local

CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Isrc -I$(BUILD)
LDLIBS := -lbpf -ldw -lelf -lz -ljson-c -lmicrohttpd -lcurl -lncurses -liberty -lpthread -lm

# SANITIZE=1 builds the daemon, unit tests and targets with ASan and UBSan.
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/report_html_data.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TARGET_SRCS := $(wildcard tests/targets/*.c)
TARGET_BINS := $(patsubst tests/targets/%.c,$(BUILD)/targets/%,$(TARGET_SRCS))
TARGET_BINS += $(BUILD)/targets/coro_fcontext $(BUILD)/targets/libcoro_pcl_app.so \
	$(BUILD)/targets/libstacks_lib.so $(BUILD)/targets/stacks_cxx $(BUILD)/targets/stacks_rust
TARGET_BINS += $(BUILD)/targets/alloc_family_jemalloc $(BUILD)/targets/alloc_family_mimalloc \
	$(BUILD)/targets/alloc_family_tcmalloc $(BUILD)/targets/alloc_cxx_tcmalloc \
	$(BUILD)/targets/alloc_family_jemalloc_static $(BUILD)/targets/alloc_family_tcmalloc_static \
	$(BUILD)/targets/alloc_family_rjem
BENCH_BINS := $(patsubst scripts/bench/%.c,$(BUILD)/bench/%,$(wildcard scripts/bench/*.c))

.PHONY: all deps demo check unit e2e bench fuzz install format format-check clean tokio-targets \
	async-task-targets
.DELETE_ON_ERROR:

all: $(BUILD)/memscoped

deps:
	@scripts/install-deps.sh

$(BUILD)/memscoped.bpf.o: bpf/memscoped.bpf.c $(wildcard bpf/*.bpf.h) include/memscoped/events.h \
		vmlinux/$(ARCH)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -target bpf -g -O2 -D__TARGET_ARCH_$(ARCH) -Wall -Ivmlinux/$(ARCH) -Iinclude \
		-c $< -o $@

$(BUILD)/memscoped.skel.h: $(BUILD)/memscoped.bpf.o
	$(BPFTOOL) gen skeleton $< name memscoped_bpf > $@

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) include/memscoped/events.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) -c $< -o $@

$(BUILD)/obj/main.o: $(BUILD)/memscoped.skel.h

# The HTML report's page, linked in as bytes (.incbin): edit src/report_html.html itself.
$(BUILD)/obj/report_html_data.o: src/report_html_data.S src/report_html.html
	@mkdir -p $(@D)
	$(CC) -Wa,-I$(CURDIR) -c $< -o $@

# Made anew: an object whose source was removed must not stay in the archive.
$(BUILD)/libmemscoped.a: $(LIB_OBJS) Makefile
	rm -f $@
	$(AR) rcs $@ $(filter %.o,$^)

$(BUILD)/memscoped: $(BUILD)/obj/main.o $(BUILD)/libmemscoped.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmemscoped.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(WARNINGS) -Wno-missing-prototypes \
		$(LDFLAGS) $< $(BUILD)/libmemscoped.a $(LDLIBS) -lcmocka -o $@

# Test targets are the programs under test: no sanitizer inside them.
$(BUILD)/targets/%: tests/targets/%.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread $< -o $@

# Sampled stacks: release-like code, no frame pointers, one path through a shared library.
$(BUILD)/targets/libstacks_lib.so: tests/targets/stacks/stacks_lib.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -fomit-frame-pointer -Wall -Wextra -shared -fPIC $< -o $@

$(BUILD)/targets/stacks_c: tests/targets/stacks_c.c $(BUILD)/targets/libstacks_lib.so
	@mkdir -p $(@D)
	$(CC) -O2 -g -fomit-frame-pointer -Wall -Wextra $< -L$(@D) -lstacks_lib \
		-Wl,-rpath,'$$ORIGIN' -o $@

$(BUILD)/targets/stacks_cxx: tests/targets/stacks_cxx.cc
	@mkdir -p $(@D)
	$(CXX) -O2 -g -fomit-frame-pointer -Wall -Wextra $< -o $@

# A Rust release binary (opt-level 3, no frame pointers, symbols kept), rustup's rustc first.
RUSTC ?= $(firstword $(wildcard $(HOME)/.cargo/bin/rustc /root/.cargo/bin/rustc) rustc)
$(BUILD)/targets/stacks_rust: tests/targets/stacks/stacks_rust.rs
	@mkdir -p $(@D)
	$(RUSTC) --edition 2021 -C opt-level=3 -C debuginfo=1 -C force-frame-pointers=no $< -o $@

# libpcl coroutines (Debian libpcl1-dev).
$(BUILD)/targets/coro_pcl: tests/targets/coro_pcl.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread $< -lpcl -o $@

# coro_pcl as a library, for coro_dlopen to load after memscoped attached.
$(BUILD)/targets/libcoro_pcl_app.so: tests/targets/coro_pcl.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -shared -fPIC -Dmain=coro_pcl_main $< \
		-lpcl -o $@

# The allocator-family target linked to each of Debian's allocators (libjemalloc-dev,
# libmimalloc-dev, libgoogle-perftools-dev); plain alloc_family is for LD_PRELOAD.
$(BUILD)/targets/alloc_family_jemalloc: tests/targets/alloc_family.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -DUSE_JEMALLOC $< -ljemalloc -o $@

$(BUILD)/targets/alloc_family_mimalloc: tests/targets/alloc_family.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -DUSE_MIMALLOC $< -lmimalloc -o $@

$(BUILD)/targets/alloc_family_tcmalloc: tests/targets/alloc_family.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -DUSE_TCMALLOC $< -ltcmalloc_minimal -o $@

# The allocator linked into the executable itself (Debian's libjemalloc_pic.a,
# libtcmalloc_minimal.a).
$(BUILD)/targets/alloc_family_jemalloc_static: tests/targets/alloc_family.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -DUSE_JEMALLOC $< \
		-Wl,-Bstatic -ljemalloc_pic -Wl,-Bdynamic -lstdc++ -lm -ldl -o $@

$(BUILD)/targets/alloc_family_tcmalloc_static: tests/targets/alloc_family.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -DUSE_TCMALLOC $< \
		-Wl,-Bstatic -ltcmalloc_minimal -Wl,-Bdynamic -lstdc++ -lm -o $@

# jemalloc with its API renamed _rjem_* (as tikv-jemallocator links it) beside glibc: Debian's
# libjemalloc_pic.a with its exported names prefixed by objcopy.
JEMALLOC_API := aligned_alloc calloc dallocx free mallctl mallctlbymib mallctlnametomib malloc \
	malloc_stats_print malloc_usable_size mallocx memalign nallocx posix_memalign rallocx \
	realloc sallocx sdallocx valloc xallocx
$(BUILD)/targets/librjem.a: /usr/lib/x86_64-linux-gnu/libjemalloc_pic.a
	@mkdir -p $(@D)
	printf '%s _rjem_%s\n' $(foreach s,$(JEMALLOC_API),$(s) $(s)) > $@.syms
	objcopy --redefine-syms=$@.syms $< $@

$(BUILD)/targets/alloc_family_rjem: tests/targets/alloc_family.c $(BUILD)/targets/librjem.a
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -DUSE_JEMALLOC -DRJEM $< \
		$(BUILD)/targets/librjem.a -lstdc++ -lm -ldl -o $@

$(BUILD)/targets/alloc_cxx_tcmalloc: tests/targets/alloc_cxx.cc
	@mkdir -p $(@D)
	$(CXX) -O1 -g -fno-builtin -Wall -Wextra -pthread -faligned-new -fsized-deallocation $< \
		-ltcmalloc_minimal -o $@

# boost.context coroutines, in C++ (Debian g++, libboost-context-dev).
$(BUILD)/targets/coro_fcontext: tests/targets/coro_fcontext.cc
	@mkdir -p $(@D)
	$(CXX) -O1 -g -fno-builtin -Wall -Wextra -pthread $< -lboost_context -o $@

$(BUILD)/bench/%: scripts/bench/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -pthread $< -o $@

# The malloc benchmark linked to each allocator family (scripts/bench/alloc.sh).
ALLOC_BENCH_BINS := $(BUILD)/bench/malloc_bench_jemalloc $(BUILD)/bench/malloc_bench_mimalloc \
	$(BUILD)/bench/malloc_bench_tcmalloc
$(BUILD)/bench/malloc_bench_%: scripts/bench/malloc_bench.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -pthread $< -l$(subst tcmalloc,tcmalloc_minimal,$*) -o $@

$(BUILD)/fixtures/fixture.so: tests/unit/fixture_elf.c
	@mkdir -p $(@D)
	$(CC) -O1 -shared -fPIC -Wl,-z,separate-code -Wl,--build-id $< -o $@

unit: $(UNIT_BINS) $(BUILD)/fixtures/fixture.so

# Rust tokio targets, built offline against Debian's crate sources (librust-tokio-dev).
TOKIO_SRCS := $(wildcard tests/targets/tokio/src/*.rs) tests/targets/tokio/host.c tests/targets/tokio/Cargo.toml \
	tests/targets/tokio/Cargo.lock tests/targets/tokio/build.sh tests/targets/offline-cargo.sh
$(BUILD)/tokio-out/.built: $(TOKIO_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/tokio tests/targets/tokio/build.sh $(BUILD)/tokio-out
	touch $@

tokio-targets: $(BUILD)/tokio-out/.built

# async-task targets (async-std, smol), offline against Debian's crate sources.
ASYNC_TASK_SRCS := $(wildcard tests/targets/async-task/src/*.rs) tests/targets/async-task/Cargo.toml \
	tests/targets/async-task/Cargo.lock tests/targets/async-task/build.sh \
	tests/targets/offline-cargo.sh
$(BUILD)/async-task-out/.built: $(ASYNC_TASK_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/async-task tests/targets/async-task/build.sh \
		$(BUILD)/async-task-out
	touch $@

async-task-targets: $(BUILD)/async-task-out/.built

# The demo needs only the v0-mangled variant (its task types have readable names).
$(BUILD)/tokio-out/tokio-target-v0: $(TOKIO_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/tokio tests/targets/tokio/build.sh $(BUILD)/tokio-out v0

demo: deps all $(BUILD)/tokio-out/tokio-target-v0
	scripts/demo.sh

# Every test, then again with ASan+UBSan builds of the daemon and unit tests, then fuzzing.
check: deps format-check all unit $(TARGET_BINS) tokio-targets async-task-targets
	$(MAKE) --no-print-directory BUILD=$(BUILD)-asan SANITIZE=1 all unit
	BUILD=$(BUILD) ASAN_BUILD=$(BUILD)-asan scripts/run-tests.sh

e2e: all $(TARGET_BINS) tokio-targets async-task-targets
	BUILD=$(BUILD) scripts/run-tests.sh e2e

# Benchmark targets for scripts/bench/tokio.py (tokio churn, 1000 future types), offline like
# the tokio test targets.
TOKIO_BENCH_SRCS := $(wildcard tests/targets/tokio-bench/src/*.rs) \
	tests/targets/tokio-bench/Cargo.toml tests/targets/tokio-bench/Cargo.lock \
	tests/targets/tokio-bench/build.sh tests/targets/offline-cargo.sh
$(BUILD)/tokio-bench-out/.built: $(TOKIO_BENCH_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/tokio-bench tests/targets/tokio-bench/build.sh $(BUILD)/tokio-bench-out
	touch $@

# The HTTP benchmark target for scripts/bench/http.py (hyper 0.14 on tokio, driven by wrk),
# offline from Debian's crates like tokio-bench.
HYPER_BENCH_SRCS := $(wildcard tests/targets/hyper-bench/src/*.rs) \
	tests/targets/hyper-bench/Cargo.toml tests/targets/hyper-bench/Cargo.lock \
	tests/targets/hyper-bench/build.sh tests/targets/offline-cargo.sh
$(BUILD)/hyper-bench-out/.built: $(HYPER_BENCH_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/hyper-bench tests/targets/hyper-bench/build.sh $(BUILD)/hyper-bench-out
	touch $@

bench: deps all $(BENCH_BINS) $(ALLOC_BENCH_BINS) $(BUILD)/tokio-bench-out/.built \
	$(BUILD)/hyper-bench-out/.built $(BUILD)/targets/daemon_worker $(BUILD)/tokio-out/.built
	BUILD=$(BUILD) scripts/bench/run.sh
	BUILD=$(BUILD) scripts/bench/alloc.sh
	BUILD=$(BUILD) scripts/bench/coro.sh
	BUILD=$(BUILD) scripts/bench/stacks.py
	BUILD=$(BUILD) scripts/bench/daemon.py
	BUILD=$(BUILD) scripts/bench/http.py
	BUILD=$(BUILD) scripts/bench/freeze.py

FUZZ_SECONDS ?= 60

# libFuzzer harnesses (clang, ASan + UBSan) built into $(BUILD)/fuzz/; CI smoke: FUZZ_SECONDS=10.
fuzz:
	BUILD=$(BUILD) CLANG=$(CLANG) scripts/fuzz.sh $(FUZZ_SECONDS)

install: all
	install -D -m 0755 $(BUILD)/memscoped $(DESTDIR)$(PREFIX)/sbin/memscoped
	install -D -m 0644 man/memscoped.8 $(DESTDIR)$(PREFIX)/share/man/man8/memscoped.8

FORMAT_SRCS := $(wildcard src/*.c src/*.h bpf/*.c bpf/*.h include/memscoped/*.h tests/unit/*.c \
	tests/unit/*.h tests/targets/*.c)

format:
	clang-format -i $(FORMAT_SRCS)

# Fails, listing the places, where the code differs from .clang-format.
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf $(BUILD)
