# The worker and the controller in one image: `backstop` (the entrypoint) and
# `backstop-controller`. The Swift runtime is linked in statically; the card's C libraries stay
# dynamic, from Debian 13, and pg_dump/pg_restore 17 come from postgresql-client-17, which
# dumps servers from PostgreSQL 9.2 to 17.
#   docker build -t backstop .
# hack/image-check.sh proves the runtime stage without Docker: it installs exactly the
# packages of the runtime stage's `apt-get install` line into a Debian 13 root and runs the
# binaries there against a PostgreSQL 17 server.
#
# PostgreSQL 18 servers need pg_dump 18: add PGDG's repository in the runtime stage and
# install postgresql-client-18 instead, e.g.
#   RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
#    && install -d /usr/share/postgresql-common/pgdg \
#    && curl -fsSLo /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc \
#    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt trixie-pgdg main" > /etc/apt/sources.list.d/pgdg.list
# Backstop checks the server's version against pg_dump's before writing anything, and says
# which client it needs.

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcurl4-openssl-dev libpq-dev libssl-dev libyaml-dev libzstd-dev zlib1g-dev pkg-config patchelf \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
COPY hack/bundle.sh hack/bundle.sh
RUN swift build -c release --static-swift-stdlib --product backstop \
 && swift build -c release --static-swift-stdlib --product backstop-controller \
 && install -D "$(swift build -c release --show-bin-path)/backstop" /out/bin/backstop \
 && install -D "$(swift build -c release --show-bin-path)/backstop-controller" /out/bin/backstop-controller \
 && hack/bundle.sh /out/bin/backstop /out/bundle

FROM debian:trixie-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="backstop" \
      org.opencontainers.image.description="Kubernetes-native PostgreSQL backups you can prove: the worker and the controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/backstop/backstop"
# The runtime packages (hack/image-check.sh installs exactly these): the card's libraries
# under their Debian 13 names, CA certificates for TLS, and pg_dump/pg_restore 17.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libcurl4t64 libpq5 libssl3t64 libyaml-0-2 libzstd1 zlib1g postgresql-client-17 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/ /usr/local/bin/
# The WAL archiver for PostgreSQL pods (k8s/examples/postgres-archiving.yaml): the worker with
# the libraries it needs beyond glibc, which an init container copies into the server's pod.
COPY --from=build /out/bundle/ /opt/backstop-bundle/
# The numeric user the restricted Pod Security profile and the CronJobs expect.
USER 65532:65532
ENTRYPOINT ["backstop"]
CMD ["--help"]
