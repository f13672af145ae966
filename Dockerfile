# The worker and the controller in one image. The Swift runtime is linked in statically; the
# C libraries of the card stay dynamic, and pg_dump/pg_restore come from the distribution.
#   docker build -t backstop .
FROM swift:6.1-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcurl4-openssl-dev libpq-dev libssl-dev libyaml-dev libzstd-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
RUN swift build -c release --static-swift-stdlib --product backstop \
 && swift build -c release --static-swift-stdlib --product backstop-controller \
 && install -D "$(swift build -c release --show-bin-path)/backstop" /out/backstop \
 && install -D "$(swift build -c release --show-bin-path)/backstop-controller" /out/backstop-controller

FROM debian:bookworm-slim
# postgresql-client-15 carries pg_dump/pg_restore 15; a newer server needs a newer client
# (backstop says so before dumping).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libpq5 libssl3 libyaml-0-2 libzstd1 zlib1g postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# The numeric user the restricted Pod Security profile and the CronJobs expect.
USER 65532:65532
ENTRYPOINT ["backstop"]
CMD ["--help"]
