# syntax=docker/dockerfile:1
#
# ferrocable container image: a release build in the official Rust image, then only the binary
# and the profiles from config/ on a distroless runtime (glibc + libgcc, no shell, non-root).
#
#   docker build -t ferrocable .                                # default profile: config/example.toml
#   docker build -t myapp-cable --build-arg PROFILE=myapp.toml .  # your profile, put in config/ first
#   docker run --rm -p 8080:8080 -e SECRET_KEY_BASE -e REDIS_URL \
#     --ulimit nofile=1048576:1048576 --stop-timeout 30 myapp-cable
#
# No image has been built from this file on the machine it was written on (no container engine
# there); bin/check-deploy lints it and emulates its runtime stage instead. See docs/DEPLOY.md.

# The toolchain bin/test runs on; the crate's minimum is 1.85 (Cargo.toml rust-version).
# Bookworm on both sides: the binary links against the build stage's glibc (2.36), which the
# debian12 runtime must match or exceed.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# .dockerignore is an allow-list: only what the server's build needs is in the context.
COPY . .
# Only the server binary (not the benchmark tool). The cache mounts keep the crates.io download
# and the compiled dependencies between builds; the binary is copied out of the target cache
# because a cache mount is not part of the image. --strip-debug drops the line tables the
# release profile keeps for profiling (58 MB -> 9 MB) but keeps symbols, so a panic's
# backtrace still names functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ferrocable \
 && mkdir -p /out \
 && objcopy --strip-debug target/release/ferrocable /out/ferrocable

# glibc, libgcc_s, CA certificates, tzdata, /etc/passwd with "nonroot" (65532); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ferrocable /usr/local/bin/ferrocable
# Every profile from config/ for reference, and the chosen one where CMD looks for it. Mount a
# file over /etc/ferrocable/ferrocable.toml to use another profile without rebuilding.
COPY config/ /etc/ferrocable/profiles/
ARG PROFILE=example.toml
COPY config/${PROFILE} /etc/ferrocable/ferrocable.toml
# Configuration is environment: the profile holds the app's contract, the environment holds
# addresses and secrets (SECRET_KEY_BASE, REDIS_URL: never baked in). A container listens on
# every interface; ferrocable refuses that without auth (auth.mode = "jwt" in the profile).
# JSON logs for the log collector.
ENV FERROCABLE_SERVER__HOST=0.0.0.0 \
    PORT=8080 \
    FERROCABLE_LOGGING__FORMAT=json
# Numeric, so that orchestrators enforcing runAsNonRoot can check it.
USER 65532:65532
EXPOSE 8080
# SIGTERM: every client gets {"type":"disconnect","reason":"server_restart","reconnect":true},
# then the drain waits up to server.shutdown_timeout_secs (10): give `docker stop` longer than
# that (--stop-timeout 30; Kubernetes terminationGracePeriodSeconds >= 30).
STOPSIGNAL SIGTERM
# No HEALTHCHECK: the runtime has no shell or HTTP client to run one. Orchestrators probe
# GET /health on the port (200 {"status":"ok"}, 503 while Redis is unreachable).
ENTRYPOINT ["/usr/local/bin/ferrocable"]
CMD ["--config", "/etc/ferrocable/ferrocable.toml"]
