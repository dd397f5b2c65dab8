# petrel — an OCI runtime that runs every container in its own KVM microVM.
#
#   make deps     install the Debian packages the build, guest and tests need
#   make          build build/bin/* and the guest artifacts in build/guest/
#   make check    host unit tests, then the testbed suites against real guests
#   make demo     boot a guest with petrel-vmm inside the testbed
#   make lint     clang-format check, cppcheck, clang-tidy
#   make fuzz     run the libFuzzer targets for longer (FUZZ_SECONDS=300)
#   make bench    boot-time and memory benchmarks, written to docs/performance.md

BUILD    ?= build
CC       ?= cc
CLANG    ?= clang
PREFIX   ?= /usr/local
VERSION  := 0.1.0

PKGS     := libseccomp yajl libcap libnl-3.0 libnl-route-3.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lfdt -lpthread -lutil

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wmissing-prototypes -Wstrict-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -DPETREL_VERSION=\"$(VERSION)\" \
	-fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2 -I. $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS  ?=

# Library sources: everything but the programs' main files.
COMMON_SRCS  := $(wildcard common/*.c)
VMM_SRCS     := $(filter-out vmm/main.c,$(shell find vmm -name '*.c' 2>/dev/null | sort))
OCI_SRCS     := $(wildcard oci/*.c)
NET_SRCS     := $(filter-out netsetup/main.c,$(wildcard netsetup/*.c))
RUNTIME_SRCS := $(filter-out runtime/main.c,$(wildcard runtime/*.c))
LIB_SRCS     := $(COMMON_SRCS) $(VMM_SRCS) $(OCI_SRCS) $(NET_SRCS) $(RUNTIME_SRCS)
LIB_OBJS     := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB          := $(BUILD)/libpetrel.a

PROGS        := $(BUILD)/bin/petrel-vmm
PROGS        += $(BUILD)/bin/petrel-netsetup
ifneq ($(wildcard runtime/main.c),)
PROGS        += $(BUILD)/bin/petrel
endif

UNIT_SRCS    := $(wildcard tests/unit/test_*.c)
UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

GUEST        := $(BUILD)/guest

.PHONY: all progs guest deps check check-unit check-testbed demo lint format fuzz bench soak install clean distclean
all: progs guest

progs: $(PROGS) $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# petrel-vmm is linked statically: no ld.so and no shared-library mappings, so
# a VM's overhead RSS is only the touched pages of the code it uses, and exec
# does no dynamic linking (docs/performance.md). It does no NSS lookups, so a
# static glibc is fine. yajl's static archive is libyajl_s.a (libyajl-dev).
VMM_LIBS := -static -Wl,--gc-sections -lseccomp -lyajl_s -lfdt -lcap -lnl-route-3 -lnl-3 -lpthread -lutil
$(BUILD)/bin/petrel-vmm: $(BUILD)/obj/vmm/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LIBS)

$(BUILD)/bin/petrel-netsetup: $(BUILD)/obj/netsetup/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bin/petrel: $(BUILD)/obj/runtime/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# libFuzzer targets: the library is built once more with clang and the
# sanitizers (fuzzer-no-link), and each target links against it.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -DPETREL_VERSION=\"$(VERSION)\" -DPETREL_FUZZING -I. $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/fuzz-obj/%.o)
$(BUILD)/fuzz-obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/libpetrel-fuzz.a: $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(BUILD)/fuzz/libpetrel-fuzz.a
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/fuzz/libpetrel-fuzz.a $(PKG_LIBS)

guest:
	@guest/build.sh $(GUEST)

deps:
	@tests/deps.sh

check: all
	@tests/check

check-unit: progs
	@tests/check --unit-only

demo: all
	@tests/demo

lint:
	@tests/lint

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "== $$f"; mkdir -p $(BUILD)/fuzz/corpus-$$(basename $$f); \
		$$f -max_total_time=$${FUZZ_SECONDS:-300} $(BUILD)/fuzz/corpus-$$(basename $$f) || exit 1; done

fuzz-bins: $(FUZZ_BINS)

# The long runs make check keeps short: 100 networked create/delete cycles
# (PETREL_LEAK_CYCLES; make check runs 12), about 8 minutes in the testbed.
soak: all
	@BUILD=$(BUILD) PETREL_LEAK_CYCLES=$${PETREL_LEAK_CYCLES:-100} PETREL_TEST_TIMEOUT=3300 \
		tests/testbed/run --env BUILD --env PETREL_LEAK_CYCLES --env PETREL_TEST_TIMEOUT \
		--timeout 3600 -- tests/lib/run-suite tests/net/leak-cycles.sh

bench: all
	@bench/run

install: progs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	for m in docs/man/*.1; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done; true

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz-obj -name '*.d' 2>/dev/null)
