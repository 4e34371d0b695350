// viewer.js - the camera grid: polls `state`, plays what the browser's connections allow live.
//
// How it works, and why:
// - Video is an <img> on the MJPEG stream: the browser decodes it natively, one connection
//   per camera. Everything else (`state` polls, snapshots, latency probes) goes through
//   fetch() without credentials, which Chromium sends over a connection of its own: the
//   streams can then use every slot of the page's connection (lighttpd's HTTP/2 allows 8
//   streams per connection; a 9th request would wait forever behind them). Behind a
//   password those requests need credentials and share the streams' connection instead.
// - Connection budget. Over HTTP/1.1 a browser opens at most 6 connections to a server,
//   so at most 5 cameras play live and the others show a snapshot every 2 s, with a
//   note that says why. Over HTTP/2 the server's stream limit is unknown: a live tile
//   that gets no first frame for 6 s while others play is queued by the browser, so the
//   page learns the limit (kept for an hour) and shows the rest as snapshots.
// - Reconnect: a stream that fails is restarted after 1, 2, 4, 8, 10, 10 ... s. A stream
//   that ends cleanly (responder restarted) fires nothing: the camera's viewer count in
//   `state`, which includes us, tells.
// - Hidden tab (visibilitychange) or another camera in full screen: streams stop (src
//   removed, which closes the request) and the last frame stays as a poster.
// - Latency: once a second one live camera (round robin; only the full-screen one when
//   there is one) gets a 3-frame probe, `stream?headers=1&frames=3`, read with fetch().
//   Its first part is sent at once, so its X-Capd-Send against the request's round trip
//   aligns the clocks (NTP-style, error at most half the round trip; the sample with the
//   shortest round trip of the last 8 wins). Latency = arrival of a later part's last byte,
//   in server time, minus its X-Timestamp (capture). Costs 3 frames per probe, not a
//   second stream per camera. fps comes from `state` (capped by this viewer's choice).
'use strict';

const POLL_MS = 2000;
const STATE_TIMEOUT_MS = 5000;
// A failed `state` shows the problem only after this many polls in a row.
const STATE_FAILURES_BEFORE_PROBLEM = 2;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 10000;
const STALL_MS = 6000;
const SNAPSHOT_EVERY_MS = 2000;
const SNAPSHOT_TIMEOUT_MS = 8000;
const PROBE_EVERY_MS = 1000;
const PROBE_FRAMES = 3;
const CLOCK_SAMPLES = 8;
const GONE_FORGET_MS = 10 * 60 * 1000;
const H1_LIVE_LIMIT = 5;
const LEARNED_LIMIT_KEEP_MS = 60 * 60 * 1000;
// "Auto" frame rate: full rate in full screen and for small grids; beyond this many
// live tiles each grid stream is capped, which halves a 30 fps camera's bandwidth.
const AUTO_FULL_RATE_TILES = 4;
const AUTO_GRID_FPS = 15;
const FPS_CHOICES = [30, 15, 10, 5, 2, 1];

// Page options from the query string. stats=0 hides the numbers that change on
// their own (fps, latency): for wall displays, and for screenshots that must compare equal.
// latency=0 sends no latency probes. control=shared sends control requests with
// credentials from the start, as behind a password (and as browsers that keep them on
// the streams' connection do): for tests.
const params = new URLSearchParams(location.search);
const options = {
    stats: params.get('stats') !== '0',
    probes: params.get('latency') !== '0',
    sharedControl: params.get('control') === 'shared',
};

const tiles = new Map(); // camera name -> Tile
let fullTile = null; // the tile shown full screen
let stateFailures = 0;
let serverProblem = '';
let pollTimer = 0;
let pollRunning = false;
let plannedLive = 0; // tiles that arrange() makes live

