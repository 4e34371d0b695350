#!/usr/bin/python3
"""report.py - turns loadclient's JSON results into bench/results.md (used by bench/run.sh).

  report.py tag SYSTEM RES FPS N  < result.json   one tagged JSON line for raw.jsonl
  report.py line                  < result.json   a one-line summary for the console
  report.py knee RAW SYSTEM N                     1 if that run held its viewers, else 0
  report.py report RAW RING FRAMES [quick] [--idle DIR] [--profile DIR]
                                                  the Markdown report on stdout; DIRs are the
                                                  raw output of bench/idle.sh, bench/profile.sh
  report.py idle DIR                              the idle section alone
  report.py profile DIR                           the profile section alone

If bench/analysis.md exists (written by hand after a full run), the report ends with it under
"## Analysis".
"""
import json
import os
import platform
import re
import sys
import time

NAMES = {
    "capd": "(1) capd: capd + capd.fcgi (fan-out) + lighttpd",
    "capd-threads": "(1b) capd, responder thread per viewer",
    "capd-apache": "(2) capd behind Apache (mod_proxy_fcgi)",
    "naive": "(3) naive libfcgi responder + lighttpd",
    "direct": "(4) direct epoll server (the limit)",
    "flask": "(5) the seed's design (Flask)",
}
# Which processes are the web server, the responder and capd, by command name.
ROLE = {"lighttpd": "web", "apache2": "web", "capd.fcgi": "responder", "naive_fcgi": "responder",
        "capd": "capd"}


def held(r):
    """A run holds its viewers: 95 % at full rate and latency p99 under 100 ms."""
    return r["full_rate"] >= 0.95 * r["viewers"] and (r["lat_p99_ms"] or 1e9) < 100


def cpu_by_role(r):
    roles = {"web": 0.0, "responder": 0.0, "capd": 0.0, "other": 0.0}
    for p in r.get("cpu", []):
        roles[ROLE.get(p.get("comm"), "other")] += p.get("us_per_frame") or 0.0
    return roles


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def find(rows, system, res, n, fps=30.0):
    found = [r for r in rows if r["system"] == system and r["res"] == res and r["n"] == n
             and r["fps"] == fps]
    return found[-1] if found else None


