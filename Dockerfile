# syntax=docker/dockerfile:1
# A static, non-root image with sessiongate and sgctl. The binaries are built
# by `make build` — the same flags as every other build (CGO_ENABLED=0,
# -trimpath, -ldflags "-s -w"), which internal/dev's tests run and check for a
# static binary. (These development machines cannot build images.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build BIN=/out

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot; no
# shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sessiongate /out/sgctl /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sessiongate"]
CMD ["serve"]
