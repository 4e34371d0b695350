# guest.sh - the V4L2 test cases, run by /init inside the vivid VM (busybox sh); verdicts on fd 3.
#
# Each case prints one "PASS what" or "FAIL what: why" line on fd 3 (the host relays them to
# tests/run.sh) and its details on stdout/stderr (the VM console, shown by the host on failure).
# The binaries are the build's own, in /capd: capd, capd.fcgi, ringcheck, v4l2tool.
# vivid is loaded with one capture node, /dev/video0.
#
# For now the drivers and the harness alone: capd's V4L2 source is being written.

pass() { echo "PASS $*" >&3; }
fail() { echo "FAIL $*" >&3; }

if out=$(v4l2tool caps /dev/video0 2>&1) && echo "$out" | grep -q 'driver=vivid'; then
    pass "vivid: /dev/video0 answers VIDIOC_QUERYCAP as a capture device: $out"
else
    fail "vivid: /dev/video0 is not a vivid capture device: $out"
fi

while read -r m; do
    grep -q "^$(echo "${m%.ko}" | tr - _) " /proc/modules && continue
    params=
    [ "$m" = v4l2loopback.ko ] && params="video_nr=10 exclusive_caps=1 max_buffers=8"
    # shellcheck disable=SC2086 # module parameters
    insmod "/lib/modules/$m" $params || fail "v4l2loopback: insmod $m failed"
done </etc/loopback.modules
if out=$(v4l2tool feed /dev/video10 --fps 50 --count 5 /fixtures/with-dht.jpg 2>&1); then
    pass "v4l2loopback (built from v4l2loopback-dkms): accepts 5 MJPEG frames: $(echo "$out" | tail -1)"
else
    fail "v4l2loopback: feeding MJPEG frames failed: $out"
fi
