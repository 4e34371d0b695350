# fuzz.mk - libFuzzer targets (clang): builds tests/fuzz/fuzz_*.c into build-fuzz/ and runs them.
#
#   make fuzz-build     build every build-fuzz/fuzz_* (clang, libFuzzer + ASan + UBSan)
#   make fuzz           build, replay tests/fuzz/regressions/, fuzz each target FUZZ_SECONDS
#   make fuzz-seeds     regenerate the binary seed corpora in tests/fuzz/corpus/ (TurboJPEG)
#   make fuzz-clean     remove build-fuzz/
#
# Included by the top Makefile; also works alone: make -f tests/fuzz/fuzz.mk fuzz-build.
# Variables: FUZZ_SECONDS (30), FUZZ_JOBS (targets run at once, 1), FUZZ_CC (clang),
# FUZZ_BUILD (build-fuzz). Needs Debian's clang and libclang-rt-14-dev (libFuzzer itself).
#
# The code under test is compiled into each fuzzer from source, not linked from the gcc-built
# libcapd.a: libFuzzer needs clang's coverage instrumentation in it. A target that #includes a
# module's .c to reach its statics leaves that .c out of its source list.

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_JOBS    ?= 1
FUZZ_CFLAGS  ?= -g -O1
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
FUZZ_WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
FUZZ_CPPFLAGS := -D_GNU_SOURCE -Icapd -Ifcgi -Itests/fuzz
FUZZ_LIBS    := -lm -pthread
FUZZ_Q       := $(if $(filter 1,$(V)),,@)

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
FUZZ_HEADERS := $(wildcard capd/*.h fcgi/*.h tests/fuzz/*.h)

# What each target compiles besides its own file.
fuzz_query_SRCS        := fcgi/query.c capd/ring.c capd/busguard.c capd/util.c
fuzz_jpeg_SRCS         := capd/jpeg_scan.c capd/jpeg_dht.c capd/util.c
fuzz_mjpeg_split_SRCS  := capd/jpeg_scan.c capd/util.c
fuzz_ring_SRCS         := capd/busguard.c capd/util.c
fuzz_ring_shm_SRCS     := capd/ring.c capd/busguard.c capd/util.c
# Sources a target #includes, for rebuilds only.
fuzz_mjpeg_split_INCLUDED := capd/mjpeg_split.c
fuzz_ring_INCLUDED        := capd/ring.c

.PHONY: fuzz-build fuzz fuzz-seeds fuzz-clean

fuzz-build: $(FUZZ_BINS)

define FUZZ_TARGET_RULE
$(FUZZ_BUILD)/$(1): tests/fuzz/$(1).c $$($(1)_SRCS) $$($(1)_INCLUDED) $$(FUZZ_HEADERS)
	@mkdir -p $$(@D)
	@echo "  FUZZ  $$@"
	$$(FUZZ_Q)$$(FUZZ_CC) -std=c11 $$(FUZZ_CPPFLAGS) $$(FUZZ_WARN) $$(FUZZ_CFLAGS) $$(FUZZ_SAN) \
	    -o $$@ tests/fuzz/$(1).c $$($(1)_SRCS) $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_TARGET_RULE,$(t))))

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh

# The seed generator is an ordinary program (no libFuzzer): TurboJPEG writes the JPEGs, the
# real ring writer lays out the ring images.
$(FUZZ_BUILD)/seedgen: tests/fuzz/seedgen.c capd/ring.c capd/busguard.c capd/util.c $(FUZZ_HEADERS)
	@mkdir -p $(@D)
	@echo "  CC    $@"
	$(FUZZ_Q)$(FUZZ_CC) -std=c11 $(FUZZ_CPPFLAGS) -Itests $(FUZZ_WARN) -Werror -g -O1 -o $@ \
	    tests/fuzz/seedgen.c capd/ring.c capd/busguard.c capd/util.c -lturbojpeg $(FUZZ_LIBS)

fuzz-seeds: $(FUZZ_BUILD)/seedgen
	$(FUZZ_BUILD)/seedgen tests/fuzz/corpus

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
