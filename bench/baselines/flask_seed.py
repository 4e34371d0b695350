#!/usr/bin/python3
"""flask_seed.py - baseline: the seed's design in Python (Flask, capture thread, per-client events).

The classic Flask MJPEG server, as the project's seed had it:
  - a background capture thread loops the JPEGs of a folder (loaded into memory at start) at
    --fps and publishes the newest one (its capture time is the publish time), then sets every
    viewer's threading.Event;
  - each viewer's response is a generator that waits on its own event, clears it, takes the
    newest frame and yields one multipart part (one bytes object per frame);
  - served by Flask's built-in server, app.run(threaded=True): werkzeug's ThreadedWSGIServer,
    one thread per connection, HTTP/1.1 with chunked transfer coding.
Flask and werkzeug are Debian's python3-flask and python3-werkzeug (apt-get install
python3-flask), not pip's: run it with Debian's /usr/bin/python3, not a `python3` found first
on PATH (pyenv, a virtualenv) that may carry other versions. It prints the versions it got and
warns when they do not come from /usr/lib/python3.

The stream format matches capd's "full" layout: a boundary line first, then per frame
Content-Type, Content-Length and X-Timestamp (CLOCK_REALTIME <sec>.<usec>), the JPEG, and the
boundary line at once.

  /usr/bin/python3 bench/baselines/flask_seed.py --dir FRAMES [--fps 30] [--port 8083]
      [--bind 127.0.0.1] [--quiet]
  then: http://127.0.0.1:8083/stream
"""
import argparse
import importlib.metadata
import logging
import os
import sys
import threading
import time

import flask
from flask import Flask, Response

BOUNDARY = b"flaskframe"
NEXT_BOUNDARY = b"\r\n--" + BOUNDARY + b"\r\n"


def load_frames(folder):
    """The bytes of every *.jpg / *.jpeg in folder, in name order; exits on a bad file."""
    names = sorted(n for n in os.listdir(folder)
                   if not n.startswith(".") and n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        sys.exit(f"flask_seed: {folder}: no .jpg files")
    frames = []
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        # SOI at the start, EOI at the end: the load client checks the same.
        if len(data) < 4 or data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
            sys.exit(f"flask_seed: {folder}/{name}: not a complete JPEG")
        frames.append(data)
    return frames


class FrameSource:
    """The capture thread and the newest frame; viewers subscribe with an Event each."""

    def __init__(self, frames, fps):
        self.frames = frames
        self.period = 1.0 / fps
        self.lock = threading.Lock()
        self.events = set()
        self.newest = None  # (jpeg bytes, capture time in microseconds)
        threading.Thread(target=self._capture, name="capture", daemon=True).start()

    def _capture(self):
        # An absolute schedule; a late tick is not made up.
        deadline = time.monotonic()
        index = 0
        while True:
            newest = (self.frames[index], time.time_ns() // 1000)
            with self.lock:
                self.newest = newest
                for event in self.events:
                    event.set()
            index = (index + 1) % len(self.frames)
            deadline += self.period
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                deadline = time.monotonic()

    def subscribe(self):
        event = threading.Event()
        with self.lock:
            self.events.add(event)
        return event

    def unsubscribe(self, event):
        with self.lock:
            self.events.discard(event)


def make_app(source):
    app = Flask(__name__)

    @app.route("/stream")
    def stream():
        def parts():
            event = source.subscribe()
            try:
                yield b"--" + BOUNDARY + b"\r\n"
                while True:
                    event.wait()
                    event.clear()
                    jpeg, capture_us = source.newest
                    head = b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n" \
                           b"X-Timestamp: %d.%06d\r\n\r\n" % (
                               len(jpeg), capture_us // 1000000, capture_us % 1000000)
                    yield head + jpeg + NEXT_BOUNDARY
            finally:
                # werkzeug closes the generator when a write fails: the viewer left.
                source.unsubscribe(event)

        return Response(parts(), mimetype="multipart/x-mixed-replace;boundary=" +
                        BOUNDARY.decode(), headers={"Cache-Control": "no-cache"})

    return app


def main():
    parser = argparse.ArgumentParser(description="The seed's MJPEG design: Flask, a capture "
                                     "thread, an Event per viewer.")
    parser.add_argument("--dir", required=True, help="folder of frame_*.jpg to loop")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (30)")
    parser.add_argument("--port", type=int, default=8083, help="TCP port (8083)")
    parser.add_argument("--bind", default="127.0.0.1", help="address (127.0.0.1)")
    parser.add_argument("--quiet", action="store_true", help="no request log lines")
    args = parser.parse_args()
    if not 0.1 <= args.fps <= 1000:
        parser.error("--fps must be 0.1..1000")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    frames = load_frames(args.dir)
    versions = (f"Python {sys.version.split()[0]}, Flask {importlib.metadata.version('flask')}, "
                f"werkzeug {importlib.metadata.version('werkzeug')}")
    print(f"flask_seed: {versions} from {os.path.dirname(os.path.dirname(flask.__file__))}",
          file=sys.stderr, flush=True)
    if not flask.__file__.startswith("/usr/lib/python3/"):
        print("flask_seed: warning: this is not Debian's python3-flask; run /usr/bin/python3",
              file=sys.stderr, flush=True)
    print(f"flask_seed: {len(frames)} frames from {args.dir} at {args.fps:g} fps on "
          f"http://{args.bind}:{args.port}/stream", file=sys.stderr, flush=True)
    make_app(FrameSource(frames, args.fps)).run(host=args.bind, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
