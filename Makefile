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
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TARGET_SRCS := $(wildcard tests/targets/*.c)
TARGET_BINS := $(patsubst tests/targets/%.c,$(BUILD)/targets/%,$(TARGET_SRCS))
TARGET_BINS += $(BUILD)/targets/coro_fcontext $(BUILD)/targets/libcoro_pcl_app.so
BENCH_BINS := $(patsubst scripts/bench/%.c,$(BUILD)/bench/%,$(wildcard scripts/bench/*.c))

.PHONY: all deps demo check unit e2e bench fuzz install format clean tokio-targets
.DELETE_ON_ERROR:

all: $(BUILD)/memscoped

deps:
	@scripts/install-deps.sh

$(BUILD)/memscoped.bpf.o: bpf/memscoped.bpf.c include/memscoped/events.h vmlinux/$(ARCH)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -target bpf -g -O2 -D__TARGET_ARCH_$(ARCH) -Wall -Ivmlinux/$(ARCH) -Iinclude \
		-c $< -o $@

$(BUILD)/memscoped.skel.h: $(BUILD)/memscoped.bpf.o
	$(BPFTOOL) gen skeleton $< name memscoped_bpf > $@

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) include/memscoped/events.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) -c $< -o $@

$(BUILD)/obj/main.o: $(BUILD)/memscoped.skel.h

$(BUILD)/libmemscoped.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

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

# libpcl coroutines (Debian libpcl1-dev).
$(BUILD)/targets/coro_pcl: tests/targets/coro_pcl.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread $< -lpcl -o $@

# coro_pcl as a library, for coro_dlopen to load after memscoped attached.
$(BUILD)/targets/libcoro_pcl_app.so: tests/targets/coro_pcl.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-builtin -Wall -Wextra -pthread -shared -fPIC -Dmain=coro_pcl_main $< \
		-lpcl -o $@

# boost.context coroutines, in C++ (Debian g++, libboost-context-dev).
$(BUILD)/targets/coro_fcontext: tests/targets/coro_fcontext.cc
	@mkdir -p $(@D)
	$(CXX) -O1 -g -fno-builtin -Wall -Wextra -pthread $< -lboost_context -o $@

$(BUILD)/bench/%: scripts/bench/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -pthread $< -o $@

$(BUILD)/fixtures/fixture.so: tests/unit/fixture_elf.c
	@mkdir -p $(@D)
	$(CC) -O1 -shared -fPIC -Wl,-z,separate-code -Wl,--build-id $< -o $@

unit: $(UNIT_BINS) $(BUILD)/fixtures/fixture.so

# Rust tokio targets, built offline against Debian's crate sources (librust-tokio-dev).
TOKIO_SRCS := $(wildcard tests/targets/tokio/src/*.rs) tests/targets/tokio/host.c tests/targets/tokio/Cargo.toml \
	tests/targets/tokio/Cargo.lock tests/targets/tokio/build.sh
$(BUILD)/tokio-out/.built: $(TOKIO_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/tokio tests/targets/tokio/build.sh $(BUILD)/tokio-out
	touch $@

tokio-targets: $(BUILD)/tokio-out/.built

# The demo needs only the v0-mangled variant (its task types have readable names).
$(BUILD)/tokio-out/tokio-target-v0: $(TOKIO_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/tokio tests/targets/tokio/build.sh $(BUILD)/tokio-out v0

demo: deps all $(BUILD)/tokio-out/tokio-target-v0
	scripts/demo.sh

# Every test, then again with ASan+UBSan builds of the daemon and unit tests, then fuzzing.
check: deps all unit $(TARGET_BINS) tokio-targets
	$(MAKE) --no-print-directory BUILD=$(BUILD)-asan SANITIZE=1 all unit
	BUILD=$(BUILD) ASAN_BUILD=$(BUILD)-asan scripts/run-tests.sh

e2e: all $(TARGET_BINS) tokio-targets
	BUILD=$(BUILD) scripts/run-tests.sh e2e

# Benchmark targets for scripts/bench/tokio.py (tokio churn, 1000 future types), offline like
# the tokio test targets.
TOKIO_BENCH_SRCS := $(wildcard tests/targets/tokio-bench/src/*.rs) \
	tests/targets/tokio-bench/Cargo.toml tests/targets/tokio-bench/Cargo.lock \
	tests/targets/tokio-bench/build.sh
$(BUILD)/tokio-bench-out/.built: $(TOKIO_BENCH_SRCS)
	CARGO_TARGET_DIR=$(abspath $(BUILD))/tokio-bench tests/targets/tokio-bench/build.sh $(BUILD)/tokio-bench-out
	touch $@

bench: deps all $(BENCH_BINS) $(BUILD)/tokio-bench-out/.built
	BUILD=$(BUILD) scripts/bench/run.sh
	BUILD=$(BUILD) scripts/bench/coro.sh

FUZZ_SECONDS ?= 60

# libFuzzer harnesses (clang, ASan + UBSan) built into $(BUILD)/fuzz/; CI smoke: FUZZ_SECONDS=10.
fuzz:
	BUILD=$(BUILD) CLANG=$(CLANG) scripts/fuzz.sh $(FUZZ_SECONDS)

install: all
	install -D -m 0755 $(BUILD)/memscoped $(DESTDIR)$(PREFIX)/sbin/memscoped
	install -D -m 0644 man/memscoped.8 $(DESTDIR)$(PREFIX)/share/man/man8/memscoped.8

format:
	clang-format -i src/*.c src/*.h bpf/*.c include/memscoped/*.h tests/unit/*.c tests/targets/*.c

clean:
	rm -rf $(BUILD)
