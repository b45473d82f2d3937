# The enclave image: the model server, its model, the enclave-side relay and the entrypoint.
# An enclave has no network, so everything it needs is in the image: dependencies are installed,
# the TypeScript is compiled and the model is generated here, at build time; nothing is fetched
# at start.
#
# Build from the repository root:
#   docker build -f docker/enclave.Dockerfile -t mpg-enclave:latest .
#   bin/mpg enclave build --docker-uri mpg-enclave:latest --eif mpg-enclave.eif --measurements measurements.json
# The EIF's PCR0/1/2 change with every byte of this image: pin the ones from that build.
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- build: compile, then keep only the production dependencies ----------------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /src
# A C compiler for the one native piece: the helper that asks /dev/nsm for attestation documents.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
# onnxruntime-node's install script would download CUDA libraries; the CPU build ships in the
# package, and sharp's native binary comes as an @img/sharp-linux-* dependency: no script needed.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json \
 && rm -rf dist/test dist/bench dist/.tsbuildinfo \
 && find dist -name '*.map' -delete \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && sh docker/prune-native.sh \
 && node dist/cli/index.js model generate \
 && test -s models/resnet18.onnx \
 && cc -O2 -Wall -Wextra -Werror -o nsm-request enclave/nsm/nsm-request.c

# ---- the enclave ----------------------------------------------------------------------------
FROM ${BASE_IMAGE}

# Node's net module cannot listen on AF_VSOCK, so socat bridges the enclave's vsock port to the
# Unix socket the entrypoint's relay listens on (VSOCK-LISTEN needs socat >= 1.7.4; bookworm has
# 1.7.4.4). iproute2 gives "ip link set lo up": an enclave boots with loopback down.
RUN apt-get update \
 && apt-get install -y --no-install-recommends socat iproute2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/bin/ bin/
COPY --from=build /src/dist/ dist/
COPY --from=build /src/model/imagenet-labels.json model/imagenet-labels.json
# The default model (seeded ResNet18, no download) is part of the image, hence of PCR2.
COPY --from=build /src/models/resnet18.onnx models/resnet18.onnx
COPY --from=build /src/nsm-request /usr/local/bin/nsm-request
COPY docker/enclave-entrypoint.sh /usr/local/bin/enclave-entrypoint
RUN chmod 0755 /usr/local/bin/enclave-entrypoint bin/mpg

# The parent relay connects to this vsock port on the enclave's CID.
ENV MPG_VSOCK_PORT=5005
ENTRYPOINT ["/usr/local/bin/enclave-entrypoint"]
