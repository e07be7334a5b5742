#!/usr/bin/env bash
# ImageMagick 6 convert (OpenMP inside: MAGICK_THREAD_LIMIT=4): blur, resize
# and rotate a generated 1200x1200 image; the pixel signature is compared.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=media packages=(imagemagick) commands=(convert identify)
what='ImageMagick convert -blur -resize -rotate, OpenMP x4'
prepare() { convert -size 1200x1200 plasma:fractal -seed 5 in.png 2>/dev/null || convert -size 1200x1200 gradient:red-blue in.png; }
workload() {
  MAGICK_THREAD_LIMIT=4 mx_exec convert ../in.png -blur 0x6 -resize 150% -rotate 17 -sharpen 0x2 out.miff || return 1
  identify -format '%w %h %#\n' out.miff
}
mx_main
