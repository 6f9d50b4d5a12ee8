#!/usr/bin/env bash
# Installs every Debian 12 package lastframe needs to build, run and test
# (and, with --bench, to run the benchmarks: OpenCV for the recipe's method, wrk).
# Idempotent: packages already present are left alone; apt-get update runs once
# and only when something is missing.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang-format
  # libraries
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libturbojpeg0-dev libboost-dev libssl-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev libfmt-dev libcurl4-openssl-dev libtoml11-dev
  # tests and benchmarks: real S3 clients (awscli v2, boto3) and a real producer
  libgtest-dev libgmock-dev libbenchmark-dev ffmpeg curl awscli python3-boto3
  # a real RTSP camera for the pull tests: GStreamer's RTSP server, driven from Python
  python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
)

# Node.js runs the independent S3 server of the tests (tests/s3rver); a
# machine that has node already (e.g. from NodeSource) keeps its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

if [ "${1:-}" = "--bench" ]; then
  packages+=(python3-opencv wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
