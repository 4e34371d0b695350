#!/usr/bin/env bash
# test_systemd.sh - deploy/systemd/capd@.service: systemd accepts it, its command line runs, its sandbox stays.
#
# (a) `systemd-analyze verify` on a copy of the unit whose ExecStart names $BUILD/capd (verify
#     needs the binary to exist), and `systemd-analyze security --offline` on it. Neither needs
#     systemd as PID 1: verify loads the unit into a manager of its own in test mode, security
#     --offline reads the file. (This container's PID 1 is not systemd, and CI's may not be.)
# (b) The unit's ExecStart line, expanded as systemd would (%i = a test camera, $CAPD_ARGS = the
#     example of deploy/systemd/capd-default with the test pattern as source), run for real: as
#     root, like systemd, the test gives it what the unit asks for, as far as util-linux can:
#     another uid with SupplementaryGroups= (setpriv), no capabilities and no new privileges, an
#     empty network and IPC namespace (PrivateNetwork=, PrivateIPC=, unshare) and UMask=. The ring
#     must appear with mode 0640 owned by that uid and the --group, a reader of another uid that
#     is only in that group (the web server) must get live frames from it (ringcheck, and
#     capd.fcgi as a CGI), and SIGTERM must remove it. Under strace: every system call is in the
#     unit's SystemCallFilter=, every socket is AF_UNIX, no mapping is writable and executable.
# (c) The hardening keys, as the [Service] section's last word on each, so that an edit cannot
#     drop one silently; and the settings that would break capd (PrivateDevices=, PrivateUsers=,
#     ~@privileged, anything hiding /dev/shm) are absent.
# What only a real systemd checks (the device cgroup, seccomp, the mount namespace) was checked by
# hand under systemd 252: see deploy/systemd/README.md.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

UNIT=$ROOT/deploy/systemd/capd@.service
DEFAULTS=$ROOT/deploy/systemd/capd-default
CAM=sdtest
SHM=/dev/shm/$CAPD_SHM_PREFIX
# The uids the test gives capd (User=) and the web server; any unused numbers do.
CAPD_UID=54322
WEB_UID=54323

oneline() { tr '\n' ' ' <"$1" | cut -c1-300; }

# The [Service] section of the unit, without comments.
service_section() {
    awk '/^\[/ { s = ($0 == "[Service]") } s && !/^[#;]/ && NF' "$UNIT"
}

# Every value assigned to KEY in [Service], in order, one per line.
values_of() { service_section | sed -n "s/^$1=//p"; }

# The value that counts for a single-valued KEY: the last assignment.
last_value() { values_of "$1" | tail -1; }

[ -f "$UNIT" ] || {
    fail "no $UNIT"
    exit 1
}

# ---- (a) systemd-analyze verify and security ---------------------------------------------------
UNITDIR=$TMP/units
mkdir -p "$UNITDIR"
sed "s#^ExecStart=/usr/local/bin/capd #ExecStart=$BUILD/capd #" "$UNIT" >"$UNITDIR/capd@.service"
if ! grep -q "^ExecStart=$BUILD/capd " "$UNITDIR/capd@.service"; then
    fail "ExecStart does not start with /usr/local/bin/capd: $(grep ^ExecStart= "$UNIT")"
elif ! command -v systemd-analyze >/dev/null; then
    fail "systemd-analyze is not installed: it is in Debian's package 'systemd' (apt-get install systemd)"
