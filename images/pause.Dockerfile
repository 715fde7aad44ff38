# syntax=docker/dockerfile:1
#
# The pause image: one static no_std binary in an otherwise empty image,
# running as the unprivileged user 65535:65535. Build it for both platforms
# from the repository root:
#
#   docker buildx build --platform linux/amd64,linux/arm64 -f images/pause.Dockerfile \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" \
#     -t REGISTRY/prepull/pause:0.1.0 --push .
#
# The builder stage runs on the build machine's own platform and
# cross-compiles for each target platform, linking with rust-lld (see
# .cargo/config.toml). The offline build (`cargo run -p prepull-images --bin
# build-images`) makes the same image without Docker and with reproducible
# digests.

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS builder
ARG TARGETARCH
WORKDIR /src
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "pause images are built for amd64 and arm64, not $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && echo "$target" > /rust-target \
 && rustup target add "$target"
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=prepull-target-${TARGETARCH} \
    target="$(cat /rust-target)" \
 && cargo build --release --locked --target "$target" -p pause \
 && cp "target/$target/release/pause" /pause

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/prepull/prepull
ARG LICENSES=Apache-2.0
ARG TITLE=pause
ARG DESCRIPTION="Waits for SIGTERM or SIGINT at no cost and reaps children: a pod's main container or sandbox"
LABEL org.opencontainers.image.title="${TITLE}" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}"
COPY --from=builder /pause /pause
# pause needs no privilege at all; numeric ids because the image has no
# /etc/passwd.
USER 65535:65535
ENTRYPOINT ["/pause"]
