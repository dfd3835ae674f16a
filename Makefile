# kiln: the two commands a newcomer needs are `make demo` and `make test`.
BUILD_DIR ?= build
PREFIX ?= /usr/local
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
TSAN_BUILD_DIR ?= build-tsan
# make fuzz: seconds per fuzz target.
FUZZ_SECONDS ?= 60
BUILD_TYPE ?= RelWithDebInfo
WERROR ?= OFF
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
# Let ccache reuse objects across checkouts in different folders (CI builds a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps configure build ort test test-asan test-tsan fuzz demo install install-python format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DKILN_WERROR=$(WERROR) >/dev/null

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The reference peer (ONNX Runtime 1.30 for Node.js) that the model tests compare against.
ort:
	@bash tests/peer/install-ort.sh $(BUILD_DIR)/ort

test: build ort
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The same tests on a build with AddressSanitizer and UndefinedBehaviorSanitizer. -O1 -g1 with asserts on:
# UBSan instrumentation makes -O2 compiles about 2.3x slower, and CI builds this tree from scratch.
test-asan: deps
	@bash tests/peer/install-ort.sh $(ASAN_BUILD_DIR)/ort
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=$(WERROR) \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DKILN_SANITIZE=address,undefined \
	  -DKILN_BUILD_PYTHON=OFF
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	cd $(ASAN_BUILD_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# The concurrency stress tests (label tsan) on a ThreadSanitizer build. Each run uses one intra-op thread, so the
# threads TSan watches are the callers' (sessions shared by threads, caches, tactic timing, cancellation): libgomp
# and oneDNN are not instrumented, and with one thread no OpenMP team is started.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
	  -DKILN_SANITIZE=thread -DKILN_BUILD_PYTHON=OFF -DKILN_WERROR=$(WERROR) >/dev/null
	cmake --build $(TSAN_BUILD_DIR) -j $(JOBS) --target concurrency_test
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(TSAN_BUILD_DIR)/tests/concurrency_test

# libFuzzer on every fuzz target (tests/fuzz) for FUZZ_SECONDS each, on a clang-14 build with ASan and UBSan;
# corpora seeded from the node suite, the test models and the demo's images, kept in $(FUZZ_BUILD_DIR)/corpus.
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DKILN_FUZZ=ON -DKILN_BUILD_PYTHON=OFF >/dev/null
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target fuzz_model fuzz_session fuzz_npy fuzz_image fuzz_tensor_pb fuzz_adapter fuzz_plan
	bash tests/fuzz/run.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

demo: build
	@bash examples/demo.sh $(BUILD_DIR)

# Installs the C API's headers (kiln/kiln_c.h, kiln/kiln.hpp, kiln/custom_op.h), libkiln.so, the kiln CLI, the CMake package
# (find_package(kiln): kiln::kiln) and lib/pkgconfig/kiln.pc under PREFIX, stripped.
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX) --strip

# Installs the Python module `kiln` into Debian's python3 (dist-packages), so `import kiln` works anywhere.
PY_SITE = $(shell $(PYTHON) -c 'import site; print([p for p in site.getsitepackages() if p.startswith("/usr/local")][0])')
install-python: build
	install -d $(DESTDIR)$(PY_SITE)/kiln
	install -m 644 $(BUILD_DIR)/python/kiln/__init__.py $(BUILD_DIR)/python/kiln/sdk.py \
	  $(BUILD_DIR)/python/kiln/_sparse.py $(BUILD_DIR)/python/kiln/__init__.pyi $(BUILD_DIR)/python/kiln/py.typed \
	  $(DESTDIR)$(PY_SITE)/kiln/
	install -m 755 $(BUILD_DIR)/python/kiln/_kiln*.so $(DESTDIR)$(PY_SITE)/kiln/
	@echo "installed kiln into $(DESTDIR)$(PY_SITE)/kiln"

format:
	clang-format -i $$(git ls-files '*.h' '*.hpp' '*.cc' '*.c')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.h' '*.hpp' '*.cc' '*.c')

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR) $(TSAN_BUILD_DIR)
