#!/usr/bin/env bash
# ffmpeg -threads 4: libx264 encode (frame + slice threads) of 2 s of
# testsrc at 640x480, per-frame MD5s compared; then a decode with 4 threads.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=media packages=(ffmpeg) commands=(ffmpeg)
what='ffmpeg -threads 4: libx264 encode + decode'
workload() {
  mx_exec ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=duration=2:size=640x480:rate=25 \
    -threads 4 -c:v libx264 -preset veryfast -f framemd5 - || return 1
  mx_exec ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=duration=2:size=640x480:rate=25 \
    -threads 4 -c:v libx264 -preset veryfast out.mkv || return 1
  mx_exec ffmpeg -hide_banner -loglevel error -threads 4 -i out.mkv -f framemd5 - | tail -n 5
}
mx_main
