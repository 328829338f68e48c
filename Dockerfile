# Multi-stage image of the `vit` executable on Debian 12, built with the same install script as the README.
#   docker build -t vit .
#   docker run --rm -v "$PWD:/work" vit info vit_base_patch16_224
FROM debian:bookworm AS build
COPY third_party/install-deps.sh /src/third_party/install-deps.sh
# Without the data set and the test tools (Python torch, Catch2): the tests are not built here.
RUN bash /src/third_party/install-deps.sh --build-only
COPY . /src
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DVIT_REQUIRE_OPENCV=ON -DVIT_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target vit

FROM debian:bookworm-slim
COPY third_party/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh --runtime-only \
 && rm -rf /tmp/install-deps.sh /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 vit
COPY --from=build /build/app/vit /usr/local/bin/vit
USER vit
WORKDIR /work
ENTRYPOINT ["vit"]
CMD ["--help"]