def report(raw, ring, frames, quick, idle=None, profile=None):
    rows = load(raw)
    idle_meta = idle_data(idle) if idle else None
    out = []
    w = out.append
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    w("# Benchmark results\n")
    w("Made by `make bench`%s on %s: %d cores (%s), Linux %s, %s UTC. Every system serves the "
      "same JPEG folder at the stated rate; each run starts its system afresh, connects the "
      "viewers with `bench/loadclient`, waits out a warm-up and measures a window. CPU is "
      "`utime+stime` of every server process per frame delivered to all viewers. This machine "
      "is shared and noisy: compare rows of one run, not runs of different days.\n"
      % (" with BENCH_QUICK=1" if quick else "", platform.node() or "this machine",
         os.cpu_count(), cpu, platform.release(), time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
    w("Frames:\n\n```\n%s```\n" % open(frames).read())
    for res in sorted({r["res"] for r in rows}, key=lambda x: int(x.rstrip("p"))):
        w("## %s at 30 fps\n" % res)
        w("| system | viewers | full rate | fps min / median | latency p50 / p99 ms | "
          "CPU us/frame: web server + responder + capd | total | x naive | x direct |")
        w("|---|---|---|---|---|---|---|---|---|")
        for n in sorted({r["n"] for r in rows if r["res"] == res and r["fps"] == 30.0}):
            naive = find(rows, "naive", res, n)
            direct = find(rows, "direct", res, n)
            for system in NAMES:
                r = find(rows, system, res, n)
                if not r:
                    continue
                roles = cpu_by_role(r)
                total = r["cpu_total_us_per_frame"]
                xn = total / naive["cpu_total_us_per_frame"] if naive and total and naive["cpu_total_us_per_frame"] else None
                xd = total / direct["cpu_total_us_per_frame"] if direct and total and direct["cpu_total_us_per_frame"] else None
                split = "%s + %s + %s" % (fmt(roles["web"]), fmt(roles["responder"]), fmt(roles["capd"])) \
                    if system not in ("direct", "flask") else "(one process)"
                w("| %s | %d | %d/%d | %s / %s | %s / %s | %s | %s | %s | %s |" % (
                    NAMES[system], n, r["full_rate"], r["viewers"], fmt(r["fps_min"], "%.1f"),
                    fmt(r["fps_median"], "%.1f"), fmt(r["lat_p50_ms"], "%.2f"),
                    fmt(r["lat_p99_ms"], "%.1f"), split, fmt(total), fmt(xn, "%.2f"),
                    fmt(xd, "%.2f")))
        w("")

    # The targets, judged on the 720p rows of this run.
    capd = find(rows, "capd", "720p", 100)
    naive = find(rows, "naive", "720p", 100)
    direct = find(rows, "direct", "720p", 100)
    w("## Targets (720p30)\n")
    w("| target | measured | met |")
    w("|---|---|---|")

    def target(name, value, ok):
        w("| %s | %s | %s |" % (name, value, "yes" if ok else "**no**"))

    if capd and naive and direct:
        ct, nt, dt = (capd["cpu_total_us_per_frame"], naive["cpu_total_us_per_frame"],
                      direct["cpu_total_us_per_frame"])
        resp = cpu_by_role(capd)["responder"]
        target("CPU at 100 viewers <= 0.4 x naive", "%.1f / %.1f = %.2f" % (ct, nt, ct / nt),
               ct <= 0.4 * nt)
        target("CPU at 100 viewers <= 3 x direct", "%.1f / %.1f = %.2f" % (ct, dt, ct / dt),
               ct <= 3 * dt)
        target("responder share <= direct's whole cost", "%.1f vs %.1f us" % (resp, dt),
               resp <= dt)
        target("latency p99 <= 30 ms at 100 viewers", "%s ms" % fmt(capd["lat_p99_ms"]),
               (capd["lat_p99_ms"] or 1e9) <= 30)
    c10 = find(rows, "capd", "720p", 10)
    if c10:
        target("latency p50 <= 3 ms at 10 viewers", "%s ms" % fmt(c10["lat_p50_ms"], "%.2f"),
               (c10["lat_p50_ms"] or 1e9) <= 3)
    c300 = find(rows, "capd", "720p", 300)
    if c10 and c300:
        a, b = c10["cpu_total_us_per_frame"], c300["cpu_total_us_per_frame"]
        target("flat cost: CPU/frame at 300 <= at 10 (+10 %)", "%.1f -> %.1f us" % (a, b),
               b <= a * 1.1)
    knees = {}
    for system in ("capd", "naive"):
        ok = [r["n"] for r in rows if r["system"] == system and r["res"] == "720p"
              and r["fps"] == 30.0 and held(r)]
        knees[system] = max(ok) if ok else 0
    if not quick and knees["naive"]:
        target("viewers held (30 fps, p99 < 100 ms) >= 2 x naive",
               "capd %d, naive %d (highest count tried that held)" % (knees["capd"], knees["naive"]),
               knees["capd"] >= 2 * knees["naive"])
    k = find(rows, "capd", "720p", 1000, 5.0)
    if k:
        target("1000 viewers at 5 fps, p99 < 200 ms",
               "%d/%d at full rate, p99 %s ms" % (k["full_rate"], k["viewers"], fmt(k["lat_p99_ms"])),
               k["full_rate"] >= 0.95 * k["viewers"] and (k["lat_p99_ms"] or 1e9) < 200)
    sm = idle_summary(idle_meta) if idle_meta else None
    if sm:
        # Tolerance: 0.05 calls per second per viewer is one stray call per viewer in 20 s.
        target("idle viewer: no syscalls but the keep-alive repeat (per viewer per second)",
               "`writev` %.3f (a repeat every 3 s: 0.333), other calls %.3f"
               % (sm["writev"], sm["other"]), sm["other"] <= 0.05)
        target("idle viewer that arrived after the last frame: the same",
               "%.1f calls per second in all" % sm["late"], sm["late"] <= sm["fixed"] + 1)
    w("")

    # Responder memory per viewer, from RssAnon at two viewer counts.
    lo, hi = find(rows, "capd", "720p", 10), find(rows, "capd", "720p", 300) or find(rows, "capd", "720p", 100)
    if lo and hi:
        def anon(r):
            return sum(p.get("rss_anon_kb") or 0 for p in r.get("cpu", []) if p.get("comm") == "capd.fcgi")
        if anon(hi) and anon(lo):
            w("Responder memory: RssAnon %.1f MB at %d viewers, %.1f MB at %d: %.1f KB per viewer.\n"
              % (anon(lo) / 1024, lo["n"], anon(hi) / 1024, hi["n"],
                 (anon(hi) - anon(lo)) / max(1, hi["n"] - lo["n"])))
    if idle_meta:
        out.extend(idle_section(idle_meta))
    if profile:
        out.extend(profile_section(profile))
    w("## Ring: publish to reader wake-up\n\n```\n%s```\n" % open(ring).read())
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        text = open(analysis).read().strip("\n")
        # The file may have a title of its own: the section heading replaces it.
        text = re.sub(r"^#+\s*Analysis\s*\n+", "", text, flags=re.IGNORECASE)
        w("## Analysis\n")
        w(text + "\n")
    print("\n".join(out))



# ---- strace output -------------------------------------------------------------------------------

def strace_counts(path):
    """strace -c's table: {syscall: (calls, errors)}; None when the file is missing."""
    if not os.path.exists(path):
        return None
    counts = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) in (5, 6) and re.match(r"^[\d.]+$", p[0]) and p[-1] != "total":
                counts[p[-1]] = (int(p[3]), int(p[4]) if len(p) == 6 else 0)
    return counts


TT_LINE = re.compile(r"^(\d+)\s+\d\d:\d\d:\d\d\.\d+\s+(.*)$")
RESULT = re.compile(r"^(.*)\)\s+= (.*)$")  # strace pads short calls: "kill(1, 0)     = 0"


def strace_calls(path):
    """strace -f -tt's listing as completed calls: [(tid, name, args, result)]. A call split
    into '<unfinished ...>' and '<... resumed>' is joined; one begun before strace attached has
    args None. Calls still running when strace detached are left out."""
    calls, pending = [], {}
    if not os.path.exists(path):
        return calls
    with open(path) as f:
        for line in f:
            m = TT_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            tid, text = int(m.group(1)), m.group(2)
            r = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", text)
            if r:
                name, rest = r.group(1), r.group(2)
                start = pending.pop(tid, None)
                args = start[1] + rest if start and start[0] == name else None
                res = RESULT.match(rest)
                if res:
                    calls.append((tid, name, args, res.group(2)))
                continue
            c = re.match(r"^(\w+)\((.*)$", text)
            if not c:
                continue  # signals, exits, '<detached ...>'
            name, rest = c.group(1), c.group(2)
            if rest.endswith("<unfinished ...>"):
                pending[tid] = (name, rest[:-len("<unfinished ...>")])
                continue
            res = RESULT.match(rest)
            if res:
                calls.append((tid, name, rest, res.group(2)))
    return calls


def call_kind(name, args, result):
    """A short description of one call, for grouping."""
    res = result.split(" (")[0]
    if re.match(r"^\d+$", res):
        res = "n" if name in ("writev", "write", "read", "recvfrom", "sendto") else res
    a = args or ""
    if name == "futex":
        op = re.search(r"FUTEX_\w+", a)
        op = op.group(0) if op else "?"
        wait = "timeout" if "tv_sec" in a else ("no timeout" if "NULL" in a else "?")
        kind = "futex(%s, %s)" % (op, wait) if "WAIT" in op else "futex(%s)" % op
    elif name == "kill":
        sig = re.match(r"^\d+,\s*(\w+)", a)
        kind = "kill(capd's pid, %s)" % (sig.group(1) if sig else "?")
    elif name == "writev":
        n = re.search(r"\],\s*(\d+)", a)
        kind = "writev(%s iovecs)" % n.group(1) if n else "writev"
    elif name == "epoll_wait":
        t = re.search(r",\s*(-?\d+)\)\s+=", a) if args else None
        t = int(t.group(1)) if t else None
        kind = "epoll_wait(%s)" % ("?" if t is None else "timeout 0: no wait" if t == 0 else
                                   "no timeout" if t < 0 else "timeout up to %s ms" %
                                   (1001 if t <= 1001 else t))
    elif name == "read":
        n = re.search(r",\s*(\d+)\)\s+=", a) if args else None
        kind = "read(%s bytes)" % n.group(1) if n else "read"
    else:
        kind = name
    if args is None:
        kind += " [begun before attach]"
    return kind, res


def thread_roles(calls):
    """Guesses what each thread of the responder is from the calls it made."""
    by_tid = {}
    for tid, name, args, result in calls:
        by_tid.setdefault(tid, set()).add((name, args or ""))
    roles = {}
    for tid, cs in by_tid.items():
        names = {n for n, _ in cs}
        if "epoll_wait" in names:
            roles[tid] = "fan-out I/O thread"
        elif "kill" in names or any(n == "futex" and "FUTEX_WAIT," in a for n, a in cs):
            roles[tid] = "ring waiter thread"
        elif "pause" in names:
            roles[tid] = "main thread"
        elif "accept" in names:
            roles[tid] = "worker in accept()"
        elif "restart_syscall" in names and len(names) == 1:
            roles[tid] = "(strace attach)"
        else:
            roles[tid] = "worker thread"
    return roles


# ---- the idle section ----------------------------------------------------------------------------

def idle_data(d):
    try:
        meta = json.load(open(os.path.join(d, "meta.json")))
    except (OSError, ValueError):
        return None
    passes = {}
    for item in meta["passes"].split():
        name, n = item.split(":")
        load = None
        try:
            load = json.load(open(os.path.join(d, "load-%s.json" % name)))
        except (OSError, ValueError):
            pass
        passes[name] = {"viewers": int(n), "load": load,
                        "c": strace_counts(os.path.join(d, "strace-c-%s.txt" % name)),
                        "lighttpd": strace_counts(os.path.join(d, "lighttpd-c-%s.txt" % name)),
                        "tt": os.path.join(d, "strace-tt-%s.txt" % name)}
    meta["p"] = passes
    return meta


def idle_summary(meta):
    """Per idle viewer per second: writev, and every other call (slope from 1 to 10 viewers);
    the late viewer's calls per second. None when a pass is missing."""
    p, s = meta["p"], float(meta["seconds"])
    if not all(k in p and p[k]["c"] is not None for k in ("v1", "v10", "late")):
        return None
    n1, n10 = p["v1"]["viewers"], p["v10"]["viewers"]

    def tot(c, only=None, skip=("restart_syscall",)):
        return sum(v[0] for k, v in c.items() if (only is None or k == only) and k not in skip)
    writev = (tot(p["v10"]["c"], "writev") - tot(p["v1"]["c"], "writev")) / (n10 - n1) / s
    other = ((tot(p["v10"]["c"]) - tot(p["v10"]["c"], "writev")) -
             (tot(p["v1"]["c"]) - tot(p["v1"]["c"], "writev"))) / (n10 - n1) / s
    late = tot(p["late"]["c"]) / s
    return {"writev": writev, "other": other, "late": late,
            "fixed": (tot(p["v1"]["c"]) - tot(p["v1"]["c"], "writev")) / s - other * n1}


def idle_section(meta):
    out = []
    w = out.append
    s = float(meta["seconds"])
    p = meta["p"]
    order = [k for k in ("v0", "v1", "v10", "late") if k in p]
    label = {"v0": "no viewers", "v1": "1 idle viewer", "v10": "10 idle viewers",
             "late": "1 viewer, no frame yet"}
    w("## Idle viewers: the responder's system calls\n")
    w("`bench/idle.sh`: capd `--source stdin` publishes one 720p frame right after the viewers "
      "connect, then nothing (a still camera; capd stays alive). `strace -f -c -p` counts the "
      "FastCGI responder's calls (capd.fcgi, fan-out mode, %s threads, under lighttpd) for %g s "
      "with 1 and 10 idle viewers, after they left, and with one viewer that connected after "
      "the last frame and after the previous viewers had left. Calls per second over the "
      "window (the `restart_syscall` is strace's own: attaching interrupts the timed "
      "`futex` wait of the thread that waits for capd's frames, and the kernel resumes it "
      "as `restart_syscall`):\n" % (meta.get("responder_threads", "?"), s))
    names = sorted({k for o in order if p[o]["c"] for k in p[o]["c"]},
                   key=lambda k: -max((p[o]["c"] or {}).get(k, (0, 0))[0] for o in order))
    head = "| call | " + " | ".join(label[o] for o in order)
    if "v1" in p and "v10" in p:
        head += " | per extra idle viewer (1 -> 10)"
    w(head + " |")
    w("|---" * (head.count("|")) + "|")
    for k in names + ["total"]:
        def rate(o):
            c = p[o]["c"] or {}
            v = sum(x[0] for x in c.values()) if k == "total" else c.get(k, (0, 0))[0]
            return v / s
        row = "| %s | " % (("`%s`" % k) if k != "total" else "**total**")
        row += " | ".join("%.2f" % rate(o) for o in order)
        if "v1" in p and "v10" in p:
            row += " | %.3f" % ((rate("v10") - rate("v1")) /
                                (p["v10"]["viewers"] - p["v1"]["viewers"]))
        w(row + " |")
    w("")
    lt = [o for o in order if p[o]["lighttpd"] is not None]
    if lt:
        w("lighttpd in the same windows, calls per second: %s.\n" % ", ".join(
            "%s %.2f" % (label[o], sum(x[0] for x in p[o]["lighttpd"].values()) / s) for o in lt))
    loads = ["%s: %d connected, %d repeats, %d live frames" % (
        label[o], p[o]["load"]["connected"], p[o]["load"]["repeats"], p[o]["load"]["live_frames"])
        for o in order if p[o]["load"]]
    if loads:
        w("What the viewers got over the whole pass (`loadclient`): %s.\n" % "; ".join(loads))

    # The listing: which thread made which call.
    src = "v10" if "v10" in p else order[0]
    calls = strace_calls(p[src]["tt"])
    if calls:
        roles = thread_roles(calls)
        groups = {}
        for tid, name, args, result in calls:
            kind, res = call_kind(name, args, result)
            key = (roles[tid], kind, res)
            groups.setdefault(key, [0, set()])
            groups[key][0] += 1
            groups[key][1].add(tid)
        w("What the calls are: `strace -f -tt` for %g s with %s, each completed call by the "
          "thread that made it (a call begun before strace attached has no arguments to "
          "show). Threads with no row slept through the window.\n" % (s, label[src]))
        w("| thread | call | result | calls | threads | per second |")
        w("|---|---|---|---|---|---|")
        for (role, kind, res), (n, tids) in sorted(groups.items(), key=lambda x: (x[0][0], -x[1][0])):
            w("| %s | `%s` | %s | %d | %d | %.2f |" % (role, kind, res, n, len(tids), n / s))
        w("")
    if "v1" in p and os.path.exists(p["v1"]["tt"]):
        lines = []
        with open(p["v1"]["tt"]) as f:
            for line in f:
                # Sleeping workers show only as the call strace found them in.
                if re.search(r"accept\(0,\s+<unfinished|FUTEX_WAIT_PRIVATE, \d+, NULL <unfinished"
                             r"|pause\( <unfinished|<detached", line):
                    continue
                lines.append(line.rstrip("\n")[:160])
        w("The listing with 1 idle viewer (sleeping workers left out; lines cut at 160 "
          "characters):\n")
        w("```\n%s\n```\n" % "\n".join(lines[:40] + (["... (%d more)" % (len(lines) - 40)]
                                                     if len(lines) > 40 else [])))
    if "late" in p and os.path.exists(p["late"]["tt"]):
        lines = [l.rstrip("\n")[:160] for l in open(p["late"]["tt"])
                 if not re.search(r"accept\(0,\s+<unfinished|FUTEX_WAIT_PRIVATE, \d+, NULL "
                                  r"<unfinished|pause\( <unfinished|<detached", l)]
        w("The viewer with no frame yet, the first lines of 1 s of listing (%d lines in all):\n"
          % len(lines))
        w("```\n%s\n```\n" % "\n".join(lines[:12]))
    sm = idle_summary(meta)
    if sm:
        w("Per extra idle viewer: %.3f `writev` per second (the keep-alive repeat every 3 s is "
          "0.333) and %.3f other calls per second. Whatever the number of viewers, the camera's "
          "fan-out threads together make %.2f calls per second while it has viewers. A viewer "
          "that has no frame yet: %.1f calls per second.\n"
          % (sm["writev"], sm["other"], sm["fixed"], sm["late"]))
    return out


# ---- the profile section -------------------------------------------------------------------------

ANN_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)$")