function plural(n, word) {
    return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function pageVisible() {
    return document.visibilityState !== 'hidden';
}

// Wall-clock time in ms with sub-ms resolution.
function nowMs() {
    return performance.timeOrigin + performance.now();
}

function storageGet(key) {
    try {
        return window.localStorage.getItem(key);
    } catch (err) {
        return null; // storage disabled: settings last for this page only
    }
}

function storageSet(key, value) {
    try {
        if (value === null) {
            window.localStorage.removeItem(key);
        } else {
            window.localStorage.setItem(key, value);
        }
    } catch (err) {
        // as above
    }
}

// ---- requests other than the streams ------------------------------------------------------

const control = { credentials: options.sharedControl ? 'same-origin' : 'omit' };

// fetch() for state, snapshots and probes; see the top of the file for why without
// credentials. On a 401 it retries once with them, and keeps them from then on.
async function controlFetch(url, signal) {
    const init = { cache: 'no-store', credentials: control.credentials, signal };
    const response = await fetch(url, init);
    if (response.status !== 401 || control.credentials !== 'omit') {
        return response;
    }
    control.credentials = 'same-origin';
    budget.sharesConnection = true;
    budget.apply();
    setTimeout(arrange, 0);
    return fetch(url, { ...init, credentials: control.credentials });
}

// ---- how many streams may play at once ----------------------------------------------------

const budget = {
    protocol: '', // 'http/1.1', 'h2', 'h3' or '' when the browser does not tell
    limit: Infinity,
    reason: '', // 'http1': the browser's limit; 'server': learned from a stalled stream
    sharesConnection: options.sharedControl, // control requests use the streams' connection

    init() {
        const nav = performance.getEntriesByType('navigation')[0];
        this.protocol = (nav && nav.nextHopProtocol) || '';
        const learned = this.loadLearned();
        this.apply();
        if (learned && learned < this.limit) {
            this.limit = learned;
            this.reason = 'server';
        }
        const chip = document.getElementById('protocol');
        const names = {
            'http/1.1': 'HTTP/1.1',
            'http/1.0': 'HTTP/1.0',
            h2: 'HTTP/2',
            h3: 'HTTP/3',
        };
        chip.textContent = names[this.protocol] || '';
        chip.hidden = !chip.textContent;
        chip.title = 'Protocol between this browser and the server';
    },

    isHttp1() {
        return this.protocol.startsWith('http/1');
    },

    // The browser's own limit: 6 connections per server over HTTP/1.x; one is kept
    // free for downloads, and one more when control requests share the pool.
    apply() {
        if (this.isHttp1()) {
            this.limit = H1_LIVE_LIMIT - (this.sharesConnection ? 1 : 0);
            this.reason = 'http1';
        }
    },

    storageKey() {
        return `capd.streamLimit.${location.host}.${this.protocol}`;
    },

    loadLearned() {
        const saved = (storageGet(this.storageKey()) || '').split(' ');
        const limit = Number(saved[0]);
        const when = Number(saved[1]);
        if (limit > 0 && Date.now() - when < LEARNED_LIMIT_KEEP_MS) {
            return limit;
        }
        return 0;
    },

    // `playing` streams work and one more waits: that is all the connection takes.
    // Remembered for the next visit only when `remember` and not over HTTP/1.1, where
    // another tab may hold the connections.
    learn(playing, remember) {
        const limit = Math.max(1, playing - (this.sharesConnection ? 1 : 0));
        if (limit >= this.limit) {
            return;
        }
        this.limit = limit;
        if (!this.isHttp1()) {
            this.reason = 'server';
            if (remember) {
                storageSet(this.storageKey(), `${limit} ${Date.now()}`);
            }
        }
    },
};

// ---- one camera ------------------------------------------------------------------------------

// One camera: its element, what it shows (live stream, refreshed snapshot or paused) and
// the retry schedule. Relative URLs throughout, so the page works under any prefix.
class Tile {
    constructor(name) {
        this.name = name;
        this.cam = null; // latest `state` entry
        this.present = true; // listed by `state`
        this.goneSince = 0;
        this.index = 0;
        this.promotedAt = 0; // "Watch live" puts a snapshot tile before the others
        this.mode = ''; // 'live', 'snapshot' or 'paused'
        this.status = ''; // see setStatus()
        this.streamUrl = '';
        this.connectSince = 0;
        this.retryDelay = RETRY_FIRST_MS;
        this.failures = 0; // stream failures since the last frame
        this.retryTimer = 0;
        this.snapshotTimer = 0;
        this.snapshotAbort = null;
        this.objectUrl = '';
        this.quietPolls = 0; // polls in a row that counted no viewer while we play
        this.seenCounted = false;
        this.latencyMs = NaN;
        this.latencyError = 0;
        this.downloading = false;
        this.fpsChoice = storageGet(`capd.fps.${name}`) || 'auto';

        const template = document.getElementById('tile-template');
        this.el = template.content.firstElementChild.cloneNode(true);
        this.el.dataset.cam = name;
        this.img = this.el.querySelector('.video');
        this.poster = this.el.querySelector('.poster');
        this.img.alt = `Live video from ${name}`;
        this.img.addEventListener('load', () => this.onImageLoad());
        this.img.addEventListener('error', () => this.onImageError());
        this.el.querySelector('.name').textContent = name;
        this.el.querySelector('.name').title = name;

        const media = this.el.querySelector('.media');
        media.addEventListener('click', (event) => {
            if (!event.target.closest('button')) {
                toggleFull(this);
            }
        });
        media.addEventListener('keydown', (event) => {
            if (event.key === 'Enter' || event.key === ' ') {
                event.preventDefault();
                toggleFull(this);
            }
        });
        this.el.querySelector('.full-btn').addEventListener('click', () => toggleFull(this));
        this.el.querySelector('.live-btn').addEventListener('click', () => {
            this.promotedAt = Date.now();
            arrange();
        });
        this.snapshotButton = this.el.querySelector('.snapshot-btn');
        this.snapshotButton.addEventListener('click', () => this.downloadSnapshot());
        this.fpsSelect = this.el.querySelector('.fps-select');
        this.fpsSelect.addEventListener('change', () => {
            this.fpsChoice = this.fpsSelect.value;
            storageSet(`capd.fps.${name}`, this.fpsChoice === 'auto' ? null : this.fpsChoice);
            arrange();
        });
    }

    // ---- what the tile shows

    // The fps cap of this viewer's stream, 0 for none.
    fpsCap() {
        const nominal = this.cam ? Number(this.cam.nominal_fps) || 0 : 0;
        let cap = 0;
        if (this.fpsChoice === 'auto') {
            const big = plannedLive > AUTO_FULL_RATE_TILES && fullTile !== this;
            cap = big ? AUTO_GRID_FPS : 0;
        } else {
            cap = Number(this.fpsChoice) || 0;
        }
        // A cap at or above the camera's rate changes nothing: leave the URL plain.
        return cap > 0 && (nominal <= 0 || cap < nominal) ? cap : 0;
    }

    snapshotUrl() {
        return `snapshot?${new URLSearchParams({ cam: this.name })}`;
    }

    wantedStreamUrl() {
        const query = new URLSearchParams({ cam: this.name });
        const cap = this.fpsCap();
        if (cap > 0) {
            query.set('fps', String(cap));
        }
        return `stream?${query}`;
    }

    setMode(mode) {
        const url = mode === 'live' ? this.wantedStreamUrl() : '';
        if (mode === this.mode && url === this.streamUrl) {
            return;
        }
        if (this.status === 'playing' || this.status === 'showing') {
            this.keepPoster();
        }
        this.stop();
        this.mode = mode;
        this.el.dataset.mode = mode;
        this.retryDelay = RETRY_FIRST_MS;
        if (mode === 'live') {
            this.play(url, false);
        } else if (mode === 'snapshot') {
            this.setStatus('loading');
            this.refreshSnapshot();
        } else {
            this.setStatus('paused');
        }
        this.renderMeta();
    }

    // Ends whatever request the tile has open. Removing src closes a stream.
    stop() {
        clearTimeout(this.retryTimer);
        clearTimeout(this.snapshotTimer);
        this.retryTimer = 0;
        this.snapshotTimer = 0;
        if (this.snapshotAbort) {
            this.snapshotAbort.abort();
            this.snapshotAbort = null;
        }
        this.img.removeAttribute('src');
        this.streamUrl = '';
        this.quietPolls = 0;
    }

    // The current picture stays on a canvas under the image while the stream is off.
    keepPoster() {
        const width = this.img.naturalWidth;
        const height = this.img.naturalHeight;
        if (!width || !height) {
            return;
        }
        try {
            this.poster.width = width;
            this.poster.height = height;
            this.poster.getContext('2d').drawImage(this.img, 0, 0);
        } catch (err) {
            // nothing to keep: the tile shows its overlay instead
        }
    }

    // (Re)starts the stream; a retry adds a parameter the responder ignores so that no
    // cache can answer it.
    play(url, cacheBust) {
        clearTimeout(this.retryTimer);
        this.retryTimer = 0;
        this.streamUrl = url;
        this.connectSince = Date.now();
        this.setStatus('connecting');
        this.img.src = cacheBust ? `${url}&_=${Date.now()}` : url;
    }

    // status: live 'connecting' | 'playing' | 'retrying', snapshot 'loading' | 'showing' |
    // 'retrying', paused 'paused'.
    setStatus(status) {
        this.status = status;
        this.el.dataset.status = status;
        this.renderOverlay();
        this.renderBadge();
    }

    onImageLoad() {
        if (this.mode === 'live') {
            this.retryDelay = RETRY_FIRST_MS;
            this.failures = 0;
            this.setStatus('playing');
            // The poster now shows an older stream: replace it with this one's picture.
            this.poster.width = 0;
            setTimeout(() => this.status === 'playing' && this.keepPoster(), 500);
        } else if (this.mode === 'snapshot') {
            this.setStatus('showing');
        }
    }

    onImageError() {
        if (this.mode === 'live' && this.img.hasAttribute('src')) {
            this.streamFailed();
        }
    }

    // Retries after 1, 2, 4, 8, 10, 10 ... seconds until a frame arrives. A camera that
    // `state` no longer lists is not asked for: it resumes when it is back.
    streamFailed() {
        if (this.mode !== 'live' || this.retryTimer) {
            return;
        }
        this.keepPoster();
        this.failures++;
        this.setStatus('retrying');
        if (!this.present) {
            return;
        }
        this.retryTimer = setTimeout(() => {
            this.retryTimer = 0;
            this.play(this.wantedStreamUrl(), true);
        }, this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    }

    retryNow() {
        if (this.mode === 'live' && this.retryTimer && this.present) {
            this.retryDelay = RETRY_FIRST_MS;
            this.play(this.wantedStreamUrl(), true);
        }
    }

    // One snapshot, then the next after SNAPSHOT_EVERY_MS (longer after failures).
    async refreshSnapshot() {
        this.snapshotTimer = 0;
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(), SNAPSHOT_TIMEOUT_MS);
        this.snapshotAbort = abort;
        let delay = SNAPSHOT_EVERY_MS;
        try {
            const response = await controlFetch(this.snapshotUrl(), abort.signal);
            if (!response.ok) {
                throw new Error(`HTTP ${response.status}`);
            }
            const blob = await response.blob();
            if (this.mode !== 'snapshot' || this.snapshotAbort !== abort) {
                return;
            }
            const old = this.objectUrl;
            this.objectUrl = URL.createObjectURL(blob);
            this.img.src = this.objectUrl;
            if (old) {
                URL.revokeObjectURL(old);
            }
            this.retryDelay = RETRY_FIRST_MS;
        } catch (err) {
            if (this.snapshotAbort !== abort) {
                return; // stopped on purpose
            }
            if (this.status !== 'showing') {
                this.setStatus('retrying');
            }
            delay = Math.max(this.retryDelay, SNAPSHOT_EVERY_MS);
            this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        } finally {
            clearTimeout(timer);
        }
        if (this.mode === 'snapshot' && this.snapshotAbort === abort) {
            this.snapshotAbort = null;
            this.snapshotTimer = setTimeout(() => this.refreshSnapshot(), delay);
        }
    }

    // ---- checks at each poll

    // A broken stream fires no error once its first frame is in (Chromium): the image
    // just turns empty.
    checkStream() {
        if (this.mode !== 'live' || this.status !== 'playing') {
            return;
        }
        if (this.img.complete && this.img.naturalWidth === 0) {
            this.streamFailed();
        } else {
            this.keepPoster(); // so that a stream that breaks leaves a recent picture
        }
    }

    // A stream that never delivered its first frame while the camera is fine: the browser
    // holds the request back for want of a connection.
    isStalled() {
        return (
            this.mode === 'live' &&
            this.status === 'connecting' &&
            this.present &&
            this.cam &&
            this.cam.online &&
            Date.now() - this.connectSince > STALL_MS
        );
    }

    // A cleanly ended stream (e.g. the responder restarted) keeps its last frame and
    // fires nothing at all. But our stream counts as a viewer, so an online camera
    // without viewers for two polls has lost it: one poll when `state` had failed just
    // before (the responder restarting is the usual reason), since then the count of a
    // live stream had long caught up. Trusted only once the count has included us: capd
    // may lack the permission to count viewers.
    checkViewers(afterOutage) {
        const cam = this.cam;
        if (this.mode !== 'live' || this.status !== 'playing' || !cam) {
            this.quietPolls = 0;
            return;
        }
        const viewers = cam.viewers | 0;
        this.seenCounted = this.seenCounted || viewers > 0;
        this.quietPolls = cam.online && viewers === 0 && this.seenCounted ? this.quietPolls + 1 : 0;
        if (this.quietPolls >= (afterOutage ? 1 : 2)) {
            this.quietPolls = 0;
            this.streamFailed();
        }
    }

    // ---- labels

    // afterOutage: the previous `state` request failed.
    update(cam, afterOutage) {
        this.cam = cam;
        this.present = true;
        this.goneSince = 0;
        const width = cam.width | 0;
        const height = cam.height | 0;
        this.el.querySelector('.size').textContent = width > 0 ? `${width}×${height}` : '';
        this.fillFpsChoices(Number(cam.nominal_fps) || 0);
        this.el.classList.toggle('is-offline', !cam.online);
        this.renderBadge();
        this.renderOverlay();
        this.renderMeta();
        this.checkViewers(afterOutage);
    }

    // The camera left `state` (capd stopped and removed its ring).
    markGone() {
        if (!this.present) {
            return;
        }
        this.present = false;
        this.goneSince = Date.now();
        this.el.classList.add('is-offline');
        this.renderBadge();
        this.renderOverlay();
        this.renderMeta();
    }

    fillFpsChoices(nominal) {
        const key = `${nominal}|${this.fpsChoice}`;
        if (this.fpsSelect.dataset.key === key) {
            return;
        }
        this.fpsSelect.dataset.key = key;
        const choices = [['auto', 'Auto']];
        for (const fps of FPS_CHOICES) {
            if (nominal <= 0 || fps < nominal) {
                choices.push([String(fps), `${fps} fps`]);
            }
        }
        if (!choices.some(([value]) => value === this.fpsChoice)) {
            choices.push([this.fpsChoice, `${this.fpsChoice} fps`]);
        }
        const nodes = choices.map(([value, label]) => new Option(label, value));
        this.fpsSelect.replaceChildren(...nodes);
        this.fpsSelect.value = this.fpsChoice;
    }

    renderBadge() {
        const badge = this.el.querySelector('.badge');
        const cam = this.cam;
        let text = 'Live';
        let tone = 'good';
        if (!this.present || !cam || !cam.online) {
            [text, tone] = ['Offline', 'bad'];
        } else if (cam.state === 'no-signal') {
            [text, tone] = ['No signal', 'warn'];
        } else if (cam.state === 'starting' || cam.state === 'idle') {
            [text, tone] = ['Starting', 'warn'];
        } else if (this.mode === 'snapshot') {
            [text, tone] = ['Snapshot', 'warn'];
        } else if (this.mode === 'paused') {
            [text, tone] = ['Paused', ''];
        } else if (this.status !== 'playing') {
            [text, tone] = this.failures > 0 ? ['Reconnecting', 'warn'] : ['Connecting', ''];
        }
        badge.querySelector('.badge-text').textContent = text;
        badge.dataset.tone = tone;
    }

    renderOverlay() {
        let text = '';
        let kind = 'busy';
        if (!this.present) {
            [text, kind] = ['Camera stopped · it will resume here when capd is back', 'info'];
        } else if (this.status === 'connecting') {
            text =
                liveTileCount() > 1 && Date.now() - this.connectSince > STALL_MS / 2
                    ? 'Waiting for a free connection…'
                    : 'Connecting…';
        } else if (this.status === 'loading') {
            text = 'Loading snapshot…';
        } else if (this.status === 'retrying') {
            const why = serverProblem ? 'Server not answering' : 'Connection lost';
            text = `${why} · reconnecting…`;
        } else if (this.status === 'paused' && !pageVisible()) {
            [text, kind] = ['Paused while this tab is hidden', 'info'];
        }
        const overlay = this.el.querySelector('.overlay-text');
        if (overlay.textContent !== text) {
            overlay.textContent = text;
        }
        if (text) {
            this.el.dataset.overlay = kind;
        } else {
            delete this.el.dataset.overlay;
        }
    }

    renderMeta() {
        const cam = this.cam;
        const online = this.present && cam && cam.online;
        const fpsEl = this.el.querySelector('.fps');
        const latencyEl = this.el.querySelector('.latency');
        this.snapshotButton.disabled = !online || this.downloading;
        if (serverProblem) {
            fpsEl.textContent = '';
            latencyEl.textContent = '';
            return;
        }
        if (!online) {
            fpsEl.textContent = this.present ? 'offline' : 'stopped';
            latencyEl.textContent = '';
            return;
        }
        if (this.mode === 'snapshot') {
            fpsEl.textContent = `snapshot every ${SNAPSHOT_EVERY_MS / 1000} s`;
            latencyEl.textContent = '';
            return;
        }
        // Whole numbers from 10 fps up, and for steady low rates; 2.5 fps stays 2.5.
        const format = (fps) =>
            fps >= 10 || Math.abs(fps - Math.round(fps)) < 0.1
                ? String(Math.round(fps))
                : fps.toFixed(1);
        const source = Number(cam.fps) || 0;
        const cap = this.mode === 'live' ? this.fpsCap() : 0;
        if (source <= 0) {
            fpsEl.textContent = '– fps'; // capd measures its rate over its first second
        } else if (cap > 0 && cap < source) {
            fpsEl.textContent = `${format(cap)} of ${format(source)} fps`;
        } else {
            fpsEl.textContent = `${format(source)} fps`;
        }
        fpsEl.title =
            cap > 0
                ? `This stream is capped at ${cap} fps; the camera sends ${source} fps`
                : 'Frames per second the camera sends';
        if (Number.isFinite(this.latencyMs) && this.mode === 'live') {
            const ms = this.latencyMs;
            latencyEl.textContent =
                ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
            latencyEl.title =
                'Latency: capture to arrival in this browser, sampled every few ' +
                `seconds (clocks aligned to ±${Math.max(1, Math.round(this.latencyError))} ms)`;
        } else {
            latencyEl.textContent = '';
        }
    }

    setLatency(ms, error) {
        this.latencyMs = ms;
        this.latencyError = error;
        this.renderMeta();
    }

    // ---- snapshot download

    // Fetched (on the control connection) and saved from a blob, with the camera's name
    // and the time in the file name.
    async downloadSnapshot() {
        const button = this.snapshotButton;
        this.downloading = true;
        button.disabled = true;
        button.classList.remove('failed');
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(), SNAPSHOT_TIMEOUT_MS);
        try {
            const response = await controlFetch(this.snapshotUrl(), abort.signal);
            if (!response.ok) {
                throw new Error(`the server answered ${response.status}`);
            }
            const url = URL.createObjectURL(await response.blob());
            const link = document.createElement('a');
            link.href = url;
            link.download = `${this.name}-${fileTimestamp(new Date())}.jpg`;
            document.body.append(link);
            link.click();
            link.remove();
            setTimeout(() => URL.revokeObjectURL(url), 60000);
            button.title = 'Download a snapshot (JPEG)';
        } catch (err) {
            button.classList.add('failed');
            button.title = `No snapshot: ${err.name === 'AbortError' ? 'timed out' : err.message}`;
        } finally {
            clearTimeout(timer);
            this.downloading = false;
            this.renderMeta();
        }
    }

    destroy() {
        this.stop();
        if (this.objectUrl) {
            URL.revokeObjectURL(this.objectUrl);
        }
        this.el.remove();
    }
}

