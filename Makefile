# capd - live camera video through the web server you already run.
#
#   make            build build/capd and build/capd.fcgi (-O2)
#   make demo       install missing packages, build, run capd + lighttpd on :$(PORT)
#                   (TLS=1: HTTPS + HTTP/2 with a self-signed certificate; curl needs -k)
#   make check      install missing packages, build, run every test (plain and ASan+UBSan)
#   make test       run the suite against the plain build only
#   make test-vivid V4L2 tests against the vivid driver under qemu (part of make check)
#   make bench      side-by-side performance runs (bench/results.md)
#   make lint       cppcheck + clang-tidy
#   make compile_commands.json   (uses bear)
#
# Switches: SANITIZE=address,undefined  TSAN=1  BUILD=dir  V=1

CC      ?= cc
BUILD   ?= build
PORT    ?= 8080
CAPD_ARGS ?=
TLS     ?=

WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wshadow -Wstrict-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-format-nonliteral
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CPPFLAGS += -D_GNU_SOURCE -Icapd -Ifcgi
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SAN_FLAGS) -pthread
LDLIBS_COMMON := -pthread

ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ifeq ($(TSAN),1)
# GCC's ThreadSanitizer cannot model atomic_thread_fence (the ring's seqlock);
# tests/tsan.supp names the one intended race it then reports.
SAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
endif

# The shared library: every capd/*.c except the daemon's main and its sources.
LIB_SRCS  := $(filter-out capd/capd.c capd/source_%.c,$(wildcard capd/*.c))
CAPD_SRCS := capd/capd.c $(wildcard capd/source_*.c)
FCGI_SRCS := $(wildcard fcgi/*.c)
FCGI_LIB_SRCS := $(filter-out fcgi/responder.c,$(FCGI_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)
BENCH_SRCS := $(wildcard bench/*.c)
BASELINE_SRCS := $(wildcard bench/baselines/*.c)

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CAPD_OBJS := $(CAPD_SRCS:%.c=$(BUILD)/obj/%.o)
FCGI_OBJS := $(FCGI_SRCS:%.c=$(BUILD)/obj/%.o)
FCGI_LIB_OBJS := $(FCGI_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%) \
              $(BASELINE_SRCS:bench/baselines/%.c=$(BUILD)/bench/baselines/%)

LIBCAPD := $(BUILD)/libcapd.a
LIBS    := -lturbojpeg -ljpeg -lv4l2 -lm $(LDLIBS_COMMON)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all clean demo check test test-vivid bench benchtools deps deps-check lint \
        compile_commands.json tests
all: $(BUILD)/capd $(BUILD)/capd.fcgi

tests: all $(UNIT_BINS) $(TOOL_BINS) $(BENCH_BINS)

benchtools: all $(BENCH_BINS) $(TOOL_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBCAPD): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/capd: $(CAPD_OBJS) $(LIBCAPD)
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/capd.fcgi: $(FCGI_OBJS) $(LIBCAPD)
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ -lfcgi $(LIBS)

# Unit tests may #include a module's .c to reach its statics, so they link
# only against what they do not include themselves: the library archive lets
# the linker skip the objects already compiled into the test.
$(BUILD)/tests/%: tests/unit/%.c $(LIBCAPD) $(BUILD)/libfcgi_parts.a
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	@echo "  TEST  $@"
	$(Q)$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) -MMD -MP -MF $(BUILD)/obj/tests/$*.d -o $@ $< \
	    $(BUILD)/libfcgi_parts.a $(LIBCAPD) -lfcgi $(LIBS)

$(BUILD)/tests/%: tests/tools/%.c $(LIBCAPD)
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	@echo "  TOOL  $@"
	$(Q)$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) -MMD -MP -MF $(BUILD)/obj/tests/$*.d -o $@ $< \
	    $(LIBCAPD) $(LIBS)

# Benchmark programs (load client, baselines, micro-benchmarks) link like tools.
$(BUILD)/bench/%: bench/%.c $(LIBCAPD) $(BUILD)/libfcgi_parts.a
	@mkdir -p $(dir $@) $(BUILD)/obj/bench
	@echo "  BENCH $@"
	$(Q)$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) -MMD -MP -MF $(BUILD)/obj/bench/$*.d -o $@ $< \
	    $(BUILD)/libfcgi_parts.a $(LIBCAPD) -lfcgi $(LIBS)

# Baselines are stand-alone programs (the designs capd is compared with).
$(BUILD)/bench/baselines/%: bench/baselines/%.c
	@mkdir -p $(dir $@) $(BUILD)/obj/bench
	@echo "  BENCH $@"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -MF $(BUILD)/obj/bench/base-$*.d -o $@ $< \
	    -lfcgi $(LIBS)

# The responder's modules without its main(), for unit tests.
$(BUILD)/libfcgi_parts.a: $(FCGI_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# ---- the two README commands -------------------------------------------------
deps:
	@scripts/install-deps.sh

deps-check:
	@scripts/install-deps.sh --check

demo: deps
	$(MAKE) all
	@PORT=$(PORT) CAPD_ARGS='$(CAPD_ARGS)' TLS='$(TLS)' scripts/demo.sh

# The whole suite plain and under ASan+UBSan; ThreadSanitizer over the ring and the
# responder's concurrency (fan-out and thread-per-viewer, stalled and slow readers).
TSAN_TESTS := test_ring,test_lighttpd.sh,test_lighttpd_threads,test_faults_readers
check: deps-check
	$(MAKE) all tests
	$(MAKE) BUILD=build-asan SANITIZE=address,undefined OPT=-O1 all tests
	$(MAKE) BUILD=build-tsan TSAN=1 OPT=-O1 all tests
	tests/run.sh build build-asan build-tsan:$(TSAN_TESTS)

test: all tests
	tests/run.sh $(BUILD)

# V4L2 against the kernel's vivid driver, booted under qemu (also part of make check).
test-vivid: deps-check
	$(MAKE) all tests
	TESTS=vivid tests/run.sh $(BUILD)

# Side-by-side performance runs; results go to bench/results.md.
bench:
	@scripts/install-deps.sh --bench
	$(MAKE) all benchtools
	bench/run.sh $(BUILD)

# ---- developer tools ---------------------------------------------------------
compile_commands.json:
	$(MAKE) clean
	bear -- $(MAKE) all tests

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Icapd -Ifcgi capd fcgi
	clang-tidy --quiet $(LIB_SRCS) $(CAPD_SRCS) $(FCGI_SRCS) -- $(CPPFLAGS) -std=c11

clean:
	rm -rf build build-asan build-tsan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# libFuzzer targets (clang): tests/fuzz/fuzz.mk defines `make fuzz` and `make fuzz-build`.
-include tests/fuzz/fuzz.mk