else
    # --recursive-errors=no (systemd 250+): judge this unit, not the machine's other units.
    out=$(systemd-analyze verify --man=no --recursive-errors=no "$UNITDIR/capd@$CAM.service" 2>&1)
    rc=$?
    if grep -q "recursive-errors" <<<"$out"; then
        out=$(systemd-analyze verify --man=no "$UNITDIR/capd@$CAM.service" 2>&1)
        rc=$?
    fi
    # Unknown keys and bad values are only warnings (exit 0): any line naming the unit fails.
    mine=$(grep -F -e "capd@" <<<"$out")
    if [ "$rc" -eq 0 ] && [ -z "$mine" ]; then
        pass "systemd-analyze verify capd@$CAM.service: no error, no warning"
    else
        fail "systemd-analyze verify: exit $rc: $(tr '\n' ' ' <<<"${mine:-$out}" | cut -c1-400)"
    fi
    others=$(grep -vF -e "capd@" <<<"$out" | grep -v '^$')
    [ -z "$others" ] || echo "    (systemd-analyze verify, about other units: $(tr '\n' ' ' <<<"$others" | cut -c1-300))"

    # The exposure score, 0 (best) to 10, from the file alone (systemd 250+). --threshold is in
    # tenths: fail above 1.0 (it is 0.7; the rest are the choices the unit's comments explain).
    out=$(systemd-analyze security --offline=yes --threshold=10 --no-pager \
        "$UNITDIR/capd@$CAM.service" 2>&1)
    rc=$?
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \(.*\)/\1/p' <<<"$out")
    if grep -qiE "unrecognized option|unknown option" <<<"$out"; then
        echo "    (systemd-analyze security --offline needs systemd 250+: exposure not checked)"
    elif [ "$rc" -eq 0 ] && [ -n "$score" ]; then
        pass "systemd-analyze security --offline: exposure $score (at most 1.0)"
    else
        fail "systemd-analyze security --offline: exit $rc, exposure '$score': $(grep -E '✗' <<<"$out" |
            tr -s ' ' | tr '\n' ';' | cut -c1-400)"
    fi
fi

