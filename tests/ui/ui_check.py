#!/usr/bin/python3
"""The dashboard in a real browser: Debian's headless Chromium driven by selenium.

  /usr/bin/python3 tests/ui/ui_check.py --base http://127.0.0.1:PORT --key lf_... \
      --streams cam1,cam2,cam3 --stop cam3 --artefacts DIR

Run by tests/e2e/ui_browser_test.cpp (lf_ui_test), which starts the server and a live producer
per stream. Checks, each printed as "ok: ..." when it holds (waits are for conditions, with
timeouts; nothing sleeps to synchronise):
  1. the sign-in form signs in with the key (the page shows the node it is served by);
  2. a tile per stream, each image loaded (naturalWidth > 0), with alt text, state and age;
  3. a tile's still refreshes (a new blob: URL, a newer version) when its stream gets frames;
  4. the checker prints "STOP <stream>": the driver stops that producer, and its tile turns stale;
  5. filter and tile size controls work; the grid fits a phone's width (390 px);
  6. a tile opens its stream page by keyboard (Enter); the slider moved back (Home key) shows an
     older frame (a different image, and the ?at= request answered 200); "Live" returns;
     the preview, fragment timeline and clip link are there;
  7. screenshots: grid-desktop.png, grid-phone.png, stream.png in --artefacts.
Exits 0 and prints "ui checks passed" when all hold; else prints what failed and exits 1.
"""
import argparse
import os
import sys
import tempfile

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def say(text):
    print(text, flush=True)


def fail(text):
    say("FAIL: " + text)
    raise SystemExit(1)


