// viewer.js - the camera grid: polls `state`, one live tile per camera, restarts broken streams.
'use strict';

const POLL_MS = 2000;
const STATE_TIMEOUT_MS = 5000;
// A failed `state` keeps the tiles for this many polls, so that one hiccup does
// not restart every stream on the page.
const STATE_FAILURES_BEFORE_EMPTY = 3;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 10000;

// Page options from the query string. stats=0 hides the numbers that change on
// their own (fps, viewers): for wall displays, and for tests that compare
// screenshots, where only the video may change.
const params = new URLSearchParams(location.search);
const options = {
    stats: params.get('stats') !== '0',
};

const tiles = new Map(); // camera name -> Tile
let stateFailures = 0;

function plural(n, word) {
    return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// One camera: its element, its live stream and the retry schedule of that stream.
// Relative URLs throughout, so the page works under any prefix.
class Tile {
    constructor(name) {
        this.name = name;
        this.retryDelay = RETRY_FIRST_MS;
        this.retryTimer = 0;
        this.quietPolls = 0; // polls in a row that counted no viewer while we play
        this.seenCounted = false;
        this.destroyed = false;
        const template = document.getElementById('tile-template');
        this.el = template.content.firstElementChild.cloneNode(true);
        this.el.dataset.cam = name;
        this.img = this.el.querySelector('.video');
        this.img.alt = `Live video from ${name}`;
        this.img.addEventListener('load', () => this.onFrame());
        this.img.addEventListener('error', () => this.onStreamError());
        this.el.querySelector('.name').textContent = name;
        this.el.querySelector('.snapshot').href = `snapshot?${this.query()}`;
        this.play(false);
    }

    // The camera's query parameters; later stream options (fps cap, ...) go here.
    query() {
        return new URLSearchParams({ cam: this.name }).toString();
    }

    // (Re)starts the stream; a retry adds a parameter the responder ignores so
    // that no cache can answer it.
    play(cacheBust) {
        clearTimeout(this.retryTimer);
        this.retryTimer = 0;
        const bust = cacheBust ? `&_=${Date.now()}` : '';
        this.setStatus('connecting');
        this.img.src = `stream?${this.query()}${bust}`;
    }

    setStatus(status) {
        this.status = status;
        this.el.dataset.status = status;
        this.el.querySelector('.overlay').textContent =
            status === 'retrying' ? 'Reconnecting…' : 'Connecting…';
    }

    onFrame() {
        this.retryDelay = RETRY_FIRST_MS;
        this.setStatus('playing');
    }

    // Retries after 1, 2, 4, 8, 10, 10 ... seconds until a frame arrives.
    onStreamError() {
        if (this.destroyed || this.retryTimer) {
            return;
        }
        this.setStatus('retrying');
        this.retryTimer = setTimeout(() => {
            this.retryTimer = 0;
            this.play(true);
        }, this.retryDelay);
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    }

    // A broken stream fires no error once its first frame is in (Chromium): the
    // image just turns empty. Checked at every poll, also while state fails.
    checkStream() {
        if (this.status === 'playing' && this.img.complete && this.img.naturalWidth === 0) {
            this.onStreamError();
        }
    }

    // A cleanly ended stream (e.g. the responder restarted) keeps its last
    // frame and fires nothing at all. But our stream counts as a viewer, so an
    // online camera without viewers for two polls has lost it. Trusted only once
    // the count has included us: capd may lack the permission to count viewers.
    checkViewers(cam) {
        const viewers = cam.viewers | 0;
        if (this.status !== 'playing') {
            this.quietPolls = 0;
            return;
        }
        this.seenCounted = this.seenCounted || viewers > 0;
        this.quietPolls = cam.online && viewers === 0 && this.seenCounted ? this.quietPolls + 1 : 0;
        if (this.quietPolls >= 2) {
            this.onStreamError();
        }
    }

    // Labels, and a look at the stream. An offline camera keeps its stream: the
    // responder shows its own offline card meanwhile and resumes by itself.
    update(cam) {
        const width = cam.width | 0;
        const height = cam.height | 0;
        const online = Boolean(cam.online);
        const badge = this.el.querySelector('.badge');
        badge.textContent = online ? 'Online' : 'Offline';
        badge.classList.toggle('online', online);
        this.el.classList.toggle('is-offline', !online);
        this.el.querySelector('.size').textContent = width > 0 ? `${width}×${height}` : '';
        const fps = Number(cam.fps);
        this.el.querySelector('.fps').textContent =
            online && fps > 0 ? `${fps.toFixed(1)} fps` : '– fps';
        this.el.querySelector('.viewers').textContent = plural(cam.viewers | 0, 'viewer');
        this.checkViewers(cam);
    }

    // Stops the stream: dropping src cancels the request.
    destroy() {
        this.destroyed = true;
        clearTimeout(this.retryTimer);
        this.img.removeAttribute('src');
        this.el.remove();
    }
}

// The header's one-line status: camera counts, or that the server is away.
function showSummary(problem, count, online) {
    const summary = document.getElementById('summary');
    summary.classList.toggle('warn', Boolean(problem));
    if (problem) {
        summary.textContent = 'Server not answering';
    } else {
        summary.textContent = count ? `${plural(count, 'camera')} · ${online} online` : '';
    }
}

// Brings the grid in line with the camera list: new tiles in list order,
// vanished ones removed, the others only relabelled.
function render(cameras, problem) {
    const grid = document.getElementById('grid');
    const seen = new Set();
    cameras.forEach((cam, index) => {
        const name = String(cam.name);
        seen.add(name);
        let tile = tiles.get(name);
        if (!tile) {
            tile = new Tile(name);
            tiles.set(name, tile);
        }
        tile.update(cam);
        if (grid.children[index] !== tile.el) {
            grid.insertBefore(tile.el, grid.children[index] || null);
        }
    });
    for (const [name, tile] of tiles) {
        if (!seen.has(name)) {
            tile.destroy();
            tiles.delete(name);
        }
    }
    grid.dataset.count = String(tiles.size);
    // All cells take the first camera's shape, so rows line up; others letterbox.
    const first = cameras[0];
    if (first && first.width > 0 && first.height > 0) {
        grid.style.setProperty('--aspect', `${first.width} / ${first.height}`);
        grid.style.setProperty('--aspect-num', String(first.width / first.height));
    }

    showSummary(problem, cameras.length, cameras.filter((cam) => cam.online).length);
    document.getElementById('empty').hidden = tiles.size > 0;
    document.getElementById('empty-title').textContent = problem
        ? 'Cannot reach the camera server'
        : 'No camera is running';
    document.getElementById('empty-detail').textContent = problem
        ? `The server did not answer (${problem}). Trying again every 2 seconds.`
        : 'This page looks again every 2 seconds.';
}

async function fetchState() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), STATE_TIMEOUT_MS);
    try {
        const response = await fetch('state', { cache: 'no-store', signal: abort.signal });
        if (!response.ok) {
            throw new Error(`HTTP ${response.status}`);
        }
        return await response.json();
    } finally {
        clearTimeout(timer);
    }
}

// One poll at a time: the next is scheduled when this one is done.
async function poll() {
    tiles.forEach((tile) => tile.checkStream());
    try {
        const state = await fetchState();
        stateFailures = 0;
        render(state && Array.isArray(state.cameras) ? state.cameras : [], '');
    } catch (err) {
        stateFailures++;
        const problem = err.name === 'AbortError' ? 'timed out' : err.message;
        if (stateFailures >= STATE_FAILURES_BEFORE_EMPTY || tiles.size === 0) {
            render([], problem);
        } else {
            showSummary(problem, 0, 0);
        }
    }
    setTimeout(poll, POLL_MS);
}

document.body.classList.toggle('no-stats', !options.stats);
poll();
