# The enclave image: the model server, its model, the enclave-side relay and the entrypoint.
# An enclave has no network, so everything it needs is in the image: dependencies are installed
# and the model is generated here, at build time, and nothing is fetched at start.
#
# Build from the repository root after "npm run build" (the image copies dist/, not sources):
#   docker build -f docker/enclave.Dockerfile -t mpg-enclave:latest .
#   bin/mpg enclave build --docker-uri mpg-enclave:latest --eif mpg-enclave.eif --measurements measurements.json
# The EIF's PCR0/1/2 change with every byte of this image: pin the ones from that build.
ARG BASE_IMAGE=node:24-bookworm-slim
FROM ${BASE_IMAGE}

# Node's net module cannot listen on AF_VSOCK, so socat bridges the enclave's vsock port to the
# Unix socket the entrypoint's relay listens on (VSOCK-LISTEN needs socat >= 1.7.4; bookworm has
# 1.7.4.4). iproute2 gives "ip link set lo up": an enclave boots with loopback down.
RUN apt-get update \
 && apt-get install -y --no-install-recommends socat iproute2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip

# Dependencies first, so a code change does not reinstall them. onnxruntime-node and sharp ship
# their native binaries inside their npm packages (sharp as @img/sharp-linux-* optional
# dependencies), so no install script has to download anything.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts \
 && npm cache clean --force

COPY bin/ bin/
COPY dist/ dist/
COPY model/imagenet-labels.json model/imagenet-labels.json
COPY docker/enclave-entrypoint.sh /usr/local/bin/enclave-entrypoint

# The default model (seeded ResNet18, no download) is part of the image, hence of PCR2.
RUN node dist/cli/index.js model generate \
 && test -s models/resnet18.onnx \
 && chmod 0755 /usr/local/bin/enclave-entrypoint bin/mpg

# The parent relay connects to this vsock port on the enclave's CID.
ENV MPG_VSOCK_PORT=5005
ENTRYPOINT ["/usr/local/bin/enclave-entrypoint"]