# Thread entry points: 100 % inclusive, nothing to learn.
NOT_SHOWN = {"clone", "start_thread", "(below main)"}


def annotate_rows(path, inclusive):
    """callgrind_annotate's list: (total, [(Ir, percent, 'function (object)')]). The tool lists
    code inlined from another file (a header, a libc helper file) as a separate 'file:function'
    without an object: one function's rows are merged, summed for self cost, the largest for
    inclusive cost (the inlined part is inside the function's own)."""
    total, merged, objs = None, {}, {}
    if not os.path.exists(path):
        return None, []
    with open(path) as f:
        for line in f:
            m = ANN_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            ir, name = int(m.group(1).replace(",", "")), m.group(3).strip()
            if name == "PROGRAM TOTALS":
                total = ir
                continue
            fm = re.match(r"^(.*?):([^:\[]+?)(?: \[(.*)\])?$", name)
            func, obj = (fm.group(2), fm.group(3)) if fm else (name, None)
            if func in NOT_SHOWN:
                continue
            merged[func] = max(merged.get(func, 0), ir) if inclusive else merged.get(func, 0) + ir
            if obj:
                objs[func] = os.path.basename(obj)
    rows = [(ir, 100.0 * ir / total if total else 0.0,
             "%s (%s)" % (func, objs[func]) if func in objs else func)
            for func, ir in merged.items()]
    rows.sort(key=lambda r: -r[0])
    return total, rows