class Page:
    def __init__(self, base, user_data_dir):
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--user-data-dir=" + user_data_dir, "--window-size=1280,900",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--hide-scrollbars"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.base = base

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, what, condition, timeout=20):
        """Waits until condition() is truthy; its value, or fails naming |what|."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda d: condition())
        except TimeoutException:
            self.dump()
            fail(f"{what} (waited {timeout} s)")

    def dump(self):
        try:
            for entry in self.driver.get_log("browser"):
                say("browser console: " + entry.get("message", ""))
            say("notice: " + self.js("return document.getElementById('notice').textContent"))
            say("tiles: " + repr(self.tiles()))
        except WebDriverException:
            pass

    def tiles(self):
        return self.js("""
            return Array.from(document.querySelectorAll('#grid .tile')).map(li => {
              const img = li.querySelector('img');
              return {name: li.dataset.stream, state: li.dataset.state || '',
                      version: Number(li.dataset.version || 0), hidden: li.hidden,
                      src: img.getAttribute('src') || '', alt: img.alt,
                      loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
                      label: li.querySelector('.tile-state').textContent,
                      age: li.querySelector('.tile-age').textContent,
                      res: li.querySelector('.tile-res').textContent};
            });""")

    def tile(self, name):
        for t in self.tiles():
            if t["name"] == name:
                return t
        return None

    def screenshot(self, directory, name):
        path = os.path.join(directory, name)
        self.js("if (document.activeElement) document.activeElement.blur()")
        if not self.driver.save_screenshot(path):
            fail("could not save " + path)
        say(f"ok: screenshot {path}")


def sign_in(page, key):
    page.driver.get(page.base + "/")
    form_key = page.wait("the sign-in form", lambda: page.driver.find_element(By.ID, "signin-key")
                         if page.driver.find_element(By.ID, "signin-view").is_displayed() else None)
    # Every control is labelled.
    label = page.driver.find_element(By.CSS_SELECTOR, "label[for='signin-key']").text
    if "API key" not in label:
        fail(f"the key input's label is {label!r}")
    # A wrong key first: refused, the form stays.
    form_key.send_keys("lf_wrong_key")
    page.driver.find_element(By.ID, "signin-submit").click()
    page.wait("a refused sign-in says so",
              lambda: "refused" in page.driver.find_element(By.ID, "signin-error").text)
    form_key.clear()
    form_key.send_keys(key)
    form_key.send_keys(Keys.ENTER)  # submitted by keyboard
    page.wait("the grid after signing in",
              lambda: page.driver.find_element(By.ID, "grid-view").is_displayed())
    node = page.wait("the node shown", lambda: page.driver.find_element(By.ID, "node").text
                     not in ("", "…", "?") and page.driver.find_element(By.ID, "node").text)
    if not page.driver.find_element(By.ID, "signout").is_displayed():
        fail("no sign-out button once signed in")
    say(f"ok: signed in through the form (a wrong key refused first); served by {node}")


def check_tiles(page, streams):
    def all_loaded():
        tiles = page.tiles()
        names = sorted(t["name"] for t in tiles)
        return names == sorted(streams) and all(t["loaded"] for t in tiles) and tiles
    tiles = page.wait(f"{len(streams)} tiles with loaded images", all_loaded, timeout=30)
    for t in tiles:
        if not t["alt"].startswith(t["name"] + ", "):
            fail(f"tile {t['name']}: alt text {t['alt']!r}")
        if not t["src"].startswith("blob:"):
            fail(f"tile {t['name']}: image src {t['src']!r} is not a blob: URL")
        if "×" not in t["res"]:
            fail(f"tile {t['name']}: no resolution shown ({t['res']!r})")
    page.wait("every tile live, with its age", lambda: all(
        t["state"] == "live" and t["age"].endswith("old") for t in page.tiles()))
    # The tiles asked for small keyframe stills in WebP.
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)"
                   ".filter(u => u.includes('/latest.'))")
    if not urls or not all("latest.webp" in u and "mode=keyframe" in u and "width=320" in u
                           for u in urls):
        fail(f"tiles' still requests: {urls}")
    say(f"ok: {len(tiles)} tiles, images loaded ({', '.join(str(t['width']) + ' px' for t in tiles)}),"
        f" e.g. alt {tiles[0]['alt']!r}")


def check_refresh(page, name):
    before = page.tile(name)
    page.wait(f"tile {name} refreshes after new frames", lambda: (
        lambda t: t and t["version"] > before["version"] and t["src"] != before["src"]
        and t["loaded"])(page.tile(name)))
    after = page.tile(name)
    events = page.js("return document.body.dataset.events")
    if events != "open":
        fail(f"the event stream is {events!r}, not open")
    say(f"ok: tile {name} refreshed on its frame events (version {before['version']} -> "
        f"{after['version']}, a new blob: URL)")


def check_stale(page, name):
    say(f"STOP {name}")  # the driver stops that producer now
    page.wait(f"tile {name} turns stale", lambda: (page.tile(name) or {}).get("state") == "stale",
              timeout=40)
    t = page.tile(name)
    if "stale" not in t["label"] or "stale" not in t["alt"]:
        fail(f"tile {name} stale, but label {t['label']!r}, alt {t['alt']!r}")
    say(f"ok: tile {name} turned stale after its producer stopped (alt {t['alt']!r})")


def check_controls(page, streams, artefacts):
    d = page.driver
    for control in ("filter", "tile-size"):
        if not d.find_element(By.CSS_SELECTOR, f"label[for='{control}']").text:
            fail(f"control {control} has no label")
    f = d.find_element(By.ID, "filter")
    f.send_keys(streams[0])
    page.wait("the filter shows one tile", lambda: [t["name"] for t in page.tiles()
                                                    if not t["hidden"]] == [streams[0]])
    page.js("const f = document.getElementById('filter'); f.value = '';"
            "f.dispatchEvent(new Event('input'));")
    page.wait("the filter cleared shows every tile",
              lambda: len([t for t in page.tiles() if not t["hidden"]]) == len(streams))
    say("ok: the name filter")
    versions = {t["name"]: t["version"] for t in page.tiles()}
    page.js("const s = document.getElementById('tile-size'); s.value = '480';"
            "s.dispatchEvent(new Event('change'));")
    page.wait("large tiles load 480 px stills", lambda: all(
        t["width"] == 480 and t["version"] > versions[t["name"]] for t in page.tiles()
        if t["state"] == "live"))
    page.js("const s = document.getElementById('tile-size'); s.value = '320';"
            "s.dispatchEvent(new Event('change'));")
    page.wait("medium tiles again", lambda: all(t["width"] == 320 for t in page.tiles()
                                                if t["state"] == "live"))
    say("ok: tile size (480 px stills when large)")
    page.wait("images loaded before the desktop screenshot",
              lambda: all(t["loaded"] for t in page.tiles()))
    page.screenshot(artefacts, "grid-desktop.png")
    # A phone: 390 px wide, the grid in one column, nothing wider than the screen.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    page.wait("the grid fits 390 px", lambda: page.js(
        "return document.documentElement.scrollWidth <= 390 && "
        "document.querySelector('#grid .tile').getBoundingClientRect().width <= 390"))
    page.wait("images loaded before the phone screenshot",
              lambda: all(t["loaded"] for t in page.tiles()))
    page.screenshot(artefacts, "grid-phone.png")
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    say("ok: the grid fits a phone's width (390 px)")


def image_digest(page, element_id):
    """SHA-256 of the pixels the image shows now (drawn on a canvas at once: the page may swap
    the image and let its blob: URL go a moment later), with its frame timestamp."""
    return page.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const img = document.getElementById(arguments[0]);
        const c = document.createElement('canvas');
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        const pixels = ctx.getImageData(0, 0, c.width, c.height).data;
        const ts = img.dataset.timestamp;
        crypto.subtle.digest('SHA-256', pixels)
          .then(h => done([Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, '0'))
                           .join(''), ts]))
          .catch(e => done(['error: ' + e, ts]));""", element_id)


