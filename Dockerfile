# lb and its demo backend in one image (docs/containers.md):
#   docker build -t lb .
#   docker run -d --name lb -p 8080:8080 -v ./conf:/etc/lb:ro lb   # conf/: lb.toml, servers.txt
#   docker stop -t 40 lb       # lb drains for up to drain_timeout (30s) after SIGTERM
# docker-compose.yml runs it in front of three demo backends.

# Build stage: the official Rust image on the same Debian release as the runtime stage,
# so the binaries need no newer glibc than the runtime has.
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, against stand-in sources, so that a change to lb's own code
# rebuilds lb and not its dependencies (aws-lc alone takes minutes). The benches are
# copied because Cargo.toml names them; --bins does not build them.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir -p src/bin/backend \
 && echo 'fn main() {}' > src/main.rs \
 && cp src/main.rs src/bin/backend/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bins \
 && rm -rf src
COPY src src
# The stand-ins were written after the real files' dates: touch, or cargo keeps them.
RUN touch src/main.rs src/lib.rs src/bin/backend/main.rs \
 && cargo build --release --locked --bins

# Runtime stage: glibc as built against, and the CA roots that https:// backends are
# verified against (lb reads the system's; no backend_ca needed).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid, so that a token file or a host directory can be made readable by lb alone.
RUN groupadd --system --gid 10001 lb \
 && useradd --system --uid 10001 --gid lb --home-dir /var/lib/lb --no-create-home \
        --shell /usr/sbin/nologin lb \
 && mkdir -p /var/lib/lb /etc/lb \
 && chown lb:lb /var/lib/lb
COPY --from=build /src/target/release/lb /usr/bin/lb
COPY --from=build /src/target/release/backend /usr/bin/lb-backend
COPY dist/docker/lb.toml dist/docker/servers.txt /etc/lb/
USER lb
# The journal of POST copies owed (journal = "/var/lib/lb/journal"). A new named volume
# starts as this directory is, owned by lb.
VOLUME /var/lib/lb
# Traffic, and the admin listener (/metrics, /stats, /healthz).
EXPOSE 8080 9901
# lb drains on SIGTERM and exits 0 once drained; docker's default is SIGTERM, said here
# because the drain depends on it.
STOPSIGNAL SIGTERM
# The admin listener's /healthz, asked with bash's /dev/tcp: the slim image has bash and
# no curl, which would bring libcurl and some ten libraries it links (Kerberos, LDAP, SSH,
# RTMP ...) into the image and its security updates, for one request every 10 s.
# A config whose admin port is not 9901 needs its own check (compose: healthcheck).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9901 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == 'HTTP/1.1 200 '* ]]"]
ENTRYPOINT ["/usr/bin/lb"]
CMD ["-c", "/etc/lb/lb.toml"]
