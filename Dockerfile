# The kubeup tools in one image, for bringing clusters up from anywhere Docker runs:
#
#   docker build -t kubeup .
#   docker run --rm -v "$PWD:/work" -e AWS_PROFILE -e AWS_REGION -v ~/.aws:/root/.aws:ro --user "$(id -u):$(id -g)" \
#     kubeup up --num-nodes=3 --provider=aws
#
# /work is the working directory: the cluster config is read from it and the secrets bundle is
# written under it (.kubeup/<cluster>), so it outlives the container. The image holds kubeup,
# ignition-gen and the Packer plugin (packer-plugin-kubeup): static binaries on an empty base,
# with the CA certificates the cloud SDKs need and a /tmp.
#
# `make test` builds the same image without a Docker engine (hack/cliimage, with
# go-containerregistry): it reads this file's `go build` lines, ENV, WORKDIR and ENTRYPOINT, so
# keep them in this shape.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -o /rootfs/usr/local/bin/kubeup ./kubeup
RUN go build -trimpath -o /rootfs/usr/local/bin/ignition-gen ./ignition-gen
RUN go build -trimpath -o /rootfs/usr/local/bin/packer-plugin-kubeup ./packer-plugin
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/work /rootfs/root && chmod 1777 /rootfs/tmp && \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin
ENV HOME=/root
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/kubeup"]
