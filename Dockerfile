# classify-objects in a container, for job-array engines (see docs/scale-out.md).
#   docker build -t classify-objects .
#   docker run --rm -v $PWD:/data classify-objects -r /data/image.tif -m /data/model.dlpk -f /data/objects.gpkg -o /data/out.gpkg
FROM rust:1.92-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgdal-dev gdal-bin pkg-config python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# setup.sh finds GDAL installed and fetches libonnxruntime.so from the PyPI wheel.
RUN scripts/setup.sh && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgdal32 gdal-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The ONNX Runtime library sits next to the executable, where the program looks for it.
COPY --from=build /src/target/release/classify-objects /usr/local/bin/classify-objects
COPY --from=build /src/.onnxruntime/lib/libonnxruntime.so.1.32.0 /usr/local/bin/libonnxruntime.so
ENTRYPOINT ["classify-objects"]