function fileTimestamp(date) {
    const two = (n) => String(n).padStart(2, '0');
    return (
        `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}_` +
        `${two(date.getHours())}-${two(date.getMinutes())}-${two(date.getSeconds())}`
    );
}

function liveTileCount() {
    let count = 0;
    for (const tile of tiles.values()) {
        count += tile.mode === 'live' ? 1 : 0;
    }
    return count;
}

// ---- what plays where ------------------------------------------------------------------------

// Gives each tile its mode: live within the budget (tiles promoted with "Watch live"
// first, then grid order), snapshots beyond it, paused when the tab is hidden or
// another camera is full screen; a camera that left `state` pauses on its last frame.
function arrange() {
    const ordered = [...tiles.values()].sort((a, b) => a.index - b.index);
    const candidates = ordered.filter((tile) => tile.present);
    candidates.sort((a, b) => b.promotedAt - a.promotedAt || a.index - b.index);
    const live = new Set(candidates.slice(0, budget.limit));
    // Decide first, then apply: the fps cap of "auto" depends on how many play.
    const modes = new Map();
    for (const tile of ordered) {
        let mode = live.has(tile) ? 'live' : 'snapshot';
        if (!pageVisible() || !tile.present || (fullTile && fullTile !== tile)) {
            mode = 'paused';
        } else if (fullTile === tile) {
            mode = 'live';
        }
        modes.set(tile, mode);
    }
    plannedLive = [...modes.values()].filter((mode) => mode === 'live').length;
    // Stop before starting, so that a swap never needs one connection more.
    for (const [tile, mode] of modes) {
        if (mode !== 'live') {
            tile.setMode(mode);
        }
    }
    for (const [tile, mode] of modes) {
        if (mode === 'live') {
            tile.setMode(mode);
        }
    }
    renderNotice();
}

