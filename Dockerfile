# claimcheck's container image: a static binary on distroless, run as non-root.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t claimcheck:dev .
#
# It serves /etc/claimcheck/config.yaml (mount your config and policy there;
# envoy/kubernetes/ does it with a ConfigMap). No Docker runs in this
# project's CI: cmd/claimcheck/dockerfile_test.go runs the go build line below
# as written, over the files the COPY lines take, and checks that the binary is
# static and reports VERSION.

# Keep in step with go.mod's go line (the test checks it).
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY extauthz/ extauthz/
COPY policy/ policy/
# The demo's policy, embedded in the binary for `claimcheck demo`.
COPY examples/demo/ examples/demo/
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/claimcheck ./cmd/claimcheck

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/claimcheck /usr/local/bin/claimcheck
USER nonroot:nonroot
# listen.grpc (Envoy ext_authz), listen.http (forward-auth), listen.admin
# (/healthz, /readyz). Inside a container they must listen on 0.0.0.0, not
# the 127.0.0.1 defaults of the examples: see examples/container/config.yaml.
EXPOSE 9191 9192 9193
ENTRYPOINT ["claimcheck"]
CMD ["serve", "--config", "/etc/claimcheck/config.yaml"]
