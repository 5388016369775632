# mmrec — the two commands a newcomer needs:
#   make demo   install what is missing, build, run a live local demo
#   make test   install what is missing, build, run the whole test suite
# Other targets: build, test-asan (the suite under ASan+UBSan), test-tsan (the tests labelled
# tsan, those that exercise our threads, under ThreadSanitizer), fuzz (libFuzzer harnesses,
# FUZZ_SECONDS each, default 20), docs (regenerate docs/CONFIGURATION.md), clean.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: deps build test test-asan test-tsan fuzz demo docs clean kafka

deps:
	@scripts/deps.sh

kafka: deps
	@scripts/kafka.sh fetch

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: build kafka
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 900

# Label quality (test_replay_modalities, a model-quality run of several minutes under ASan) is left out.
test-asan: deps kafka
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMMREC_SANITIZE=ON -DMMREC_CUDA=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -LE quality --output-on-failure -j2 --timeout 900

# Third-party libraries are not instrumented: tests/tsan.supp says what is suppressed and why.
# history_size=7: a longer per-thread history, so the earlier access's stack is restored.
test-tsan: deps kafka
	@cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMREC_TSAN=ON -DMMREC_CUDA=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_TSAN) -j$(JOBS)
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest -L tsan --output-on-failure -j2 --timeout 900

fuzz: deps
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

demo: build kafka
	@scripts/demo.sh $(BUILD)

docs: build
	$(BUILD)/mmrecd --help-markdown > docs/CONFIGURATION.md

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
