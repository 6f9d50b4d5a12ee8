# The two commands of the README, and a few helpers.
.PHONY: demo test build bench format clean

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

build:
	./scripts/install-deps.sh
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j $${JOBS:-2}

bench:
	./scripts/install-deps.sh
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLASTFRAME_BENCHMARKS=ON
	cmake --build build -j $${JOBS:-2}
	./bench/run.py

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp')

clean:
	rm -rf build build-asan build-tsan
