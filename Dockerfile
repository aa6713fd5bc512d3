# wharf's container image for sites with internet access (Debian 12 build stage, nothing but wharf in
# the result). Without access to a registry, deploy/image/build-oci-layout assembles the same image from
# a local build (that is what the tests run):
#   docker build -t wharf:0.1.0 .
#   docker run -d -p 5000:5000 -v registry-data:/var/lib/registry wharf:0.1.0
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends meson ninja-build g++ pkg-config python3 binutils git \
      ca-certificates libevent-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev \
      liblmdb-dev libpq-dev libspdlog-dev doctest-dev libcrypt-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN meson setup build --buildtype=release \
 && ninja -C build wharf \
 && deploy/image/build-oci-layout --binary build/wharf --rootfs /rootfs

FROM scratch
ARG VERSION=0.1.0
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 5000
VOLUME /var/lib/registry
WORKDIR /var/lib/registry
ENV PATH=/usr/bin
ENTRYPOINT ["/usr/bin/wharf"]
CMD ["serve", "/etc/docker/registry/config.yml"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/bin/wharf", "healthcheck", "/etc/docker/registry/config.yml"]
LABEL org.opencontainers.image.title="wharf" \
      org.opencontainers.image.description="OCI registry and pull-through mirror (registry:2 compatible)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="wharf source tree"
