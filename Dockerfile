# callctl's container image, and the SIPp phones of the docker-compose.yml lab.
#
#   docker build -t callctl .                 # the daemon (the last stage)
#   docker build --target sipp -t callctl-sipp .   # SIPp + the project's scenarios
#
# Stage 1 builds a static binary (CGO_ENABLED=0: the SQLite driver of the
# audit trail is pure Go), stage 2 runs it as a non-root user.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/callctl ./cmd/callctl \
	&& /out/callctl version

# SIPp with test/sipp's scenarios and the tone they stream, for the lab's
# phones (docker-compose.yml). Debian's sip-tester is SIPp 3.6 with RTP
# streaming.
FROM debian:bookworm-slim AS sipp
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester sox \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /sipp
COPY test/sipp/*.xml ./
# 2 s of 440 Hz as raw 8 kHz u-law, looped by <exec rtp_stream="tone.raw,-1,0"/>.
RUN sox -n -r 8000 -c 1 -e u-law -t raw tone.raw synth 2 sine 440
ENTRYPOINT ["sipp"]

FROM debian:bookworm-slim
# curl for the health check only; ca-certificates for HTTPS to the API.
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 callctl \
	&& useradd --system --uid 10001 --gid callctl --home-dir /var/lib/callctl --shell /usr/sbin/nologin callctl \
	&& install -d -o callctl -g callctl -m 0750 /var/lib/callctl
COPY --from=build /out/callctl /usr/local/bin/callctl
COPY configs/callctl.yaml /etc/callctl/callctl.yaml

# The audit trail (audit.path, default callctl.db in the working
# directory) is the only file callctl writes: keep it on a volume so it
# survives the container.
WORKDIR /var/lib/callctl
VOLUME ["/var/lib/callctl"]

# SIP 5070/udp+tcp (sip.listen), RTP 20000-29999/udp (media.rtp_ports), the
# API 8080/tcp (api.listen). All unprivileged: no capability needed. In a
# container, set sip.listen and api.listen to 0.0.0.0 and sip.advertise and
# media.advertise to the address peers reach (docker-compose.yml shows how).
EXPOSE 5070/udp 5070/tcp 8080/tcp

USER callctl:callctl

# /healthz needs no token. HEALTH_URL follows api.listen (and https:// when
# api.tls_cert is set; -k accepts a self-signed certificate).
ENV HEALTH_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
	CMD curl -fsSk --max-time 2 "$HEALTH_URL" >/dev/null || exit 1

# SIGTERM drains live calls for up to shutdown.drain_timeout: give the
# container at least that to stop (docker stop -t, stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["callctl"]
CMD ["serve", "--config", "/etc/callctl/callctl.yaml"]
