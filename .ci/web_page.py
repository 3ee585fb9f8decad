#!/usr/bin/env python3
"""Drives the page in headless Chromium on the real clock, for what `--dump-dom` cannot do.

`chromium --screenshot` captures at the load event, before the page's WebAssembly is
fetched; with `--virtual-time-budget` it waits, but the clock is virtual and the page's
time per digit reads 0. And a file picker needs a browser that can set its files. This
script drives Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
JSON messages ending in NUL on fds 3 and 4, standard library only): it opens URL, waits
until the page sets `data-state="ready"` on <body>, optionally picks a model file with
the page's file picker and waits for the page to take it, optionally writes a PNG, and
prints a JSON object with the page's `error`, `status` and `checksums` texts.

usage: web_page.py URL [--pick FILE] [--screenshot OUT.png --size WxH] -- [chromium flags...]
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 30


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--pick", metavar="FILE", help="model file to choose with the file picker")
    parser.add_argument("--screenshot", metavar="OUT.png")
    parser.add_argument("--size", default="1000x560", metavar="WxH")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.flags = argv[split + 1:]  # chromium flags
    width, height = (int(v) for v in args.size.split("x"))
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def child_fds():
        # Via fresh copies, so that neither end is clobbered or left close-on-exec when
        # a pipe already sits on fd 3 or 4; os.dup2 makes 3 and 4 inheritable.
        read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            ["chromium", "--headless", *args.flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=child_fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        writer = os.fdopen(to_browser_w, "wb")
        reader = os.fdopen(from_browser_r, "rb")
        pending = b""
        next_id = 0

        def call(method, params=None, session=None):
            nonlocal pending, next_id
            next_id += 1
            msg = {"id": next_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            writer.write(json.dumps(msg).encode() + b"\0")
            writer.flush()
            while True:
                while b"\0" not in pending:
                    chunk = os.read(reader.fileno(), 1 << 16)
                    if not chunk:
                        sys.exit(f"web_page.py: chromium closed the pipe during {method}")
                    pending += chunk
                raw, pending = pending.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == next_id:
                    if "error" in reply:
                        sys.exit(f"web_page.py: {method}: {reply['error']}")
                    return reply["result"]

        try:
            target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
            call("Page.navigate", {"url": args.url}, session)

            def evaluate(expression):
                result = call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
                return result["result"].get("value")

            deadline = time.monotonic() + TIMEOUT_S
            state = None
            while time.monotonic() < deadline:
                state = evaluate("document.body ? document.body.dataset.state : null")
                if state in ("ready", "failed"):
                    break
                time.sleep(0.1)
            if state != "ready":
                error = evaluate("document.getElementById('error') && document.getElementById('error').textContent")
                sys.exit(f"web_page.py: the page did not get ready (state {state!r}, error {error!r})")
            text = "(id) => document.getElementById(id).textContent"
            if args.pick:
                # The page sets data-picked after it handled a picked file.
                call("DOM.enable", {}, session)
                root = call("DOM.getDocument", {}, session)["root"]["nodeId"]
                node = call("DOM.querySelector", {"nodeId": root, "selector": "#model-file"}, session)["nodeId"]
                call("DOM.setFileInputFiles", {"files": [os.path.abspath(args.pick)], "nodeId": node}, session)
                while time.monotonic() < deadline and not evaluate("document.body.dataset.picked"):
                    time.sleep(0.1)
                if not evaluate("document.body.dataset.picked"):
                    sys.exit("web_page.py: the page did not handle the picked file")
            page = {k: evaluate(f"({text})({k!r})") for k in ("error", "status", "checksums")}
            if args.screenshot:
                shot = call("Page.captureScreenshot", {"format": "png"}, session)
                with open(args.screenshot, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
            print(json.dumps(page))
            call("Browser.close")
        finally:
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()


if __name__ == "__main__":
    main()