def profile_section(d):
    out = []
    w = out.append
    try:
        meta = json.load(open(os.path.join(d, "meta.json")))
    except (OSError, ValueError):
        return out
    w("## Profile: the responder at %d viewers of %s30\n" % (meta["viewers"], meta["res"]))
    w("`bench/profile.sh`: capd.fcgi (fan-out mode, %s threads) under lighttpd with "
      "lighttpd.conf, %d `loadclient` viewers. The frames delivered are the responder's own "
      "`frames_sent` counter (`/state`) at both ends of each %g-s window.\n"
      % (meta.get("responder_threads", "?"), meta["viewers"], meta["seconds"]))
    cg = meta["callgrind"]
    total, incl = annotate_rows(os.path.join(d, "annotate-inclusive.txt"), True)
    _, self_rows = annotate_rows(os.path.join(d, "annotate-self.txt"), False)
    frames = (cg["frames_end"] - cg["frames_start"]) if cg.get("frames_end") is not None and \
        cg.get("frames_start") is not None else None
    if total and frames:
        secs = cg["t_end"] - cg["t_start"]
        w("**Instructions** (valgrind `--tool=callgrind`, counters zeroed and dumped with "
          "`callgrind_control` around the window): %s instructions for %d delivered frames in "
          "%.1f s (%.1f frames per second per viewer under valgrind, of the source's 30): **%s "
          "instructions per "
          "delivered frame**, user space only (the kernel's work in `writev` is not counted).\n"
          % (format(total, ","), frames, secs, frames / secs / meta["viewers"],
             format(total // frames, ",")))
        for title, rows in (("inclusive (the function and what it calls)", incl),
                            ("self (the function's own instructions)", self_rows)):
            w("Top functions, %s:\n" % title)
            w("| function | instructions | % | per delivered frame |")
            w("|---|---|---|---|")
            for ir, pct, fn in rows[:10]:
                w("| `%s` | %s | %.1f | %s |" % (fn, format(ir, ","), pct,
                                                format(ir // frames, ",")))
            w("")
    else:
        w("callgrind: no result (see %s).\n" % d)
    st = meta["strace"]
    counts = strace_counts(os.path.join(d, "strace-c.txt"))
    sframes = (st["frames_end"] - st["frames_start"]) if st.get("frames_end") is not None and \
        st.get("frames_start") is not None else None
    if counts and sframes:
        secs = st["t_end"] - st["t_start"]
        w("**System calls** (`strace -f -c -p` on the plain responder, same load): %d delivered "
          "frames in %.1f s (%.1f per second per viewer, of the source's 30; strace stops the "
          "responder at every call, and a responder that falls behind skips to the newest "
          "frame). Calls per delivered frame:\n"
          % (sframes, secs, sframes / secs / meta["viewers"]))
        w("| call | calls | errors | per delivered frame | strace's time share |")
        w("|---|---|---|---|---|")
        shares = {}
        with open(os.path.join(d, "strace-c.txt")) as f:
            for line in f:
                q = line.split()
                if len(q) in (5, 6) and re.match(r"^[\d.]+$", q[0]):
                    shares[q[-1]] = q[0]
        for k, (n, e) in sorted(counts.items(), key=lambda x: -x[1][0]):
            w("| `%s` | %d | %d | %.3f | %s %% |" % (k, n, e, n / sframes, shares.get(k, "?")))
        tot = sum(v[0] for v in counts.values())
        w("| **total** | %d | %d | %.3f | |" % (tot, sum(v[1] for v in counts.values()),
                                              tot / sframes))
        w("")
    else:
        w("strace: no result (see %s).\n" % d)
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "tag":
        r = json.load(sys.stdin)
        r.update(system=sys.argv[2], res=sys.argv[3], fps=float(sys.argv[4]), n=int(sys.argv[5]))
        print(json.dumps(r))
    elif cmd == "line":
        r = json.load(sys.stdin)
        print("  %-28s fps %5s/%5s  p50 %6s ms  p99 %7s ms  CPU %7s us/frame  full rate %d/%d" % (
            r["label"], r["fps_min"], r["fps_median"], r["lat_p50_ms"], r["lat_p99_ms"],
            fmt(r["cpu_total_us_per_frame"]), r["full_rate"], r["viewers"]))
    elif cmd == "knee":
        r = find(load(sys.argv[2]), sys.argv[3], "720p", int(sys.argv[4]))
        print(1 if r and held(r) else 0)
    elif cmd == "report":
        args = sys.argv[5:]
        opt = {}
        for flag in ("--idle", "--profile"):
            if flag in args:
                i = args.index(flag)
                opt[flag[2:]] = args[i + 1]
                del args[i:i + 2]
        report(sys.argv[2], sys.argv[3], sys.argv[4], "quick" in args, **opt)
    elif cmd == "idle":
        meta = idle_data(sys.argv[2])
        print("\n".join(idle_section(meta)) if meta else "no idle results in " + sys.argv[2])
    elif cmd == "profile":
        print("\n".join(profile_section(sys.argv[2])) or "no profile results in " + sys.argv[2])
    else:
        sys.exit("usage: see the top of bench/report.py")


if __name__ == "__main__":
    main()
