# SPDX-License-Identifier: MIT
#
# loom: the front door to the CMake build. See docs/building.md.
#
#   make            configure and build into build/ (the CLI is build/loom)
#   make run        install what is missing, build, lay out the web page
#                   (build/web) and start loom serve on 127.0.0.1:1234 with
#                   ./data: open http://127.0.0.1:1234/ in two tabs
#   make demo       install what is missing, build, run a tour of the CLI
#   make test       install what is missing; gcc -Werror build + ctest;
#                   clang ASan+UBSan build (build-asan/) + ctest twice:
#                   each small block its own allocation, then (with
#                   LOOM_ASAN_POOL=1) through the documents' block pool
#   make check      gcc build + ctest only (no dependency install, no ASan)
#   make asan       clang ASan+UBSan build + ctest only (both ways)
#   make valgrind   ctest under valgrind memcheck (build-valgrind/)
#   make fuzz       libFuzzer targets with clang (build-fuzz/fuzz/)
#   make bench      loom beside the real yjs on the same workloads (bench/)
#   make bench-net  loom serve beside the reference y-websocket server
#                   under the same network load (bench/net/)
#   make format     reformat the C sources with clang-format
#   make lint       clang-format check, tools/check-src.sh, shellcheck, cppcheck
#   make tidy       clang-tidy over src/ and tools/ (slower; not in lint)
#   make deps       only install what is missing (scripts/deps.sh)
#   make clean      remove the build trees
#
# Variables: JOBS (parallel jobs, default: all cores), BUILD_TYPE
# (RelWithDebInfo), CMAKE_ARGS (extra cmake options for every tree),
# RUN_HOST and RUN_PORT (where make run listens: 127.0.0.1, 1234).

JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= RelWithDebInfo
CMAKE_ARGS ?=
RUN_HOST   ?= 127.0.0.1
RUN_PORT   ?= 1234

BUILD      := build
ASAN_BUILD := build-asan
FUZZ_BUILD := build-fuzz
VG_BUILD   := build-valgrind

CMAKE_COMMON := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DLOOM_WERROR=ON $(CMAKE_ARGS)
CTEST        := ctest --output-on-failure -j $(JOBS)

SAN_ENV := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

VALGRIND := valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes -q \
            --suppressions=$(CURDIR)/tests/valgrind.supp

.PHONY: all build deps test check asan run demo valgrind fuzz format lint tidy \
        clean help bench-net

all: build

help:
	@sed -n '3,27p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@scripts/deps.sh

# ---- gcc build (build/) ----------------------------------------------------

build:
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=gcc $(CMAKE_COMMON)
	cmake --build $(BUILD) -j $(JOBS)

check: build
	$(CTEST) --test-dir $(BUILD)

# ---- clang ASan+UBSan build (build-asan/) ----------------------------------

asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DLOOM_SANITIZE=ON $(CMAKE_COMMON)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(SAN_ENV) $(CTEST) --test-dir $(ASAN_BUILD)
	LOOM_ASAN_POOL=1 $(SAN_ENV) $(CTEST) --test-dir $(ASAN_BUILD)

# ---- the two commands of the README ----------------------------------------

# Both builds run even when the first fails, so one CI run reports both.
test: deps
	@rc=0; \
	$(MAKE) --no-print-directory check || rc=1; \
	$(MAKE) --no-print-directory asan || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED (see above)"; exit 1; fi; \
	echo "make test: gcc and ASan+UBSan builds passed"

# The sync server in the foreground with the demo page (web/, laid out in
# build/web by scripts/web-build.mjs) and the documents in ./data; Ctrl-C
# stops it.
run: deps
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=gcc $(CMAKE_COMMON)
	cmake --build $(BUILD) -j $(JOBS) --target loom
	node scripts/web-build.mjs --out $(BUILD)/web
	@if ! $(BUILD)/loom help serve >/dev/null 2>&1; then \
	    echo "make run: $(BUILD)/loom has no 'serve' command yet ('make demo' tours the CLI)" >&2; \
	    exit 1; \
	fi
	@echo "make run: open http://$(RUN_HOST):$(RUN_PORT)/ (or /?room=NAME) in two tabs; Ctrl-C stops"
	$(BUILD)/loom serve --host $(RUN_HOST) --port $(RUN_PORT) --data ./data --web $(BUILD)/web

demo: deps
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=gcc $(CMAKE_COMMON)
	cmake --build $(BUILD) -j $(JOBS) --target loom
	@scripts/demo.sh $(BUILD)/loom

# ---- slower checks ---------------------------------------------------------

# Every ctest test runs under memcheck, except the node-driven ones: the CLI
# test (a shell script) wraps each loom run instead, and the differential
# test (node + a driver) and the server tests (node, chromium) are left to
# the ASan build. ASan and valgrind are never combined.
valgrind: deps
	cmake -S . -B $(VG_BUILD) -DCMAKE_C_COMPILER=gcc $(CMAKE_COMMON) -DLOOM_TEST_TIMEOUT=3600
	cmake --build $(VG_BUILD) -j $(JOBS)
	ctest --test-dir $(VG_BUILD) --output-on-failure -j $(JOBS) -LE '^(cli|diff|interop|browser|net|peer)$$' \
	    --overwrite MemoryCheckCommand=$$(command -v valgrind) \
	    --overwrite "MemoryCheckCommandOptions=$(wordlist 2,100,$(VALGRIND))" \
	    -T memcheck || { cat $(VG_BUILD)/Testing/Temporary/MemoryChecker.*.log; exit 1; }
	LOOM_CLI_WRAPPER="$(VALGRIND)" ctest --test-dir $(VG_BUILD) --output-on-failure -R '^cli$$'

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DLOOM_FUZZ=ON $(CMAKE_COMMON)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target loom_fuzzers
	@ls $(FUZZ_BUILD)/fuzz/ 2>/dev/null || echo "make fuzz: no fuzz targets yet (tests/fuzz/fuzz_*.c)"

# ---- benchmarks (bench/README.md) ------------------------------------------

# loom against the real yjs: editing traces, map and B1.1 workloads, and a
# 10x trace; prints a markdown table of medians (RUNS=n runs each, default 3;
# takes several minutes). The bench/ folder exists, hence .PHONY here.
.PHONY: bench
bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=gcc $(CMAKE_COMMON)
	cmake --build $(BUILD) -j $(JOBS) --target loom
	bench/compare.sh $(BUILD)/loom

# The y-websocket servers under the same load: deliveries/s, latency,
# memory per connection, 10,000 idle connections (bench/README.md). RUNS,
# ROOMS, CLIENTS, SECS, IDLE: see bench/net/compare.sh.
bench-net: deps
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=gcc $(CMAKE_COMMON)
	cmake --build $(BUILD) -j $(JOBS) --target loom loom_loadgen
	bench/net/compare.sh $(BUILD)/loom

# ---- style -----------------------------------------------------------------

format:
	@scripts/lint.sh --fix-format

lint:
	@scripts/lint.sh

tidy:
	@scripts/lint.sh --tidy

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(VG_BUILD)
