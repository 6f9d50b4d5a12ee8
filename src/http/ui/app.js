// lastframe's dashboard: a grid of every stream the signed-in key may see, and
// a page per stream. Plain JavaScript, no framework, nothing from elsewhere.
//
// Bandwidth: a tile loads one small still (a keyframe WebP of the tile's
// width, ~6 KB at 320 px) when it appears, and another only when /v1/events
// says its stream's newest frame changed into a fragment the tile does not
// show yet (at most once per event interval, 1 s by default, and once per
// GOP), or when the tile size changes. Nothing is polled: no event, no request.
'use strict';

(() => {
  const TILE_SIZES = { 240: 'small', 320: 'medium', 480: 'large' };
  const TILE_FORMAT = 'webp';  // latest.webp?mode=keyframe: one decode per GOP on the server
  const PREVIEW_SECONDS = 5;
  const CLIP_SECONDS = 10;

  const $ = (id) => document.getElementById(id);
  const state = {
    session: null,        // GET /ui/session
    streams: new Map(),   // name -> {info, tile, version, loading, pending, ageMs, fetchedAt, url}
    events: null,         // the EventSource
    eventsRetryMs: 1000,
    connectedOnce: false,
    tileWidth: 320,
    filter: '',
    view: null,           // 'grid' | 'stream'
    page: null,           // the stream page's state
  };

  // ---- small helpers ----

  function enc(name) { return encodeURIComponent(name); }

  function ageText(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return 'age unknown';
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms old`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s old`;
    if (s < 3600) return `${Math.round(s / 60)} min old`;
    return `${(s / 3600).toFixed(1)} h old`;
  }

  function timeText(ms) {
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
  }

  function bytesText(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function notice(text) {
    const el = $('notice');
    el.textContent = text || '';
    el.hidden = !text;
  }

  function show(view) {
    state.view = view;
    $('signin-view').hidden = view !== 'signin';
    $('grid-view').hidden = view !== 'grid';
    $('stream-view').hidden = view !== 'stream';
    document.body.dataset.view = view;
  }

  // A fetch of our own API; a 401 means the session ended: back to sign-in.
  async function api(path, options) {
    const res = await fetch(path, Object.assign({ credentials: 'same-origin', cache: 'no-store' },
                                                options || {}));
    if (res.status === 401 && state.session && state.session.auth) {
      signedOut('Your session ended: sign in again.');
      throw new Error('signed out');
    }
    return res;
  }

  async function errorText(res) {
    try {
      const j = await res.json();
      return j.message || j.code || `HTTP ${res.status}`;
    } catch (e) {
      return `HTTP ${res.status}`;
    }
  }

  // Fetches an image into a blob: URL, with what its headers say about the frame.
  async function fetchImage(url) {
    const res = await api(url);
    if (!res.ok) return { ok: false, status: res.status, error: await errorText(res) };
    const blob = await res.blob();
    const age = res.headers.get('X-Frame-Age');
    return {
      ok: true,
      url: URL.createObjectURL(blob),
      bytes: blob.size,
      ageMs: age === null ? null : Number(age),
      fragment: res.headers.get('X-Fragment-Number'),
      timestamp: res.headers.get('X-Frame-Timestamp'),
      fetchedAt: performance.now(),
    };
  }

  // Shows |image| in |img|, letting the blob it replaces go once the new one is up.
  function swapImage(img, image) {
    const old = img.dataset.blob;
    img.dataset.blob = image.url;
    img.src = image.url;
    if (old) {
      const release = () => URL.revokeObjectURL(old);
      img.decode().then(release, release);
    }
  }

  // ---- the session ----

  async function loadSession() {
    const res = await fetch('/ui/session', { credentials: 'same-origin', cache: 'no-store' });
    state.session = await res.json();
    $('node').textContent = state.session.node || '?';
    $('signout').hidden = !(state.session.auth && state.session.signed_in);
    return state.session;
  }

  function signedOut(message) {
    stopEvents();
    clearTiles();
    if (state.session) state.session.signed_in = false;
    $('signout').hidden = true;
    show('signin');
    $('signin-error').textContent = message || '';
    $('signin-key').focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $('signin-key').value.trim();
    $('signin-error').textContent = '';
    $('signin-submit').disabled = true;
    try {
      const res = await fetch('/ui/session', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ key }),
      });
      if (res.status !== 204) {
        $('signin-error').textContent = `Sign-in refused: ${await errorText(res)}`;
        return;
      }
      $('signin-key').value = '';
      await start();
    } finally {
      $('signin-submit').disabled = false;
    }
  }

  async function signOut() {
    await fetch('/ui/session', { method: 'DELETE', credentials: 'same-origin' });
    await loadSession();
    signedOut('Signed out.');
  }

  // ---- the grid ----

  function tileUrl(name, s) {
    return `/v1/streams/${enc(name)}/latest.${TILE_FORMAT}?width=${state.tileWidth}` +
           `&mode=keyframe&v=${s.version + 1}`;
  }

  function stateText(s) {
    const st = s.info.state || 'unknown';
    const reason = s.info.reason || s.info.last_error;
    return st === 'error' && reason ? `error: ${reason}` : st;
  }

  function makeTile(name) {
    const li = document.createElement('li');
    li.className = 'tile';
    li.dataset.stream = name;
    li.dataset.version = '0';
    const a = document.createElement('a');
    a.href = `#/stream/${enc(name)}`;
    a.className = 'tile-link';
    const frame = document.createElement('div');
    frame.className = 'tile-frame';
    const img = document.createElement('img');
    img.className = 'tile-img';
    img.alt = `${name}, loading`;
    img.decoding = 'async';
    frame.appendChild(img);
    const meta = document.createElement('div');
    meta.className = 'tile-meta';
    const title = document.createElement('span');
    title.className = 'tile-name';
    title.textContent = name;
    const st = document.createElement('span');
    st.className = 'tile-state';
    const age = document.createElement('span');
    age.className = 'tile-age';
    const res = document.createElement('span');
    res.className = 'tile-res';
    meta.append(title, st, age, res);
    a.append(frame, meta);
    li.appendChild(a);
    return li;
  }

  function renderTile(name) {
    const s = state.streams.get(name);
    if (!s) return;
    const li = s.tile;
    const st = s.info.state || 'unknown';
    li.dataset.state = st;
    const label = li.querySelector('.tile-state');
    label.textContent = stateText(s);
    label.className = `tile-state state-${st}`;
    const age = s.ageMs === null || s.ageMs === undefined ? null
              : s.ageMs + (performance.now() - s.fetchedAt);
    li.querySelector('.tile-age').textContent = s.version ? ageText(age) : '';
    const w = s.info.width, h = s.info.height;
    li.querySelector('.tile-res').textContent = w && h ? `${w}×${h}` : '';
    // The tile takes the stream's shape (CSSOM, which the CSP allows; no style attribute).
    if (w && h) li.querySelector('.tile-frame').style.aspectRatio = `${w} / ${h}`;
    const img = li.querySelector('.tile-img');
    img.alt = `${name}, ${stateText(s)}, ${s.version ? ageText(age) : 'no still yet'}`;
    li.hidden = state.filter !== '' && !name.toLowerCase().includes(state.filter);
  }

  // Loads a tile's still; a frame event during a load asks for one more after it.
  async function loadTile(name) {
    const s = state.streams.get(name);
    if (!s) return;
    if (s.loading) { s.pending = true; return; }
    s.loading = true;
    try {
      const image = await fetchImage(tileUrl(name, s));
      if (!state.streams.has(name)) { if (image.ok) URL.revokeObjectURL(image.url); return; }
      if (image.ok) {
        s.version += 1;
        s.ageMs = image.ageMs;
        s.fetchedAt = image.fetchedAt;
        s.bytes = image.bytes;
        const img = s.tile.querySelector('.tile-img');
        swapImage(img, image);
        s.tile.dataset.version = String(s.version);
        s.fragment = image.fragment || null;
        s.tile.dataset.fragment = image.fragment || '';
        s.tile.dataset.bytes = String(image.bytes);
        s.tile.classList.remove('no-frame');
      } else {
        s.tile.classList.add('no-frame');
        s.tile.dataset.error = image.error;
      }
      renderTile(name);
    } catch (e) {
      // The session ended (handled), or the network failed: the next event tries again.
    } finally {
      s.loading = false;
      if (s.pending) { s.pending = false; loadTile(name); }
    }
  }

  function addStream(name, info) {
    let s = state.streams.get(name);
    if (s) { Object.assign(s.info, info); renderTile(name); return s; }
    s = { info: Object.assign({}, info), tile: makeTile(name), version: 0, loading: false,
          pending: false, ageMs: null, fetchedAt: 0 };
    state.streams.set(name, s);
    // Kept in name order.
    const grid = $('grid');
    const after = Array.from(grid.children).find((li) => li.dataset.stream > name);
    grid.insertBefore(s.tile, after || null);
    renderTile(name);
    updateCount();
    loadTile(name);
    return s;
  }

  function removeStream(name) {
    const s = state.streams.get(name);
    if (!s) return;
    const img = s.tile.querySelector('.tile-img');
    if (img.dataset.blob) URL.revokeObjectURL(img.dataset.blob);
    s.tile.remove();
    state.streams.delete(name);
    updateCount();
  }

  function clearTiles() {
    for (const name of Array.from(state.streams.keys())) removeStream(name);
  }

  function updateCount() {
    const total = state.streams.size;
    let shown = 0;
    for (const s of state.streams.values()) shown += s.tile.hidden ? 0 : 1;
    $('count').textContent = total === shown ? `(${total})` : `(${shown} of ${total})`;
    $('empty').hidden = shown !== 0;
  }

  async function loadStreams() {
    const res = await api('/v1/streams');
    if (!res.ok) { notice(`Streams: ${await errorText(res)}`); return; }
    const list = (await res.json()).streams || [];
    const seen = new Set();
    for (const info of list) {
      seen.add(info.name);
      addStream(info.name, info);
    }
    for (const name of Array.from(state.streams.keys())) if (!seen.has(name)) removeStream(name);
  }

  // ---- live refresh: Server-Sent Events ----

  function startEvents() {
    stopEvents();
    const es = new EventSource('/v1/events', { withCredentials: true });
    state.events = es;
    document.body.dataset.events = 'connecting';
    es.addEventListener('open', () => {
      state.eventsRetryMs = 1000;
      document.body.dataset.events = 'open';
      notice('');
      if (state.connectedOnce) {
        // Frames may have changed while we were away: one still per tile, and the list again.
        loadStreams().catch(() => {});
        for (const name of state.streams.keys()) loadTile(name);
        if (state.page) refreshPage(true);
      }
      state.connectedOnce = true;
    });
    es.addEventListener('hello', (e) => {
      const hello = JSON.parse(e.data);
      // /ui/session named this node already (with the port the browser reached).
      if (hello.node && !(state.session && state.session.node)) $('node').textContent = hello.node;
    });
    es.addEventListener('state', (e) => {
      const ev = JSON.parse(e.data);
      const info = { state: ev.state, reason: ev.reason || null };
      if (ev.width) info.width = ev.width;
      if (ev.height) info.height = ev.height;
      addStream(ev.stream, info);
      if (state.page && state.page.name === ev.stream) renderPageState();
    });
    es.addEventListener('removed', (e) => {
      const ev = JSON.parse(e.data);
      removeStream(ev.stream);
    });
    es.addEventListener('frame', (e) => {
      const ev = JSON.parse(e.data);
      const s = state.streams.get(ev.stream);
      // A tile shows its stream's newest keyframe: a frame of the fragment it shows already
      // changes nothing there, so a tile loads one still per new fragment (GOP) at most.
      if (s && !(ev.fragment_number && ev.fragment_number === s.fragment)) {
        if (state.view === 'grid') loadTile(ev.stream);
        else s.stale = true;  // loaded when the grid shows again
      }
      if (state.page && state.page.name === ev.stream) pageFrame(ev);
    });
    es.addEventListener('error', () => {
      document.body.dataset.events = 'reconnecting';
      notice('Live updates lost: reconnecting…');
      // EventSource retries by itself after a dropped connection; after a refusal
      // (an HTTP error) it gives up (CLOSED): then we start a new one, backing off.
      if (es.readyState === EventSource.CLOSED) {
        const wait = state.eventsRetryMs;
        state.eventsRetryMs = Math.min(wait * 2, 30000);
        setTimeout(async () => {
          if (state.events !== es) return;
          try {
            const session = await loadSession();
            if (session.auth && !session.signed_in) return signedOut('Your session ended: sign in again.');
          } catch (err) { /* the server is away: try again later */ }
          startEvents();
        }, wait);
      }
    });
  }

  function stopEvents() {
    if (state.events) state.events.close();
    state.events = null;
  }

  // ---- the stream page ----

  function openStreamPage(name) {
    const page = {
      name,
      live: true,
      loading: false,
      pending: false,
      fragments: [],
      fragmentsAt: 0,
      atSeq: 0,
    };
    state.page = page;
    show('stream');
    $('stream-title').textContent = name;
    $('still').alt = `${name}: loading the newest frame`;
    $('still-caption').textContent = '';
    $('at-error').textContent = '';
    $('live').disabled = true;
    $('time-label').textContent = 'live';
    const preview = $('preview');
    preview.alt = `${name}: an animated preview of the last ${PREVIEW_SECONDS} seconds`;
    preview.src = `/v1/streams/${enc(name)}/preview.webp?seconds=${PREVIEW_SECONDS}`;
    renderPageState();
    refreshPage(true);
  }

  function renderPageState() {
    const page = state.page;
    if (!page) return;
    const s = state.streams.get(page.name);
    const el = $('stream-state');
    if (!s) { el.textContent = ''; return; }
    const w = s.info.width, h = s.info.height;
    el.textContent = `State: ${stateText(s)}` + (w && h ? ` · ${w}×${h}` : '') +
                     (s.info.fps ? ` · ${s.info.fps} fps` : '');
    el.dataset.state = s.info.state || '';
  }

  async function refreshPage(withFragments) {
    if (withFragments) await loadFragments();
    if (state.page && state.page.live) loadStill();
  }

  // The exact newest frame (live), or the frame at the slider's moment.
  async function loadStill() {
    const page = state.page;
    if (!page) return;
    if (page.loading) { page.pending = true; return; }
    page.loading = true;
    const seq = ++page.atSeq;
    const at = page.live ? null : Number($('time').value);
    const url = `/v1/streams/${enc(page.name)}/latest.jpg` + (at === null ? '' : `?at=${at}`);
    try {
      const image = await fetchImage(url);
      if (state.page !== page || seq !== page.atSeq) { if (image.ok) URL.revokeObjectURL(image.url); return; }
      const still = $('still');
      if (!image.ok) {
        $('at-error').textContent = `No frame: ${image.error}`;
        still.dataset.status = String(image.status);
        return;
      }
      $('at-error').textContent = '';
      swapImage(still, image);
      still.dataset.status = '200';
      still.dataset.at = at === null ? '' : String(at);
      still.dataset.fragment = image.fragment || '';
      still.dataset.timestamp = image.timestamp || '';
      const when = image.timestamp ? timeText(Date.parse(image.timestamp)) : '';
      const age = image.ageMs === null ? '' : `, ${ageText(image.ageMs)}`;
      still.alt = `${page.name}: ${at === null ? 'the newest frame' : 'the frame at ' + timeText(at)}` +
                  (when ? `, taken ${when}` : '') + age;
      $('still-caption').textContent = (at === null ? 'Live: newest frame' : 'Frame at the chosen moment') +
                                      (when ? ` · ${when}` : '') + age;
    } catch (e) {
      // signed out, or the network: nothing to show
    } finally {
      page.loading = false;
      if (page.pending) { page.pending = false; loadStill(); }
    }
  }

  async function loadFragments() {
    const page = state.page;
    if (!page) return;
    page.fragmentsAt = performance.now();
    let res;
    try { res = await api(`/v1/streams/${enc(page.name)}/fragments`); } catch (e) { return; }
    if (state.page !== page) return;
    if (!res.ok) { $('timeline').textContent = ''; $('at-error').textContent = await errorText(res); return; }
    page.fragments = (await res.json()).fragments || [];
    renderFragments();
  }

  function renderFragments() {
    const page = state.page;
    const frags = page.fragments;
    const list = $('timeline');
    list.textContent = '';
    const bar = $('timeline-bar');
    bar.textContent = '';
    const slider = $('time');
    if (frags.length === 0) {
      slider.disabled = true;
      $('clip').hidden = true;
      return;
    }
    const start = frags[0].producer_timestamp_ms;
    const last = frags[frags.length - 1];
    const end = last.producer_timestamp_ms + Math.max(last.duration_ms, 0);
    const wasAtEnd = page.live;
    slider.disabled = false;
    slider.min = String(start);
    slider.max = String(end);
    if (wasAtEnd) slider.value = String(end);
    const span = Math.max(end - start, 1);
    // Newest first in the list, the most recent 50; all of them in the bar.
    for (const f of frags) {
      const seg = document.createElement('span');
      seg.className = 'seg' + (f.complete ? '' : ' open');
      seg.style.left = `${(100 * (f.producer_timestamp_ms - start)) / span}%`;
      seg.style.width = `${Math.max((100 * f.duration_ms) / span, 0.3)}%`;
      bar.appendChild(seg);
    }
    for (const f of frags.slice(-50).reverse()) {
      const li = document.createElement('li');
      li.textContent = `${timeText(f.producer_timestamp_ms)} · ${(f.duration_ms / 1000).toFixed(1)} s · ` +
                       `${f.frames === null || f.frames === undefined ? '?' : f.frames} frames · ${bytesText(f.bytes)}` +
                       (f.complete ? '' : ' · arriving');
      list.appendChild(li);
    }
    updateClip();
  }

  function updateClip() {
    const page = state.page;
    if (!page || page.fragments.length === 0) return;
    const slider = $('time');
    const at = page.live ? Number(slider.max) : Number(slider.value);
    const from = Math.max(Number(slider.min), at - CLIP_SECONDS * 1000);
    const clip = $('clip');
    clip.hidden = false;
    clip.href = `/v1/streams/${enc(page.name)}/clip?start=${from}&end=${at}&format=mp4`;
    $('clip-range').textContent = `(MP4, ${timeText(from)} to ${timeText(at)})`;
  }

  function pageFrame() {
    const page = state.page;
    if (!page) return;
    // The timeline grows by a fragment a second or so: listed again at most every 5 s.
    if (performance.now() - page.fragmentsAt > 5000) loadFragments();
    if (page.live) loadStill();
  }

  function sliderMoved() {
    const page = state.page;
    if (!page) return;
    const slider = $('time');
    page.live = false;
    $('live').disabled = false;
    $('time-label').textContent = timeText(Number(slider.value));
    updateClip();
    loadStill();
  }

  function backToLive() {
    const page = state.page;
    if (!page) return;
    page.live = true;
    $('live').disabled = true;
    $('time-label').textContent = 'live';
    const slider = $('time');
    slider.value = slider.max;
    updateClip();
    loadStill();
    $('time').focus();
  }

  // ---- routing: #/ (the grid) and #/stream/NAME ----

  function route() {
    if (state.session && state.session.auth && !state.session.signed_in) return;
    const m = location.hash.match(/^#\/stream\/(.+)$/);
    if (m) {
      openStreamPage(decodeURIComponent(m[1]));
      return;
    }
    const wasPage = state.page;
    state.page = null;
    show('grid');
    // Tiles whose frame changed while the stream page was up: one still each now.
    for (const [name, s] of state.streams) if (s.stale) { s.stale = false; loadTile(name); }
    if (wasPage) {
      const link = document.querySelector(`.tile[data-stream="${CSS.escape(wasPage.name)}"] a`);
      if (link) link.focus();
    }
  }

  async function start() {
    const session = await loadSession();
    if (session.auth && !session.signed_in) { signedOut(''); return; }
    route();
    await loadStreams();
    startEvents();
  }

  function setup() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('filter').addEventListener('input', () => {
      state.filter = $('filter').value.trim().toLowerCase();
      for (const name of state.streams.keys()) renderTile(name);
      updateCount();
    });
    $('tile-size').addEventListener('change', () => {
      state.tileWidth = Number($('tile-size').value);
      document.body.dataset.tile = TILE_SIZES[state.tileWidth] || 'medium';
      for (const name of state.streams.keys()) loadTile(name);  // one still each, at the new width
    });
    document.body.dataset.tile = 'medium';
    $('time').addEventListener('change', sliderMoved);
    $('time').addEventListener('input', () => {
      $('time-label').textContent = timeText(Number($('time').value));
    });
    $('live').addEventListener('click', backToLive);
    $('preview-reload').addEventListener('click', () => {
      const page = state.page;
      if (!page) return;
      $('preview').src = `/v1/streams/${enc(page.name)}/preview.webp?seconds=${PREVIEW_SECONDS}&v=${Date.now()}`;
    });
    window.addEventListener('hashchange', route);
    // Ages tick on without asking the server anything.
    setInterval(() => {
      if (state.view === 'grid') for (const name of state.streams.keys()) renderTile(name);
    }, 1000);
    start().catch((e) => notice(`Could not load: ${e.message}`));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', setup);
  else setup();
})();
