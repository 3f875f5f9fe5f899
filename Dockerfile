# syntax=docker/dockerfile:1.7
# jwtgate image: the release binary on distroless, non-root, read-only root.
#   docker build -t ghcr.io/jwtgate/jwtgate:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# Checked without an engine by scripts/check-dockerfile.sh.

# Build on the same Debian release as the runtime (bookworm = debian12), so
# the binary's glibc matches. Pinned to the toolchain CI tests with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what cargo needs to build the binary (Cargo.toml names benches/ as a
# target, so it must be present); .dockerignore allow-lists the same files.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
# The commit for jwtgate_build_info: build.rs reads JWTGATE_COMMIT (the
# context has no .git), cut to the 12 characters a git build stamps.
ARG REVISION=unknown
# BuildKit cache mounts keep the registry and target/ between builds, so a
# source change recompiles jwtgate only, not its ~300 dependencies. target/
# is a cache mount, so the binary is copied out in the same step.
# --locked: exactly the dependency versions CI tested.
# The release profile keeps line tables (debug = "line-tables-only") so perf
# and backtraces on a dev machine have file:line; the image needs neither,
# so its copy loses the DWARF sections (63 MiB -> 15 MiB with rust 1.95 on
# x86_64; scripts/check-dockerfile.sh prints both). --strip-debug keeps the
# symbol table (3 MiB more than a full strip): a backtrace from the image
# still names its functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    JWTGATE_COMMIT="$(printf %.12s "$REVISION")" cargo build --release --locked --bin jwtgate \
    && cp target/release/jwtgate /usr/local/bin/jwtgate \
    && strip --strip-debug /usr/local/bin/jwtgate

# distroless cc: glibc, libgcc and CA roots, no shell or package manager.
# The :nonroot tag runs as 65532 already; USER repeats it numerically so
# Kubernetes' runAsNonRoot can verify it without a passwd lookup.
FROM gcr.io/distroless/cc-debian12:nonroot
# OCI annotations (image-spec annotations.md). VERSION defaults to
# Cargo.toml's version (check-dockerfile.sh holds them equal); REVISION is
# the commit, passed at build time.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="jwtgate" \
      org.opencontainers.image.description="Reverse-proxy sidecar that verifies JWTs and enforces revocation (logout) in front of unmodified HTTP APIs" \
      org.opencontainers.image.source="https://github.com/jwtgate/jwtgate" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /usr/local/bin/jwtgate /usr/local/bin/jwtgate
# Default config (the sidecar's, also the ConfigMap's): Kubernetes mounts the
# ConfigMap over /etc/jwtgate; secrets are expected as files under
# /var/run/secrets/jwtgate (the Secret jwtgate-secrets).
COPY k8s/base/jwtgate.yaml /etc/jwtgate/jwtgate.yaml
USER 65532:65532
# jwtgate writes nothing to disk: runs with readOnlyRootFilesystem.
# 8080 public listener, 9901 admin (health, readiness, metrics, revocations).
EXPOSE 8080 9901
ENTRYPOINT ["jwtgate"]
CMD ["run", "-c", "/etc/jwtgate/jwtgate.yaml"]
