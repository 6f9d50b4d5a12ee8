#!/usr/bin/env bash
# Installs every Debian 12 package lastframe needs to build, run, test and
# benchmark: whatever a test or bench/run.py imports or spawns is listed here
# (.ci/run checks that with scripts/check-test-deps.py). Idempotent: packages
# already present are left alone; apt-get update runs once and only when
# something is missing. (--bench is accepted for older callers; the test path
# already has what the benchmarks need.)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang-format
  # the fuzz targets (scripts/fuzz.sh): clang and its libFuzzer and sanitizer runtimes
  clang libclang-rt-14-dev
  # libraries
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libturbojpeg0-dev libboost-dev libssl-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev libfmt-dev libcurl4-openssl-dev libtoml11-dev zlib1g-dev
  libpugixml-dev libwebp-dev libavif-dev libwebm-dev
  # tests: real S3 and Kinesis Video clients (awscli v2, boto3), a real producer
  # (ffmpeg, ffprobe), OpenCV (the boto3 Kinesis Video check decodes GetClip's MP4
  # with it, and the benchmarks run the recipe's method with it), prlimit
  libgtest-dev libgmock-dev libbenchmark-dev ffmpeg curl awscli python3-boto3
  python3-opencv python3-numpy util-linux
  # a real RTSP camera for the pull tests: GStreamer's RTSP server, driven from Python
  python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  # the dashboard's browser test (tests/ui/ui_check.py): headless Chromium driven by selenium
  chromium chromium-driver python3-selenium
  # benchmarks (bench/run.py, also run in a quick mode by .ci/run): HTTP load
  wrk
  # promtool: checks /metrics output and deploy/prometheus rules
  prometheus
  # HAProxy in front of several nodes: deploy/haproxy.cfg (checked by
  # scripts/check-deploy.sh) and deploy/local-cluster.sh
  haproxy
  # the Debian package (make deb, tests/package): dpkg-shlibdeps computes its
  # Depends for CPack; systemd-analyze verifies its unit
  dpkg-dev systemd
)

# Node.js runs the independent S3 server of the tests (tests/s3rver) and the AWS
# SDK for JavaScript checks (tests/sdk_js); Debian's Node 18 is enough
# (tests/s3rver/server.js fills in what it lacks; tests/sdk_js pins releases that
# admit it, tests/sdk_js/check_engines.mjs checks that). A machine
# that has node and npm already (e.g. NodeSource's, whose nodejs conflicts with
# Debian's npm package) keeps its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
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
