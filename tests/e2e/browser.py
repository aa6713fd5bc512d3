"""Headless chromium for the web-UI tests: Debian's chromedriver on a free loopback port, spoken to with
the W3C WebDriver protocol over http.client (stdlib only, so nothing depends on which python3 has selenium).

Every wait is bounded in tries and seconds; chromedriver is started through Context.spawn (stopped by
PID when the test ends) and chromium gets a fresh --user-data-dir under the test directory."""
import base64
import http.client
import json
import os
import shutil
import time

from harness import TestFailure, check, free_port

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


class WebDriverError(TestFailure):
    """An error answer from chromedriver: `error` is the W3C error code (e.g. 'no such alert')."""

    def __init__(self, error, message):
        super().__init__("webdriver: %s: %s" % (error, " ".join(str(message).split())[:300]))
        self.error = error


def _find(path, name):
    if os.path.exists(path):
        return path
    found = shutil.which(name)
    if not found:
        raise TestFailure("%s not found (install Debian's chromium and chromium-driver packages)" % path)
    return found


class Browser:
    """One headless chromium window (default 1280x800) driven through chromedriver."""

    def __init__(self, ctx, width=1280, height=800):
        self.ctx = ctx
        chromium, driver = _find(CHROMIUM, "chromium"), _find(CHROMEDRIVER, "chromedriver")
        self.port = free_port()
        self.proc = ctx.spawn([driver, "--port=%d" % self.port, "--allowed-ips=127.0.0.1",
                               "--log-path=" + ctx.path("chromedriver-debug.log")], "chromedriver")
        self._wait_ready()
        args = ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--disable-component-update", "--password-store=basic",
                "--user-data-dir=" + ctx.mkdir("chromium-profile"), "--window-size=%d,%d" % (width, height)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # chromium refuses to run its sandbox as root
        caps = {"browserName": "chrome", "unhandledPromptBehavior": "ignore", "pageLoadStrategy": "normal",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": chromium, "args": args}}
        value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}}, timeout=120)
        self.session = value["sessionId"]
        ctx.cleanups.append(self.quit)
        self.set_size(width, height)

    def _wait_ready(self, tries=150, interval=0.1):
        for _ in range(tries):
            check(self.proc.poll() is None, "chromedriver exited with %s" % self.proc.returncode)
            try:
                if self._call("GET", "/status", timeout=5).get("ready"):
                    return
            except (OSError, http.client.HTTPException, TestFailure):
                pass
            time.sleep(interval)
        raise TestFailure("chromedriver did not answer /status within %.0f s" % (tries * interval))

    def _call(self, method, path, body=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            value = json.loads(raw or b"{}").get("value")
        except ValueError:
            raise TestFailure("chromedriver answered %s %s with non-JSON: %r" % (method, path, raw[:200])) from None
        if resp.status >= 400:
            err = value if isinstance(value, dict) else {}
            raise WebDriverError(err.get("error", str(resp.status)), err.get("message", raw[:300]))
        return value

    def cmd(self, method, path, body=None, timeout=60):
        """A WebDriver command on this session ('/url' -> /session/<id>/url); returns its value."""
        return self._call(method, "/session/%s%s" % (self.session, path), body, timeout)

    def quit(self):
        try:
            self.cmd("DELETE", "", timeout=30)
        except (OSError, http.client.HTTPException, TestFailure):
            pass  # chromedriver is stopped by PID anyway

    # -- pages and scripts ----------------------------------------------------------------------

    def get(self, url):
        self.cmd("POST", "/url", {"url": url}, timeout=120)

    def refresh(self):
        self.cmd("POST", "/refresh", {}, timeout=120)

    def set_size(self, width, height):
        self.cmd("POST", "/window/rect", {"width": width, "height": height})

    def js(self, script, *args):
        """Runs `script` (a function body; `arguments` holds args) in the page; returns its value."""
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args, timeout=30):
        """Runs an async function body in the page (await allowed) and returns what it returns."""
        body = "const done = arguments[arguments.length - 1]; (async () => {%s})().then(done, " \
               "(e) => done({error: String(e)}));" % script
        self.cmd("POST", "/timeouts", {"script": int(timeout * 1000)})
        return self.cmd("POST", "/execute/async", {"script": body, "args": list(args)}, timeout=timeout + 30)

    def wait(self, script, what, *args, tries=150, interval=0.1):
        """Polls the JS expression body `script` until it returns something truthy; fails naming `what`."""
        last = None
        for _ in range(tries):
            try:
                value = self.js(script, *args)
                if value:
                    return value
            except WebDriverError as exc:
                if exc.error == "unexpected alert open":
                    raise
                last = exc
            time.sleep(interval)
        raise TestFailure("timed out after %.0f s waiting for %s%s (page shows: %s)" % (
            tries * interval, what, " (%s)" % last if last else "", self.main_text()[:300]))

    def main_text(self):
        try:
            return " ".join(str(self.js("return document.body ? document.body.innerText : ''")).split())
        except TestFailure:
            return "?"

    # -- elements -------------------------------------------------------------------------------

    def find(self, css):
        """The first element matching `css` (fails if none)."""
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css):
        return [e[ELEMENT] for e in self.cmd("POST", "/elements", {"using": "css selector", "value": css})]

    def click(self, css):
        self.cmd("POST", "/element/%s/click" % self.find(css), {})

    def type(self, css, text, clear=True):
        el = self.find(css)
        if clear:
            self.cmd("POST", "/element/%s/clear" % el, {})
        self.cmd("POST", "/element/%s/value" % el, {"text": text})

    def text(self, css):
        return self.cmd("GET", "/element/%s/text" % self.find(css))

    # -- what the page did ----------------------------------------------------------------------

    def alert_text(self):
        """The text of an open alert/confirm dialog, or None."""
        try:
            return self.cmd("GET", "/alert/text")
        except WebDriverError as exc:
            if exc.error == "no such alert":
                return None
            raise

    def console(self):
        """Browser console entries since the last call: [{'level', 'message'}, ...]."""
        return self.cmd("POST", "/se/log", {"type": "browser"}) or []

    def screenshot(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot", timeout=120)))
        return path

    def color_scheme(self, scheme):
        """Emulates prefers-color-scheme: 'dark' or 'light' (through chromedriver's CDP passthrough)."""
        self.cmd("POST", "/goog/cdp/execute", {"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]}})