function toggleFull(tile) {
    if (fullTile === tile) {
        leaveFull();
        return;
    }
    if (fullTile) {
        fullTile.el.classList.remove('is-full');
    }
    fullTile = tile;
    tile.el.classList.add('is-full');
    document.body.classList.add('has-full');
    // The real full screen when the browser grants it; the tile covers the window anyway.
    if (document.fullscreenEnabled && !document.fullscreenElement) {
        document.documentElement.requestFullscreen().catch(() => {});
    }
    arrange();
    tile.el.querySelector('.media').focus({ preventScroll: true });
}

function leaveFull() {
    if (!fullTile) {
        return;
    }
    const tile = fullTile;
    fullTile = null;
    tile.el.classList.remove('is-full');
    document.body.classList.remove('has-full');
    if (document.fullscreenElement) {
        document.exitFullscreen().catch(() => {});
    }
    arrange();
}

document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
        leaveFull();
    }
});

// Leaving the browser's full screen (Esc, F11) leaves ours too.
document.addEventListener('fullscreenchange', () => {
    if (!document.fullscreenElement) {
        leaveFull();
    }
});

// ---- the header and the notice ---------------------------------------------------------------

function showSummary() {
    const summary = document.getElementById('summary');
    summary.classList.toggle('warn', Boolean(serverProblem));
    if (serverProblem) {
        summary.textContent = 'Server not answering';
        return;
    }
    const all = [...tiles.values()];
    const online = all.filter((tile) => tile.present && tile.cam && tile.cam.online).length;
    summary.textContent = all.length ? `${plural(all.length, 'camera')} · ${online} online` : '';
}