# ---- (b) the ExecStart line, run --------------------------------------------------------------
execstart=$(values_of ExecStart)
group=$(sed -n 's/.* --group \([^ ]*\).*/\1/p' <<<"$execstart")
args_line=$(sed -n 's/^CAPD_ARGS=//p' "$DEFAULTS" 2>/dev/null)
args_line=${args_line#\"}
args_line=${args_line%\"}
read -ra example_args <<<"$args_line"
# The example's flags with the test pattern as source, and the size it asks for.
args=()
size=640x480
for ((i = 0; i < ${#example_args[@]}; i++)); do
    args+=("${example_args[i]}")
    case ${example_args[i]} in
    --source) args+=(testpattern) && i=$((i + 1)) ;;
    --size) size=${example_args[i + 1]} ;;
    esac
done
# ExecStart= as systemd expands it: %i, and $CAPD_ARGS split into words.
words=()
parse_error=""
read -ra raw <<<"$execstart"
for w in "${raw[@]}"; do
    # shellcheck disable=SC2016 # '$CAPD_ARGS' is the unit's literal word
    case $w in
    '$CAPD_ARGS') words+=("${args[@]}") ;;
    *\$* | *\"* | *\'* | *\\*) parse_error="$parse_error $w" ;;
    *)
        w=${w//%i/$CAM}
        [[ $w == *%* ]] && parse_error="$parse_error $w"
        words+=("$w")
        ;;
    esac
done
supplementary=" $(values_of SupplementaryGroups | tr '\n' ' ') "
user=$(last_value User)

if [ "$(grep -c '^ExecStart=' "$UNIT")" -ne 1 ] || [ -n "$parse_error" ]; then
    fail "ExecStart: one plain line expected, this test cannot expand:${parse_error:- $execstart}"
elif [ "${words[0]}" != /usr/local/bin/capd ] || [[ " ${words[*]} " != *" --name $CAM "* ]]; then
    fail "ExecStart should run /usr/local/bin/capd --name %i: $execstart"
elif ! grep -q -- '--source ' <<<"$args_line"; then
    fail "$DEFAULTS: no CAPD_ARGS=\"--source ...\" example: '$args_line'"
elif [ -z "$group" ] || [[ $supplementary != *" $group "* ]]; then
    # capd may give its objects to a group only as a member (it has no CAP_CHOWN).
    fail "ExecStart's --group '$group' is not in SupplementaryGroups=$supplementary"
elif [ -z "$user" ] || [ "$user" = root ] || [ "$user" = 0 ]; then
    fail "User= must name an unprivileged user, not '$user'"
else
    words[0]=$BUILD/capd
    pass "ExecStart expands to: capd ${words[*]:1}"
    run=()
    expect_uid=$(id -u)
    expect_gid=""
    if [ "$(id -u)" -eq 0 ]; then
        gids=""
        missing=""
        for g in $supplementary; do
            gid=$(getent group "$g" | cut -d: -f3)
            [ -n "$gid" ] && gids="$gids${gids:+,}$gid" || missing="$missing $g"
        done
        [ -z "$missing" ] || fail "SupplementaryGroups: no such group on this machine:$missing"
        expect_uid=$CAPD_UID
        expect_gid=$(getent group "$group" | cut -d: -f3)
        web_gid=$expect_gid
        # Both the capd user and the web server may write sanitizer reports into TMP.
        chgrp "$web_gid" "$TMP" && chmod 0770 "$TMP"
        run=(unshare --net --ipc
            setpriv --reuid="$CAPD_UID" --regid="$CAPD_UID" --groups="$gids" --no-new-privs
            --bounding-set=-all --inh-caps=-all)
        as_web=(setpriv --reuid="$WEB_UID" --regid="$web_gid" --clear-groups)
        reader="a reader of another uid, only in group $group,"
    else
        # Without root: no other uid, and only a group the current user is in.
        echo "    (not root: runs as $(id -un), --group $(id -gn), with the network; no web server user)"
        for ((i = 0; i < ${#words[@]}; i++)); do
            [ "${words[i]}" = --group ] && words[i + 1]=$(id -gn)
        done
        group=$(id -gn)
        expect_gid=$(id -g)
        as_web=()
        reader="a reader (the same user)"
    fi
    # systemd starts services with a clean environment (plus Environment=; the test's prefix
    # stands in for CAPD_SHM_PREFIX=capd-, as /etc/default/capd-NAME could) and UMask=.
    clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CAPD_SHM_PREFIX="$CAPD_SHM_PREFIX"
        ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" LSAN_OPTIONS="$LSAN_OPTIONS")
    umask_value=$(last_value UMask)
    (
        umask "${umask_value:-0022}"
        exec "${run[@]}" "${clean_env[@]}" "${words[@]}"
    ) >"$TMP/capd-$CAM.log" 2>&1 </dev/null &
    pid=$!
    track "$pid"
    if ! wait_for 10 ring_exists "$CAM"; then
        fail "capd did not publish ${SHM}$CAM: $(oneline "$TMP/capd-$CAM.log")"
    else
        objects=$(stat -c '%a %u %g' "${SHM}$CAM" "${SHM}$CAM.viewers" | tr '\n' ' ')
        want="640 $expect_uid $expect_gid 660 $expect_uid $expect_gid "
        if [ "$objects" = "$want" ]; then
            pass "ring 0640 and viewer object 0660, owned by capd's uid $expect_uid and group ${group} ($expect_gid), umask ${umask_value:-none}"
        else
            fail "ring and viewer object: mode uid gid '$objects', expected '$want'"
        fi
        # The web server's view: another uid, only in the group.
        out=$("${as_web[@]}" "$BUILD/tests/ringcheck" --name "$CAM" --frames 10 --viewer \
            --expect-size "$size" --timeout 10 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ] && grep -q ' bad=0 torn=0 ' <<<"$out"; then
            pass "$reader gets live ${size} frames: $out"
        else
            fail "ringcheck as the web server: exit $rc: $out"
        fi
        "${as_web[@]}" env REQUEST_METHOD=GET QUERY_STRING="action=snapshot&cam=$CAM" \
            GATEWAY_INTERFACE=CGI/1.1 timeout -k 2 10 "$BUILD/capd.fcgi" \
            </dev/null >"$TMP/snap.cgi" 2>"$TMP/snap.err"
        sed '1,/^\r$/d' "$TMP/snap.cgi" >"$TMP/snap.jpg"
        if head -1 "$TMP/snap.cgi" | grep -q '^Status: 200' &&
            [ "$(head -c 2 "$TMP/snap.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ]; then
            pass "capd.fcgi as the web server: snapshot of $CAM, $(wc -c <"$TMP/snap.jpg") bytes"
        else
            fail "capd.fcgi snapshot as the web server: $(head -1 "$TMP/snap.cgi") $(oneline "$TMP/snap.err")"
        fi
        if [ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = "$expect_uid" ] &&
            ! grep -qiE 'warning|error' "$TMP/capd-$CAM.log"; then
            pass "capd runs as uid $expect_uid, no warning: $(oneline "$TMP/capd-$CAM.log")"
        else
            fail "capd's uid or log: $(grep -E '^(Uid|Groups):' "/proc/$pid/status" 2>/dev/null |
                tr '\n' ' ') $(oneline "$TMP/capd-$CAM.log")"
        fi
        # systemctl stop: SIGTERM; exit 0 (else Restart=on-failure would start it again).
        kill -TERM "$pid"
        wait "$pid"
        rc=$?
        if [ "$rc" -eq 0 ] && [ ! -e "${SHM}$CAM" ] && [ ! -e "${SHM}$CAM.viewers" ]; then
            pass "SIGTERM (systemctl stop): exit 0, ring and viewer object removed"
        else
            fail "SIGTERM: exit $rc, left: $(echo "${SHM}$CAM"*)"
        fi
    fi

    # The same command line under strace, for SystemCallFilter=, RestrictAddressFamilies= and
    # MemoryDenyWriteExecute=. (LSan cannot ptrace a traced process: no leak check here.)
    if ! command -v strace >/dev/null; then
        echo "    (strace is not installed: system calls, sockets and W+X mappings not checked)"
    else
        for ((i = 0; i < ${#words[@]}; i++)); do
            [ "${words[i]}" = --name ] && words[i + 1]=${CAM}trace
        done
        trace_env=("${clean_env[@]}" ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0")
        (
            umask "${umask_value:-0022}"
            exec "${run[@]}" "${trace_env[@]}" strace -f -qq -o "$TMP/strace.txt" "${words[@]}"
        ) >"$TMP/capd-trace.log" 2>&1 </dev/null &
        spid=$!
        track "$spid"
        if wait_for 20 ring_exists "${CAM}trace"; then
            "${as_web[@]}" "$BUILD/tests/ringcheck" --name "${CAM}trace" --frames 5 --viewer \
                --timeout 20 >/dev/null 2>&1
            kill -TERM "$(pgrep -P "$spid" | head -1)" 2>/dev/null
        fi
        wait "$spid"
        rc=$?
        # The calls capd made, and the unit's allow list minus its deny list.
        expand_filter() {
            local item
            for item in $(systemd-analyze syscall-filter "$1" | sed -e 's/#.*//' | tail -n +2); do
                case $item in
                @*) expand_filter "$item" ;;
                *) echo "$item" ;;
                esac
            done
        }
        sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$TMP/strace.txt" | sort -u >"$TMP/calls"
        : >"$TMP/allowed"
        : >"$TMP/denied"
        for f in $(values_of SystemCallFilter); do
            case $f in
            ~*) expand_filter "${f#\~}" >>"$TMP/denied" ;;
            *) expand_filter "$f" >>"$TMP/allowed" ;;
            esac
        done
        sort -u -o "$TMP/allowed" "$TMP/allowed"
        sort -u -o "$TMP/denied" "$TMP/denied"
        outside=$(comm -23 "$TMP/calls" "$TMP/allowed" | tr '\n' ' ')
        denied=$(comm -12 "$TMP/calls" "$TMP/denied" | tr '\n' ' ')
        ncalls=$(wc -l <"$TMP/calls")
        if [ "$rc" -ne 0 ] || [ "$ncalls" -lt 10 ]; then
            fail "capd under strace: exit $rc, $ncalls distinct calls: $(oneline "$TMP/capd-trace.log")"
        elif ! [ -s "$TMP/allowed" ]; then
            fail "SystemCallFilter=: no allow list in the unit, or systemd-analyze syscall-filter failed"
        elif [ -n "$outside$denied" ]; then
            fail "capd makes calls SystemCallFilter= refuses: ${outside}${denied}"
        else
            pass "all $ncalls system calls capd made are in SystemCallFilter=$(values_of SystemCallFilter | tr '\n' ' ')"
        fi
        families=$(sed -nE 's/^[0-9]+ +socket\(([A-Z0-9_]+),.*/\1/p' "$TMP/strace.txt" | sort -u |
            tr '\n' ' ')
        if [ -z "$(tr -d ' ' <<<"${families//AF_UNIX/}")" ]; then
            pass "sockets: ${families:-none} (RestrictAddressFamilies=$(last_value RestrictAddressFamilies))"
        else
            fail "capd opens sockets of families $families; the unit allows $(last_value RestrictAddressFamilies)"
        fi
        # MemoryDenyWriteExecute= refuses W+X mappings and any mprotect() to executable.
        wx=$(grep -E '^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(' "$TMP/strace.txt" |
            grep -E 'PROT_WRITE\|PROT_EXEC|^[0-9]+ +(pkey_)?mprotect\(.*PROT_EXEC' | head -2)
        if [ -z "$wx" ]; then
            pass "no writable+executable mapping, no mprotect to executable (MemoryDenyWriteExecute=)"
        else
            fail "capd maps code writable or makes memory executable: $wx"
        fi
    fi
fi

# ---- (c) the hardening keys -----------------------------------------------------------------------
# KEY=VALUE: the last assignment of KEY in [Service] must be VALUE.
required=(
    Type=exec Restart=on-failure RestartPreventExitStatus=2
    EnvironmentFile=-/etc/default/capd-%i
    ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes
    PrivateNetwork=yes PrivateIPC=yes PrivateMounts=yes IPAddressDeny=any
    RestrictAddressFamilies=AF_UNIX DevicePolicy=closed CapabilityBoundingSet=
    LockPersonality=yes MemoryDenyWriteExecute=yes RestrictRealtime=yes RestrictSUIDSGID=yes
    RestrictNamespaces=yes SystemCallArchitectures=native SystemCallErrorNumber=EPERM
    ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes
    ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes ProtectProc=invisible
    UMask=0077
)
missing=""
for kv in "${required[@]}"; do
    key=${kv%%=*}
    [ "$(values_of "$key" | wc -l)" -ge 1 ] && [ "$(last_value "$key")" = "${kv#*=}" ] ||
        missing="$missing $kv(has: $(values_of "$key" | paste -sd"|"))"
done
# List-valued keys: these entries, and no empty assignment resetting the list.
for kv in "DeviceAllow=char-video4linux rw" "DeviceAllow=char-81 rw" \
    "SystemCallFilter=@system-service" "SystemCallFilter=~@resources"; do
    values_of "${kv%%=*}" | grep -qxF -- "${kv#*=}" || missing="$missing '$kv'"
done
for key in DeviceAllow SystemCallFilter SupplementaryGroups CapabilityBoundingSet; do
    [ "$key" != CapabilityBoundingSet ] && values_of "$key" | grep -qx '' &&
        missing="$missing $key=(an empty reset)"
    [ "$key" = CapabilityBoundingSet ] && [ "$(values_of "$key" | wc -l)" -ne 1 ] &&
        missing="$missing CapabilityBoundingSet=(exactly one, empty)"
done
[[ " $(values_of SupplementaryGroups | tr '\n' ' ') " == *" video "* ]] ||
    missing="$missing SupplementaryGroups=video"
[ -n "$(last_value RestartSec)" ] || missing="$missing RestartSec="
if [ -z "$missing" ]; then
    pass "all ${#required[@]} hardening and restart settings present, plus DeviceAllow=, SystemCallFilter=, SupplementaryGroups=video, RestartSec="
else
    fail "capd@.service lacks:$missing"
fi
# Settings that would break capd: a private /dev (no camera, a /dev/shm of its own), a user
# namespace (the fchown to --group fails), ~@privileged (contains fchown), /dev/shm hidden or
# read-only, DynamicUser= (implies RemoveIPC=, which deletes kept rings).
bad=$(service_section | grep -E '^(PrivateDevices|PrivateUsers|DynamicUser|RemoveIPC)=(yes|true|on|1)$|^SystemCallFilter=~.*@privileged|^(ReadOnlyPaths|InaccessiblePaths|TemporaryFileSystem|BindReadOnlyPaths)=.*/dev(/shm)?( |$)')
if [ -z "$bad" ]; then
    pass "no PrivateDevices=, PrivateUsers=, DynamicUser=, RemoveIPC=, ~@privileged, nothing hiding /dev/shm"
else
    fail "capd@.service has settings that break capd: $(tr '\n' ' ' <<<"$bad")"
fi
