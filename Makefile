# The two commands of the README, and a few helpers.
.PHONY: demo test build deb bench fuzz format clean

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

build:
	./scripts/install-deps.sh
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j $${JOBS:-2}

# The Debian package, built by CPack (cmake/package.cmake): build/lastframe_VERSION_ARCH.deb.
deb:
	./scripts/install-deps.sh
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j $${JOBS:-2} --target lastframe
	cd build && cpack -G DEB

bench:
	./scripts/install-deps.sh
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLASTFRAME_BENCHMARKS=ON
	cmake --build build -j $${JOBS:-2}
	./bench/run.py

# Every fuzz target for FUZZ_SECONDS each (default 300: about an hour in all);
# make test runs them for 30 s each. See FUZZING.md.
FUZZ_SECONDS ?= 300
fuzz:
	./scripts/install-deps.sh
	./scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'fuzz/*.cpp' 'fuzz/*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz
