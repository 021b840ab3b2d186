# Dockerfile -- the expiry-bridge image (what helm/expiry-bridge deploys).
#
# Two stages on Debian 13 (trixie) slim -- hiredis 1.2, librdkafka 2.8 --
# which CI builds and tests on in a chroot (scripts/debian13.sh, under
# ASan+UBSan; Debian 12 is tested too, on CI's own machine):
#   build    installs .ci/debian13/packages-build.txt, builds with -Werror,
#            runs the unit tests, and installs into a staging root (cmake
#            --install)
#   runtime  installs .ci/debian13/packages-runtime.txt, adds a non-root
#            user (10001) and copies the staging root: what cmake --install
#            put there (the bridge, its config files and schemas, the sample
#            consumer when the build has it), the plugins folder, the
#            default config.
#
# The package lists are the files CI installs from (.ci/run -> scripts/), so
# the image cannot drift from what was tested; tests/helm/test_packaging.py
# checks this file reads them, and (run inside the Debian 13 root) that every
# library the installed binaries link is provided by the runtime list.
#
#   docker build -t expiry-bridge .
#   docker run --rm expiry-bridge --version
#   docker run --rm -v $PWD/config:/etc/expiry-bridge:ro expiry-bridge \
#       run -c /etc/expiry-bridge/expiry-bridge.example.yaml

ARG DEBIAN_IMAGE=debian:13-slim

# ---------------------------------------------------------------- build
FROM ${DEBIAN_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY .ci/debian13/packages-build.txt .ci/debian13/packages-build.txt
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends < .ci/debian13/packages-build.txt \
 && rm -rf /var/lib/apt/lists/*

COPY . .
# RelWithDebInfo, the tests run on exactly the code that ships (stripped
# only at install). Bench tools are not shipped.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
      -DEB_WERROR=ON -DEB_BUILD_TESTS=ON -DEB_BUILD_EXAMPLES=ON -DEB_BUILD_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" \
 && ctest --test-dir /build -L unit --output-on-failure \
 && DESTDIR=/staging cmake --install /build --strip

# The install rules are the contents of the image: the bridge in /usr/bin,
# its shipped files in /usr/share/expiry-bridge (example and demo configs,
# the config's JSON Schema, redis/eb_timers.lua) and the event's JSON
# Schema in /usr/share/doc/expiry-bridge; the sample consumer arrives
# through its own rule. Only the image's fixed layout is added here: the
# plugins folder (may be empty) and the default config the CMD and the Helm
# chart use, a copy of the installed example.
RUN install -d -m 0755 /staging/usr/lib/expiry-bridge/plugins /staging/etc/expiry-bridge \
 && cp /staging/usr/share/expiry-bridge/expiry-bridge.example.yaml \
      /staging/etc/expiry-bridge/config.yaml \
 && (cd /staging && find . -type f -perm -u+x | sed 's|^\.||' | sort) \
      > /staging/usr/share/expiry-bridge/installed-executables.txt

# -------------------------------------------------------------- runtime
FROM ${DEBIAN_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /tmp/expiry-bridge-setup
COPY .ci/debian13/packages-runtime.txt .ci/debian13/packages-runtime.txt
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends < .ci/debian13/packages-runtime.txt \
 && rm -rf /var/lib/apt/lists/* /tmp/expiry-bridge-setup
WORKDIR /

# A fixed uid/gid, so Kubernetes' runAsNonRoot can verify it (the chart's
# podSecurityContext uses the same numbers).
RUN groupadd --system --gid 10001 expiry-bridge \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin expiry-bridge

COPY --from=build /staging/ /

# Fail the image build, not the pod, when a runtime library is missing.
RUN expiry-bridge --version \
 && ! xargs -r ldd < /usr/share/expiry-bridge/installed-executables.txt 2>/dev/null \
      | grep -F 'not found'

LABEL org.opencontainers.image.title="expiry-bridge" \
      org.opencontainers.image.description="Redis key-expiry notifications to routed CloudEvents on Kafka" \
      org.opencontainers.image.base.name="docker.io/library/debian:13-slim"

USER 10001:10001
# /metrics, /healthz, /readyz (config http.listen; the chart's metrics.port).
EXPOSE 9464
# SIGTERM drains in-flight events (kafka.drain_timeout) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["expiry-bridge"]
CMD ["run", "-c", "/etc/expiry-bridge/config.yaml"]
