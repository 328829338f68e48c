# Sourced by the Fashion-MNIST scripts (main-job.sh, fashion-mnist-long.sh), from the repository root: installs
# every dependency, builds `vit`, and converts Debian's Fashion-MNIST into an image folder tree. Sets `vit` (the
# executable) and `data` (the tree: train/ and val/, the 10,000 test images as validation data).
bash third_party/install-deps.sh --no-test-tools
# Tests stay off in a new build folder (their tools are not installed here); one already configured with them
# (a developer's, or scripts/test.sh's) keeps them, since only the vit target is built below.
tests_option=()
[[ -f build/CMakeCache.txt ]] || tests_option=(-DVIT_BUILD_TESTS=OFF)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVIT_REQUIRE_OPENCV=ON "${tests_option[@]}"
cmake --build build -j"$(nproc)" --target vit
vit=build/app/vit

data=build/fashion-mnist
"$vit" dataset fashion-mnist --out "$data"