function renderNotice() {
    const notice = document.getElementById('notice');
    const all = [...tiles.values()].filter((tile) => tile.present);
    const snapshots = all.filter((tile) => tile.mode === 'snapshot').length;
    let title = '';
    let text = '';
    if (serverProblem) {
        title = 'Server not answering.';
        text =
            `The page asks again every ${POLL_MS / 1000} s (${serverProblem}); ` +
            'the cameras reconnect by themselves.';
    } else if (snapshots > 0) {
        const rest = `${plural(snapshots, 'camera')} ${snapshots === 1 ? 'shows' : 'show'}`;
        const every = `${SNAPSHOT_EVERY_MS / 1000} s`;
        title = `${all.length - snapshots} of ${all.length} cameras play live.`;
        if (budget.reason === 'http1') {
            text =
                'This page came over HTTP/1.1, where a browser opens at most 6 connections ' +
                `to a server and each live camera holds one. So the other ${rest} a new ` +
                `snapshot every ${every}. “Watch live” on a camera swaps it in; served over ` +
                'HTTPS with HTTP/2, every camera plays live.';
        } else {
            text =
                `The server takes at most ${budget.limit} streams at once on one ` +
                `connection, so the other ${rest} a new snapshot every ${every}. ` +
                '“Watch live” on a camera swaps it in.';
        }
    }
    notice.hidden = !title;
    document.body.classList.toggle('has-notice', Boolean(title));
    notice.classList.toggle('bad', Boolean(serverProblem));
    document.getElementById('notice-title').textContent = title;
    document.getElementById('notice-text').textContent = text;
}

