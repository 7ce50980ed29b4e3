# weatherpipe: one image for every stage (`sensors`, `ingest`, `detect`, `api`, `up`, `db upgrade`).
#
#   make image                     (podman build, or docker build, with the right arguments)
#   podman run --rm -p 127.0.0.1:8000:8000 localhost/weatherpipe up
#
# Debian's Python 3.11; the dependencies are installed only from requirements/image.txt, pinned
# with hashes (refresh with `make lock`); the project itself as a wheel built with the pinned
# hatchling of requirements/build.txt. The runtime stage has no pip, compiler or build tool.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# Where PyPI is reached through a TLS-inspecting proxy, pass its CA bundle (see the Makefile).
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
COPY requirements/ /src/requirements/
# /opt/build holds pip and hatchling; it installs into /opt/weatherpipe, which gets no pip.
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install -q --require-hashes -r /src/requirements/build.txt \
 && python3 -m venv --without-pip /opt/weatherpipe \
 && /opt/build/bin/pip --python /opt/weatherpipe/bin/python install -q --require-hashes \
      --no-deps --only-binary :all: -r /src/requirements/image.txt
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
RUN /opt/build/bin/pip wheel -q --no-deps --no-build-isolation -w /tmp/wheel /src \
 && /opt/build/bin/pip --python /opt/weatherpipe/bin/python install -q --no-deps /tmp/wheel/*.whl

FROM ${BASE}
# Like Debian's slim images: no manuals, documentation (copyright files stay) or translations.
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
      > /etc/dpkg/dpkg.cfg.d/weatherpipe-slim \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
 && groupadd --gid 10001 weatherpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/weatherpipe \
      --shell /usr/sbin/nologin weatherpipe \
 && install -d -o weatherpipe -g weatherpipe -m 0750 /var/lib/weatherpipe
# Podman's builder (buildah 1.28, Debian 12) reuses a cached `COPY --from` even when the stage it
# copies from has changed; this label, a digest of that stage's inputs (`make image` passes it),
# ties the copy to them.
ARG INPUTS=unknown
LABEL org.weatherpipe.build-inputs="${INPUTS}"
COPY --from=build /opt/weatherpipe /opt/weatherpipe
COPY container/healthcheck.py /usr/local/lib/weatherpipe-healthcheck.py
# The embedded defaults (SQLite file, the sensors' spool) live in the volume; in a container
# the API listens on every interface of its own network namespace (publishing decides the rest).
ENV PATH=/opt/weatherpipe/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    WEATHERPIPE_DATABASE_URL=sqlite:////var/lib/weatherpipe/weather.db \
    WEATHERPIPE_SPOOL_PATH=/var/lib/weatherpipe/sensors.spool \
    WEATHERPIPE_API_HOST=0.0.0.0
USER weatherpipe
WORKDIR /var/lib/weatherpipe
VOLUME ["/var/lib/weatherpipe"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/bin/python3", "-I", "/usr/local/lib/weatherpipe-healthcheck.py"]
ENTRYPOINT ["weatherpipe"]
CMD ["--help"]

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="weatherpipe" \
      org.opencontainers.image.description="A real-time IoT temperature pipeline: sensors, message bus, SQL storage, anomaly detection, web API." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
