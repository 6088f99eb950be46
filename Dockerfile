# Builds the callctl daemon; docker-compose.yml runs it. Two stages: the Go
# toolchain builds a static binary, a slim Debian image runs it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/callctl ./cmd/callctl

FROM debian:bookworm-slim
COPY --from=build /out/callctl /usr/local/bin/callctl
COPY configs/callctl.yaml /etc/callctl/callctl.yaml
# SIP 5070 and RTP 20000-29999 by default: no privileged ports needed.
USER nobody
ENTRYPOINT ["callctl"]
CMD ["serve", "--config", "/etc/callctl/callctl.yaml"]