def check_stream_page(page, name, artefacts):
    d = page.driver
    link = d.find_element(By.CSS_SELECTOR, f"#grid .tile[data-stream='{name}'] a")
    link.send_keys(Keys.ENTER)  # keyboard: the tile is a link (focus, Enter)
    page.wait("the stream page", lambda: d.find_element(By.ID, "stream-view").is_displayed())
    page.wait("the newest frame at full size", lambda: page.js(
        "const i = document.getElementById('still');"
        "return i.dataset.status === '200' && i.complete && i.naturalWidth > 0 && !i.dataset.at"))
    full = page.js("return document.getElementById('still').naturalWidth")
    page.wait("the fragment timeline", lambda: len(d.find_elements(By.CSS_SELECTOR, "#timeline li")) > 1)
    page.wait("the preview", lambda: page.js(
        "const p = document.getElementById('preview'); return p.complete && p.naturalWidth > 0"),
        timeout=30)
    clip = d.find_element(By.ID, "clip").get_attribute("href")
    if "/clip?start=" not in clip or "&end=" not in clip:
        fail(f"clip link {clip!r}")
    live_digest, live_ts = image_digest(page, "still")
    # The slider, by keyboard: Home is the oldest retained moment.
    slider = d.find_element(By.ID, "time")
    if not d.find_element(By.CSS_SELECTOR, "label[for='time']").text:
        fail("the slider has no label")
    slider.send_keys(Keys.HOME)
    page.wait("the frame at the slider's moment", lambda: page.js(
        "const i = document.getElementById('still');"
        "return i.dataset.at && i.dataset.status === '200' && i.complete && i.naturalWidth > 0"))
    at = int(page.js("return document.getElementById('still').dataset.at"))
    at_digest, at_ts = image_digest(page, "still")
    if at_digest.startswith("error") or at_digest == live_digest:
        fail(f"the slider's frame is the same image as the live one ({at_digest})")
    if not at_ts or not live_ts or at_ts >= live_ts:
        fail(f"the slider's frame ({at_ts}) is not older than the live one ({live_ts})")
    statuses = page.js("return performance.getEntriesByType('resource')"
                       ".filter(e => e.name.includes('latest.jpg?at='))"
                       ".map(e => [e.name, e.responseStatus])")
    if not statuses or any(s != 200 for _, s in statuses):
        fail(f"the ?at= requests: {statuses}")
    say(f"ok: the slider moved back (Home) shows an older frame: at={at}, frame {at_ts} "
        f"(live was {live_ts}), a different image; ?at= answered 200")
    page.screenshot(artefacts, "stream.png")
    d.find_element(By.ID, "live").click()
    page.wait("back to live", lambda: page.js(
        "const i = document.getElementById('still'); return i.dataset.status === '200' && "
        "!i.dataset.at && document.getElementById('live').disabled"))
    say(f"ok: stream page: full-size still ({full} px), preview, timeline, clip link, Live")
    d.find_element(By.ID, "back").send_keys(Keys.ENTER)
    page.wait("the grid again", lambda: d.find_element(By.ID, "grid-view").is_displayed())


def check_sign_out(page):
    page.driver.find_element(By.ID, "signout").click()
    page.wait("the sign-in form after signing out",
              lambda: page.driver.find_element(By.ID, "signin-view").is_displayed())
    status = page.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/v1/streams').then(r => done(r.status)).catch(e => done(String(e)));""")
    if status != 401:
        fail(f"/v1/streams after signing out: {status}")
    say("ok: signed out; the API refuses the browser again (401)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--streams", required=True)
    ap.add_argument("--stop", required=True, help="the stream whose producer the driver stops")
    ap.add_argument("--artefacts", required=True)
    args = ap.parse_args()
    streams = args.streams.split(",")
    os.makedirs(args.artefacts, exist_ok=True)
    live = [s for s in streams if s != args.stop]
    with tempfile.TemporaryDirectory(prefix="lf-chromium-") as profile:
        page = Page(args.base, profile)
        page.driver.set_script_timeout(20)
        try:
            sign_in(page, args.key)
            check_tiles(page, streams)
            check_refresh(page, live[0])
            check_stream_page(page, live[0], args.artefacts)
            check_stale(page, args.stop)
            check_refresh(page, live[-1])
            check_controls(page, streams, args.artefacts)
            check_sign_out(page)
        finally:
            page.driver.quit()
    say("ui checks passed")


if __name__ == "__main__":
    try:
        main()
    except WebDriverException as e:
        say(f"FAIL: webdriver: {e}")
        sys.exit(1)
