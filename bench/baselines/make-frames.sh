#!/usr/bin/env bash
# make-frames.sh - generates the benchmark's JPEG folders (720p ~90 KB, 1080p ~200 KB) with ffmpeg.
#
#   bench/baselines/make-frames.sh OUTDIR [COUNT]
#
# Writes OUTDIR/720p/frame_001.jpg ... and OUTDIR/1080p/frame_001.jpg ..., COUNT frames
# each (default 30, one second at 30 fps), and prints one line per folder:
#   720p: 30 frames, mean 87436 bytes, min 85792, max 88716, OUTDIR/720p
#
# The frames are ffmpeg's testsrc2 pattern (moving shapes, a counter) with seeded temporal
# noise, which stands in for a camera sensor's noise: without it the pattern compresses to
# far smaller JPEGs than a real camera gives. The noise strength and quantiser were chosen
# for the target sizes with Debian 12's ffmpeg 5.1; the seed makes every run byte-identical
# on the same ffmpeg. A folder that is already complete (same parameters) is kept as it is,
# so repeated benchmark runs do not regenerate it.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTDIR [COUNT]" >&2
    exit 2
fi
outdir=$1
count=${2:-30}
case $count in '' | *[!0-9]* | 0)
    echo "$0: COUNT must be a positive integer, not '$count'" >&2
    exit 2
    ;;
esac
command -v ffmpeg >/dev/null || {
    echo "$0: ffmpeg is missing (apt-get install ffmpeg)" >&2
    exit 1
}

# make_folder NAME SIZE NOISE QSCALE
make_folder() {
    local name=$1 size=$2 noise=$3 qscale=$4 dir=$outdir/$1 stamp sizes
    stamp="testsrc2 size=$size noise=$noise seed=1 q=$qscale count=$count"
    if [ "$(cat "$dir/.params" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        ffmpeg -nostdin -loglevel error -f lavfi -i "testsrc2=size=$size:rate=30" \
            -vf "noise=alls=$noise:allf=t:all_seed=1" -frames:v "$count" -q:v "$qscale" \
            "$dir/frame_%03d.jpg"
        echo "$stamp" >"$dir/.params"
    fi
    sizes=$(stat -c %s "$dir"/frame_*.jpg | sort -n)
    awk -v name="$name" -v dir="$dir" '{ sum += $1; v[NR] = $1 } END {
        printf "%s: %d frames, mean %.0f bytes, min %d, max %d, %s\n",
            name, NR, sum / NR, v[1], v[NR], dir }' <<<"$sizes"
}

make_folder 720p 1280x720 10 6
make_folder 1080p 1920x1080 7 4