// ---- state ---------------------------------------------------------------------------------

// Brings the grid in line with the camera list: new tiles in list order, vanished ones
// kept as offline for a while, the others only relabelled.
function render(cameras, afterOutage) {
    const grid = document.getElementById('grid');
    const seen = new Set();
    cameras.forEach((cam) => {
        const name = String(cam.name);
        seen.add(name);
        let tile = tiles.get(name);
        if (!tile) {
            tile = new Tile(name);
            tiles.set(name, tile);
        }
        tile.update(cam, afterOutage);
    });
    for (const [name, tile] of tiles) {
        if (!seen.has(name)) {
            tile.markGone();
            if (Date.now() - tile.goneSince > GONE_FORGET_MS) {
                if (fullTile === tile) {
                    leaveFull();
                }
                tile.destroy();
                tiles.delete(name);
            }
        }
    }
    // Grid order: the cameras `state` lists, in its order, then those that left.
    const order = [...tiles.values()].sort(
        (a, b) => (a.present ? 0 : 1) - (b.present ? 0 : 1) || a.name.localeCompare(b.name),
    );
    order.forEach((tile, index) => {
        tile.index = index;
        if (grid.children[index] !== tile.el) {
            grid.insertBefore(tile.el, grid.children[index] || null);
        }
    });
    grid.dataset.count = String(tiles.size);
    // All cells take the first camera's shape, so rows line up; others letterbox.
    const first = cameras[0];
    if (first && first.width > 0 && first.height > 0) {
        grid.style.setProperty('--aspect', `${first.width} / ${first.height}`);
        grid.style.setProperty('--aspect-num', String(first.width / first.height));
    }
    arrange();
    renderEmpty();
}

