# OutboxBridge image: one binary for every subcommand (run, install, sdk-sync, warehouse-sync, ...).
#
#   docker build -t outbox-bridge .
#   docker run --rm outbox-bridge --help
#
# The build stage compiles a release binary with the Swift standard library and Foundation linked
# statically; the runtime stage needs only libpq and librdkafka from Debian. Both stages are
# Debian 12 (bookworm), so the librdkafka the binary was built against is the one it runs with.

# Package.swift needs Swift tools 6.2 or later; development and CI use 6.3.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpq-dev librdkafka-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies in their own layer, so a source change does not fetch them again.
# Package.resolved is not committed; a local one, if present, pins the versions.
COPY Package.* ./
RUN swift package resolve
# SwiftPM checks every target's folder when it loads the manifest, so Tests/ comes along too.
COPY Sources ./Sources
COPY Tests ./Tests
COPY sql ./sql
RUN swift build -c release --product outbox-bridge --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/outbox-bridge" /out/bin/outbox-bridge

FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpq5 librdkafka1 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
# `install` finds the migrations at <binary dir>/../share/outbox-bridge/sql.
COPY --from=build /out/bin/outbox-bridge /usr/local/bin/outbox-bridge
COPY sql /usr/local/share/outbox-bridge/sql
# A non-root user; sdk-sync writes its packages under /var/lib/outbox-bridge (a volume in
# docker-compose.yml, which takes this folder's owner when first created).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/outbox-bridge --shell /usr/sbin/nologin outbox-bridge \
    && install -d -o outbox-bridge -g outbox-bridge /var/lib/outbox-bridge /var/lib/outbox-bridge/sdks
USER outbox-bridge
WORKDIR /var/lib/outbox-bridge
# The relay's /metrics and /health endpoints (HTTP_PORT).
EXPOSE 9090
ENTRYPOINT ["outbox-bridge"]
CMD ["--help"]
