#!/usr/bin/env python3
"""Screenshot of the page in headless Chromium on the real clock.

`chromium --screenshot` captures at the load event, before the page's WebAssembly is
fetched; with `--virtual-time-budget` it waits, but the clock is virtual and the page's
time per digit reads 0. This drives Chromium over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: JSON messages ending in NUL on fds 3 and 4, standard library
only): it opens URL, waits until the page sets `data-state="ready"` on <body>, prints the
status line (with the time per digit the page measured) and writes a PNG.

usage: web_screenshot.py URL OUT.png WIDTH HEIGHT [chromium flags...]
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 30


def main():
    url, out, width, height, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
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
            ["chromium", "--headless", *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
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
                        sys.exit(f"web_screenshot.py: chromium closed the pipe during {method}")
                    pending += chunk
                raw, pending = pending.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == next_id:
                    if "error" in reply:
                        sys.exit(f"web_screenshot.py: {method}: {reply['error']}")
                    return reply["result"]

        try:
            target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
            call("Page.navigate", {"url": url}, session)

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
                sys.exit(f"web_screenshot.py: the page did not get ready (state {state!r}, error {error!r})")
            print(evaluate("document.getElementById('status').textContent"))
            shot = call("Page.captureScreenshot", {"format": "png"}, session)
            with open(out, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            call("Browser.close")
        finally:
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()


if __name__ == "__main__":
    main()