function renderEmpty() {
    document.getElementById('empty').hidden = tiles.size > 0;
    document.getElementById('empty-title').textContent = serverProblem
        ? 'Cannot reach the camera server'
        : 'No camera is running';
    document.getElementById('empty-detail').textContent = serverProblem
        ? `The server did not answer (${serverProblem}). ` +
          `Trying again every ${POLL_MS / 1000} seconds.`
        : `This page looks again every ${POLL_MS / 1000} seconds.`;
}

async function fetchState() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), STATE_TIMEOUT_MS);
    try {
        const response = await controlFetch('state', abort.signal);
        if (!response.ok) {
            throw new Error(`HTTP ${response.status}`);
        }
        return await response.json();
    } finally {
        clearTimeout(timer);
    }
}

// A tile whose stream waits for a connection: the budget is what plays now.
function checkStalls() {
    const stalled = [...tiles.values()].filter((tile) => tile.isStalled());
    if (stalled.length === 0) {
        return;
    }
    const playing = [...tiles.values()].filter(
        (tile) => tile.mode === 'live' && tile.status === 'playing',
    ).length;
    if (playing > 0) {
        budget.learn(playing, true);
        arrange();
    }
}

// One poll at a time: the next is scheduled when this one is done. None while hidden.
async function poll() {
    clearTimeout(pollTimer);
    pollTimer = 0;
    if (pollRunning || !pageVisible()) {
        return;
    }
    pollRunning = true;
    tiles.forEach((tile) => tile.checkStream());
    checkStalls();
    try {
        const state = await fetchState();
        const wasDown = stateFailures > 0;
        stateFailures = 0;
        serverProblem = '';
        render(state && Array.isArray(state.cameras) ? state.cameras : [], wasDown);
        if (wasDown) {
            // The server is back: no need to wait out the back-off.
            tiles.forEach((tile) => tile.retryNow());
        }
    } catch (err) {
        stateFailures++;
        // Streams play but `state` never got an answer: the browser sends control requests
        // on the streams' connection, and they took every slot. Make room for one.
        const playing = [...tiles.values()].filter(
            (tile) => tile.mode === 'live' && tile.status === 'playing',
        ).length;
        if (err.name === 'AbortError' && playing >= 2) {
            budget.sharesConnection = true;
            budget.learn(playing, false); // a server that hangs looks the same: not kept
            arrange();
        }
        if (stateFailures >= STATE_FAILURES_BEFORE_PROBLEM || tiles.size === 0) {
            serverProblem = err.name === 'AbortError' ? 'timed out' : err.message;
            tiles.forEach((tile) => tile.renderMeta());
            renderNotice();
            renderEmpty();
        }
    }
    tiles.forEach((tile) => tile.renderOverlay());
    showSummary();
    pollRunning = false;
    if (pageVisible()) {
        pollTimer = setTimeout(poll, POLL_MS);
    }
}

// ---- latency probes --------------------------------------------------------------------------

const clockSamples = []; // {offset, rtt}: server time = browser time + offset

function bestClockSample() {
    let best = null;
    for (const sample of clockSamples) {
        if (!best || sample.rtt < best.rtt) {
            best = sample;
        }
    }
    return best;
}

function indexOfBytes(haystack, needle, from) {
    outer: for (let i = from; i <= haystack.length - needle.length; i++) {
        for (let j = 0; j < needle.length; j++) {
            if (haystack[i + j] !== needle[j]) {
                continue outer;
            }
        }
        return i;
    }
    return -1;
}

