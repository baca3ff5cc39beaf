# syntax=docker/dockerfile:1
# Builds every Turnout binary (ingest, projector, migrate, bench, demo) into one small
# static runtime image that runs as a non-root user. docker-compose.yml picks the binary
# per service with `entrypoint`; the default is ingest.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: the binaries are fully static, so the runtime image needs no libc.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/...

# distroless/static: CA certificates, tzdata and a nonroot user (uid 65532), nothing else
# (no shell, no package manager).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/ingest"]
