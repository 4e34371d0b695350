#!/usr/bin/python3
"""report.py - turns loadclient's JSON results into bench/results.md (used by bench/run.sh).

  report.py tag SYSTEM RES FPS N  < result.json   one tagged JSON line for raw.jsonl
  report.py line                  < result.json   a one-line summary for the console
  report.py knee RAW SYSTEM N                     1 if that run held its viewers, else 0
  report.py report RAW RING FRAMES [quick]        the Markdown report on stdout
"""
import json
import os
import platform
import sys
import time

NAMES = {
    "capd": "(1) capd: capd + capd.fcgi (fan-out) + lighttpd",
    "capd-threads": "(1b) capd, responder thread per viewer",
    "naive": "(3) naive libfcgi responder + lighttpd",
    "direct": "(4) direct epoll server (the limit)",
    "flask": "(5) the seed's design (Flask)",
}
# Which processes are the web server, the responder and capd, by command name.
ROLE = {"lighttpd": "web", "capd.fcgi": "responder", "naive_fcgi": "responder", "capd": "capd"}


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


def report(raw, ring, frames, quick):
    rows = load(raw)
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
    w("## Ring: publish to reader wake-up\n\n```\n%s```\n" % open(ring).read())
    print("\n".join(out))


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
        report(sys.argv[2], sys.argv[3], sys.argv[4], len(sys.argv) > 5 and sys.argv[5] == "quick")
    else:
        sys.exit("usage: see the top of bench/report.py")


if __name__ == "__main__":
    main()