// Reads a multipart stream with Content-Length parts (headers=1 gives that layout) and
// returns each part's headers with the arrival times of its header block and its last byte.
async function readParts(reader, wanted) {
    const separator = new TextEncoder().encode('\r\n\r\n');
    const decoder = new TextDecoder();
    const parts = [];
    let buffer = new Uint8Array(0);
    let part = null; // headers read, body pending
    while (parts.length < wanted) {
        const { value, done } = await reader.read();
        if (done) {
            break;
        }
        const arrival = nowMs();
        const joined = new Uint8Array(buffer.length + value.length);
        joined.set(buffer);
        joined.set(value, buffer.length);
        buffer = joined;
        for (;;) {
            if (!part) {
                const end = indexOfBytes(buffer, separator, 0);
                if (end < 0) {
                    break;
                }
                const headers = {};
                for (const line of decoder.decode(buffer.subarray(0, end)).split('\r\n')) {
                    const colon = line.indexOf(':');
                    if (colon > 0 && !line.startsWith('--')) {
                        const key = line.slice(0, colon).trim().toLowerCase();
                        headers[key] = line.slice(colon + 1).trim();
                    }
                }
                const length = Number(headers['content-length']);
                if (!(length >= 0)) {
                    throw new Error('part without Content-Length');
                }
                part = { headers, length, headAt: arrival, endAt: 0 };
                buffer = buffer.subarray(end + separator.length);
            }
            if (buffer.length < part.length) {
                break;
            }
            part.endAt = arrival;
            parts.push(part);
            buffer = buffer.subarray(part.length);
            part = null;
            if (parts.length >= wanted) {
                break;
            }
        }
    }
    return parts;
}

// Measures one camera's latency; returns {ms, error} or null.
async function measureLatency(tile) {
    const nominal = Math.max(Number(tile.cam && tile.cam.nominal_fps) || 1, 0.2);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 3000 + (PROBE_FRAMES * 1000) / nominal);
    const query = new URLSearchParams({
        cam: tile.name,
        headers: '1',
        frames: String(PROBE_FRAMES),
    });
    const sentAt = nowMs();
    try {
        const response = await controlFetch(`stream?${query}`, abort.signal);
        if (!response.ok || !response.body) {
            return null;
        }
        const parts = await readParts(response.body.getReader(), PROBE_FRAMES);
        if (parts.length < 2) {
            return null;
        }
        // The first part leaves at once: its send time against our round trip.
        const send = Number(parts[0].headers['x-capd-send']) * 1000;
        if (send > 0) {
            const rtt = parts[0].headAt - sentAt;
            clockSamples.push({ offset: send - (sentAt + parts[0].headAt) / 2, rtt });
            if (clockSamples.length > CLOCK_SAMPLES) {
                clockSamples.shift();
            }
        }
        const clock = bestClockSample() || { offset: 0, rtt: 0 };
        // The first part may be an old frame; the later ones were captured while we waited.
        const latencies = parts
            .slice(1)
            .filter((part) => part.headers['x-capd-source'] === 'live')
            .map((part) => part.endAt + clock.offset - Number(part.headers['x-timestamp']) * 1000)
            .filter((ms) => Number.isFinite(ms));
        if (latencies.length === 0) {
            return null;
        }
        const mean = latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length;
        return { ms: Math.max(0, mean), error: clock.rtt / 2 };
    } finally {
        clearTimeout(timer);
        abort.abort();
    }
}

const prober = {
    busy: false,
    turn: 0,

    async tick() {
        if (this.busy || !pageVisible() || !options.probes || serverProblem) {
            return;
        }
        const playing = (tile) =>
            tile.mode === 'live' &&
            tile.status === 'playing' &&
            tile.present &&
            tile.cam &&
            tile.cam.online;
        const candidates = [...tiles.values()]
            .filter((tile) => playing(tile) && (!fullTile || tile === fullTile))
            .sort((a, b) => a.index - b.index);
        if (candidates.length === 0) {
            return;
        }
        const tile = candidates[this.turn++ % candidates.length];
        this.busy = true;
        try {
            const result = await measureLatency(tile);
            if (result) {
                tile.setLatency(result.ms, result.error);
            }
        } catch (err) {
            // a probe that fails says nothing about the stream; the next one tries again
        } finally {
            this.busy = false;
        }
    },
};

// ---- start ---------------------------------------------------------------------------------

// Hidden tab: every stream and snapshot stops, polling too; all resume when shown.
document.addEventListener('visibilitychange', () => {
    arrange();
    tiles.forEach((tile) => tile.renderOverlay());
    if (pageVisible()) {
        poll();
    } else {
        clearTimeout(pollTimer);
        pollTimer = 0;
    }
});

document.body.classList.toggle('no-stats', !options.stats);
budget.init();
setInterval(() => prober.tick(), PROBE_EVERY_MS);
poll();
