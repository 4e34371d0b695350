/* fanout.c - one thread per camera writes each new frame to every FastCGI viewer of the process. */
#include "fanout.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cards.h"
#include "out.h"
#include "presence.h"
#include "ring.h"
#include "util.h"

enum frame_source { SOURCE_LIVE, SOURCE_CARD, SOURCE_OFFLINE };
static const char *const source_names[] = {"live", "no-signal", "offline"};

/* A frame shared by the viewers of a channel. Buffers come from the channel's
 * pool and go back to it; steady streaming allocates nothing. */
struct fbuf {
    uint8_t *data;
    size_t size, cap;
    uint64_t capture_us;
    uint64_t publish_ns; /* CLOCK_MONOTONIC, from the ring */
    uint64_t seq, generation;
    uint32_t width, height;
    enum frame_source source;
    int refs;          /* changed by the I/O thread only */
    struct fbuf *next; /* pool free list */
};

struct viewer {
    struct viewer *next;
    struct fanout_stream s;
    /* I/O thread state. */
    struct fbuf *sending;      /* part being written, NULL when idle */
    struct fbuf *last;         /* last part written completely (repeated when idle) */
    struct iovec *iov;         /* the planned records of the part being written */
    int iov_n, iov_pos, iov_cap;
    uint8_t (*hdrs)[8];
    int hdr_cap;
    char part[SERVE_PART_HEADER_MAX];
    uint64_t last_send_ns;     /* when the last part started (keep-alive repeats count) */
    uint64_t last_new_ns;      /* when the last new frame started (the fps cap's clock) */
    uint64_t sent;
    uint64_t drops;            /* frames of the ring this viewer never got */
    uint64_t last_seq, last_generation;
    int dual_pending;          /* dual_final=1: the last frame is still to be repeated */
    int want_out;              /* registered for EPOLLOUT */
    int closing;               /* the part being written is the stream's last */
    struct presence_claim claim;
    /* Completion: the I/O thread stores done = 1 and never touches the viewer again. */
    int result;
    _Atomic uint32_t done;
};

struct channel {
    struct channel *next;
    char cam[RING_NAME_MAX + 1];
    const struct serve_config *cfg;
    pthread_mutex_t lock;
    pthread_cond_t viewers_cond;
    /* Under lock. */
    struct viewer *pending;  /* handed over, not yet adopted by the I/O thread */
    int viewers;             /* pending + active */
    struct fbuf *published;  /* newest frame from the waiter, not yet taken */
    int want_newest;         /* the I/O thread dropped its frame with its last viewer */
    int online;              /* the waiter's last verdict */
    int online_changed;
    uint64_t generation;
    struct fbuf *pool;
    /* I/O thread only. */
    int epfd, evfd;
    struct viewer *active;
    struct fbuf *newest;     /* what idle viewers get next: a live frame or a card */
    uint32_t card_w, card_h; /* size of the last live frame, for the offline card */
    uint64_t interval_ns;    /* between the last two frames, for dual_final */
    struct cards cards;
    struct presence *presence;
};

static pthread_mutex_t channels_lock = PTHREAD_MUTEX_INITIALIZER;
static struct channel *channels;

/* ---- small helpers ---------------------------------------------------------- */

static void futex_wake_private(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void futex_wait_private(_Atomic uint32_t *word, uint32_t expected)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void notify(struct channel *ch)
{
    uint64_t one = 1;
    if (write(ch->evfd, &one, sizeof(one)) < 0) {
        /* The counter is saturated: the I/O thread has a wake-up pending anyway. */
    }
}

static struct fbuf *pool_get(struct channel *ch)
{
    struct fbuf *b;
    pthread_mutex_lock(&ch->lock);
    b = ch->pool;
    if (b)
        ch->pool = b->next;
    pthread_mutex_unlock(&ch->lock);
    if (!b)
        b = xcalloc(1, sizeof(*b)); /* only when every buffer is in use */
    b->refs = 0;
    b->size = 0;
    return b;
}

static void pool_put_locked(struct channel *ch, struct fbuf *b)
{
    b->next = ch->pool;
    ch->pool = b;
}

static void fbuf_ref(struct fbuf *b)
{
    b->refs++;
}

static void fbuf_unref(struct channel *ch, struct fbuf *b)
{
    if (!b || --b->refs > 0)
        return;
    pthread_mutex_lock(&ch->lock);
    pool_put_locked(ch, b);
    pthread_mutex_unlock(&ch->lock);
}

/* ---- the waiter: ring -> newest frame ------------------------------------------ */

static void *waiter_main(void *arg)
{
    struct channel *ch = arg;
    struct ring_reader *reader = ring_reader_create(ch->cfg->prefix, ch->cam);
    struct fbuf *buf = NULL;

    for (;;) {
        struct ring_frame rf;
        int rc, want_newest;

        pthread_mutex_lock(&ch->lock);
        while (ch->viewers == 0 && !*ch->cfg->stop)
            pthread_cond_wait(&ch->viewers_cond, &ch->lock);
        pthread_mutex_unlock(&ch->lock);
        if (*ch->cfg->stop)
            break;
        if (!buf)
            buf = pool_get(ch);
        memset(&rf, 0, sizeof(rf));
        rf.data = buf->data;
        rf.capacity = buf->cap;
        rc = ring_reader_next(reader, &rf, 1000, ch->cfg->stop);
        /* The last viewer's exit dropped the I/O thread's frame, and this
         * reader has delivered it already: with nothing new for a second (a
         * still source, capd alive), that newest frame is still the truth, as
         * for a snapshot. An idle-stopped capd restarts well within the
         * second, so viewers of a live camera get a fresh frame first. */
        if (rc == -EAGAIN) {
            pthread_mutex_lock(&ch->lock);
            want_newest = ch->want_newest && ch->viewers > 0;
            pthread_mutex_unlock(&ch->lock);
            if (want_newest)
                rc = ring_reader_latest(reader, &rf);
        }
        buf->data = rf.data; /* the reader may have grown it */
        buf->cap = rf.capacity;
        if (rc == -EINTR)
            break;
        if (rc == -EAGAIN)
            continue;
        pthread_mutex_lock(&ch->lock);
        if (rc == 0) {
            buf->size = rf.size;
            buf->capture_us = rf.capture_us;
            buf->publish_ns = rf.publish_ns;
            buf->seq = rf.seq;
            buf->generation = rf.generation;
            buf->width = rf.width;
            buf->height = rf.height;
            buf->source = rf.flags & RING_FRAME_CARD ? SOURCE_CARD : SOURCE_LIVE;
            if (ch->published) /* the I/O thread did not take the previous one: skip it */
                pool_put_locked(ch, ch->published);
            ch->published = buf;
            ch->want_newest = 0;
            buf = NULL;
            ch->generation = ring_reader_generation(reader);
        }
        if (ch->online != (rc == 0)) {
            ch->online = rc == 0;
            ch->online_changed = 1;
        }
        pthread_mutex_unlock(&ch->lock);
        notify(ch);
    }
    if (buf) {
        free(buf->data);
        free(buf);
    }
    ring_reader_destroy(reader);
    return NULL;
}

/* ---- the I/O thread: newest frame -> every viewer ------------------------------- */

static void viewer_events(struct channel *ch, struct viewer *v, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = v};
    epoll_ctl(ch->epfd, EPOLL_CTL_MOD, v->s.fd, &ev);
}

static void viewer_finish(struct channel *ch, struct viewer *v, int result)
{
    struct viewer **pp;
    int flags, last_one;

    for (pp = &ch->active; *pp && *pp != v; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = v->next;
    epoll_ctl(ch->epfd, EPOLL_CTL_DEL, v->s.fd, NULL);
    /* libfcgi finishes the request with blocking writes. */
    flags = fcntl(v->s.fd, F_GETFL);
    if (flags >= 0)
        fcntl(v->s.fd, F_SETFL, flags & ~O_NONBLOCK);
    fbuf_unref(ch, v->sending);
    fbuf_unref(ch, v->last);
    if (ch->presence)
        presence_release(ch->presence, &v->claim);
    if (result < 0 && result != -EINTR)
        atomic_fetch_add_explicit(&serve_counters.viewers_left, 1, memory_order_relaxed);
    /* Without viewers the waiter sleeps, so a live frame kept here would grow
     * old: the next viewer must get a current one. (An offline card stays: it
     * is still true, and the waiter reports no change while capd stays away.)
     * want_newest asks the waiter for the ring's newest frame should nothing
     * newer come (a still camera). */
    pthread_mutex_lock(&ch->lock);
    ch->viewers--;
    last_one = ch->viewers == 0;
    if (last_one)
        ch->want_newest = 1;
    pthread_mutex_unlock(&ch->lock);
    if (last_one && ch->newest && ch->newest->source != SOURCE_OFFLINE) {
        fbuf_unref(ch, ch->newest);
        ch->newest = NULL;
    }
    v->result = result;
    /* Release: the result is visible to the thread that wakes; after this
     * store the viewer belongs to that thread again. */
    atomic_store_explicit(&v->done, 1, memory_order_release);
    futex_wake_private(&v->done);
}

/* Writes as much of the current part as the connection takes. */
static void viewer_push(struct channel *ch, struct viewer *v)
{
    while (v->iov_pos < v->iov_n) {
        int n = v->iov_n - v->iov_pos;
        ssize_t w = writev(v->s.fd, v->iov + v->iov_pos, n < IOV_MAX ? n : IOV_MAX);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!v->want_out) {
                    v->want_out = 1;
                    viewer_events(ch, v, EPOLLOUT);
                }
                return;
            }
            viewer_finish(ch, v, neg_errno());
            return;
        }
        while (w > 0 && (size_t)w >= v->iov[v->iov_pos].iov_len) {
            w -= (ssize_t)v->iov[v->iov_pos].iov_len;
            v->iov_pos++;
        }
        if (w > 0) {
            v->iov[v->iov_pos].iov_base = (char *)v->iov[v->iov_pos].iov_base + w;
            v->iov[v->iov_pos].iov_len -= (size_t)w;
        }
    }
    /* The part is out. */
    if (v->want_out) {
        v->want_out = 0;
        viewer_events(ch, v, 0);
    }
    fbuf_unref(ch, v->last);
    v->last = v->sending;
    v->sending = NULL;
    v->sent++;
    atomic_fetch_add_explicit(&serve_counters.frames_sent, 1, memory_order_relaxed);
    if (v->closing)
        viewer_finish(ch, v, 0);
}

/* Starts writing frame b to an idle viewer. */
static void viewer_start(struct channel *ch, struct viewer *v, struct fbuf *b, uint64_t now)
{
    static const char next_boundary[] = SERVE_NEXT_BOUNDARY SERVE_EARLY_HEADERS;
    static const char close_boundary[] = SERVE_CLOSE_BOUNDARY;
    struct iovec pieces[3];
    int n = 0, need_iov, need_hdr;

    if (b == v->last) {
        v->dual_pending = 0; /* a repeat: keep-alive or the dual-final copy */
    } else if (b->source != SOURCE_OFFLINE) {
        v->last_new_ns = now;
        if (b->generation == v->last_generation && b->seq > v->last_seq + 1)
            v->drops += b->seq - v->last_seq - 1;
        v->last_seq = b->seq;
        v->last_generation = b->generation;
        v->dual_pending = v->s.dual_final;
    } else {
        v->dual_pending = 0;
    }
    v->closing = v->s.frames && v->sent + 1 >= v->s.frames;
    if (!v->s.early) {
        struct serve_part part = {
            .len = b->size,
            .capture_us = b->capture_us,
            .source = source_names[b->source],
            .timing = v->s.timing,
            .publish_us = b->publish_ns ? serve_mono_to_real_us(b->publish_ns) : b->capture_us,
            .seq = b->seq,
            .drops = v->drops,
        };
        pieces[n++] = (struct iovec){v->part, serve_part_header(v->part, &part)};
    }
    pieces[n++] = (struct iovec){b->data, b->size};
    if (v->closing)
        pieces[n++] = (struct iovec){(void *)close_boundary, sizeof(close_boundary) - 1};
    else
        pieces[n++] = (struct iovec){(void *)next_boundary,
                                     v->s.early ? sizeof(next_boundary) - 1
                                                : sizeof(SERVE_NEXT_BOUNDARY) - 1};
    out_plan_size(b->size + 512, n, &need_iov, &need_hdr);
    if (need_iov > v->iov_cap) {
        v->iov = xrealloc(v->iov, (size_t)need_iov * sizeof(*v->iov));
        v->iov_cap = need_iov;
    }
    if (need_hdr > v->hdr_cap) {
        v->hdrs = xrealloc(v->hdrs, (size_t)need_hdr * sizeof(*v->hdrs));
        v->hdr_cap = need_hdr;
    }
    v->iov_n = out_plan_records(v->s.request_id, pieces, n, v->iov, v->iov_cap, v->hdrs,
                                v->hdr_cap);
    assert(v->iov_n > 0); /* capacities come from out_plan_size() */
    v->iov_pos = 0;
    fbuf_ref(b);
    v->sending = b;
    v->last_send_ns = now;
    viewer_push(ch, v);
}

/* Makes the offline card the newest frame. */
static void channel_offline(struct channel *ch)
{
    size_t len;
    const uint8_t *card = cards_offline(&ch->cards, ch->card_w, ch->card_h, ch->cam, &len);
    struct fbuf *b;

    if (!card)
        return;
    b = pool_get(ch);
    if (b->cap < len) {
        b->data = xrealloc(b->data, len);
        b->cap = len;
    }
    memcpy(b->data, card, len);
    b->size = len;
    b->capture_us = time_real_us();
    b->width = ch->card_w;
    b->height = ch->card_h;
    b->source = SOURCE_OFFLINE;
    b->publish_ns = 0;
    b->seq = b->generation = 0;
    fbuf_ref(b);
    fbuf_unref(ch, ch->newest);
    ch->newest = b;
}

/* Keeps one presence claim per viewer on the ring generation being watched. */
static void channel_presence(struct channel *ch, int online, uint64_t generation)
{
    struct viewer *v;

    if (ch->presence && (!online || presence_generation(ch->presence) != generation)) {
        for (v = ch->active; v; v = v->next)
            presence_release(ch->presence, &v->claim);
        presence_destroy(ch->presence, 0);
        ch->presence = NULL;
    }
    if (online && !ch->presence && generation &&
        presence_open(ch->cfg->prefix, ch->cam, &ch->presence) == 0 &&
        presence_generation(ch->presence) != generation) {
        presence_destroy(ch->presence, 0); /* capd is between its two objects */
        ch->presence = NULL;
    }
    if (ch->presence)
        for (v = ch->active; v; v = v->next)
            presence_refresh(ch->presence, &v->claim); /* claims when unclaimed */
}

/* Moves viewers handed over by fanout_run() into the active set. */
static void channel_adopt(struct channel *ch)
{
    struct viewer *list, *v;

    pthread_mutex_lock(&ch->lock);
    list = ch->pending;
    ch->pending = NULL;
    pthread_mutex_unlock(&ch->lock);
    while ((v = list) != NULL) {
        struct epoll_event ev = {.events = 0, .data.ptr = v};
        int flags = fcntl(v->s.fd, F_GETFL);
        list = v->next;
        v->next = ch->active;
        ch->active = v;
        if (flags < 0 || fcntl(v->s.fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
            epoll_ctl(ch->epfd, EPOLL_CTL_ADD, v->s.fd, &ev) < 0) {
            viewer_finish(ch, v, neg_errno());
            continue;
        }
    }
}

/* When the I/O thread must wake up next (ms), for repeats, time limits and fps caps. */
static int channel_timeout(struct channel *ch, uint64_t now)
{
    uint64_t next = now + 1000000000ull;
    for (struct viewer *v = ch->active; v; v = v->next) {
        /* Nothing sent yet: no repeat is due (channel_serve has nothing to
         * repeat), and counting one from 0 would spin epoll_wait. */
        uint64_t due = v->last ? v->last_send_ns + serve_repeat_interval_ns(v->s.min_interval_ns)
                               : UINT64_MAX;
        if (v->sending)
            continue;
        if (v->s.deadline_ns && v->s.deadline_ns < due)
            due = v->s.deadline_ns;
        if (v->dual_pending && v->last_send_ns + serve_dual_final_delay_ns(ch->interval_ns) < due)
            due = v->last_send_ns + serve_dual_final_delay_ns(ch->interval_ns);
        if (v->s.min_interval_ns && ch->newest && ch->newest != v->last &&
            v->last_new_ns + v->s.min_interval_ns < due)
            due = v->last_new_ns + v->s.min_interval_ns;
        if (due < next)
            next = due;
    }
    return next <= now ? 0 : (int)((next - now) / 1000000u) + 1;
}

/* Gives every idle viewer what is due: the newest frame, a repeat, or its end. */
static void channel_serve(struct channel *ch, uint64_t now, int stopping)
{
    struct viewer *v = ch->active, *next;

    for (; v; v = next) {
        next = v->next; /* v may finish below */
        if (stopping) {
            viewer_finish(ch, v, -EINTR);
            continue;
        }
        if (v->sending)
            continue;
        if (v->s.deadline_ns && now >= v->s.deadline_ns) {
            viewer_finish(ch, v, 0);
            continue;
        }
        int fresh = ch->newest && ch->newest != v->last;
        int repeat_due = now - v->last_send_ns >= serve_repeat_interval_ns(v->s.min_interval_ns);
        /* The fps cap spaces new frames from new frames; repeats do not count.
         * When the keep-alive is due anyway, a newer frame beats a repeat (an
         * fps cap below 1/SERVE_REPEAT_INTERVAL_MAX_NS is raised to it). */
        if (fresh && (!v->s.min_interval_ns || !v->last_new_ns ||
                      now - v->last_new_ns >= v->s.min_interval_ns || repeat_due))
            viewer_start(ch, v, ch->newest, now);
        else if (v->dual_pending && v->last &&
                 now - v->last_send_ns >= serve_dual_final_delay_ns(ch->interval_ns))
            viewer_start(ch, v, v->last, now);
        else if (repeat_due && v->last)
            viewer_start(ch, v, v->last, now);
    }
}

static void *io_main(void *arg)
{
    struct channel *ch = arg;
    struct epoll_event events[64];

    for (;;) {
        uint64_t now = time_mono_ns(), generation;
        struct fbuf *published;
        int n = epoll_wait(ch->epfd, events, 64, channel_timeout(ch, now));
        int online, changed, stopping = *ch->cfg->stop;

        for (int i = 0; i < n; i++) {
            struct viewer *v = events[i].data.ptr;
            if (!v)
                continue; /* the eventfd: read below */
            if (v->sending)
                viewer_push(ch, v); /* EPOLLOUT, or an error the write reports */
            else if (events[i].events & (EPOLLERR | EPOLLHUP))
                viewer_finish(ch, v, -EPIPE); /* left while idle */
        }
        uint64_t drained;
        if (read(ch->evfd, &drained, sizeof(drained)) < 0) {
            /* Nothing pending (EAGAIN). */
        }
        channel_adopt(ch);
        pthread_mutex_lock(&ch->lock);
        published = ch->published;
        ch->published = NULL;
        if (published && ch->viewers == 0) {
            /* Nobody to show it to, and it would be stale for the next viewer
             * (who gets the ring's newest then, see waiter_main). */
            pool_put_locked(ch, published);
            published = NULL;
            ch->want_newest = 1;
        }
        online = ch->online;
        changed = ch->online_changed;
        ch->online_changed = 0;
        generation = ch->generation;
        pthread_mutex_unlock(&ch->lock);
        if (published) {
            if (ch->newest && ch->newest->source != SOURCE_OFFLINE &&
                published->capture_us > ch->newest->capture_us)
                ch->interval_ns = (published->capture_us - ch->newest->capture_us) * 1000u;
            fbuf_ref(published);
            fbuf_unref(ch, ch->newest);
            ch->newest = published;
            ch->card_w = published->width;
            ch->card_h = published->height;
        }
        if (changed && !online)
            channel_offline(ch);
        channel_presence(ch, online, generation);
        channel_serve(ch, time_mono_ns(), stopping);
    }
    return NULL;
}

/* ---- channels ------------------------------------------------------------------------ */

static struct channel *channel_get(const struct serve_config *cfg, const char *cam)
{
    struct channel *ch;
    pthread_t tid;
    pthread_attr_t attr;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    pthread_mutex_lock(&channels_lock);
    for (ch = channels; ch; ch = ch->next)
        if (strcmp(ch->cam, cam) == 0)
            goto out;
    ch = xcalloc(1, sizeof(*ch));
    snprintf(ch->cam, sizeof(ch->cam), "%s", cam);
    ch->cfg = cfg;
    ch->online = -1; /* unknown: the first verdict counts as a change */
    pthread_mutex_init(&ch->lock, NULL);
    pthread_cond_init(&ch->viewers_cond, NULL);
    ch->epfd = epoll_create1(EPOLL_CLOEXEC);
    ch->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ch->epfd < 0 || ch->evfd < 0 || epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->evfd, &ev) < 0) {
        log_error("fan-out for camera '%s': %s", cam, strerror(errno));
        abort(); /* descriptors exhausted at start-up; nothing sensible to fall back to */
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&tid, &attr, waiter_main, ch) != 0 ||
        pthread_create(&tid, &attr, io_main, ch) != 0) {
        log_error("fan-out for camera '%s': cannot start threads", cam);
        abort();
    }
    pthread_attr_destroy(&attr);
    ch->next = channels;
    channels = ch;
out:
    pthread_mutex_unlock(&channels_lock);
    return ch;
}

int fanout_run(const struct serve_config *cfg, const char *cam, const struct fanout_stream *s)
{
    struct channel *ch = channel_get(cfg, cam);
    struct viewer v;

    memset(&v, 0, sizeof(v));
    v.s = *s;
    pthread_mutex_lock(&ch->lock);
    v.next = ch->pending;
    ch->pending = &v;
    ch->viewers++;
    pthread_cond_signal(&ch->viewers_cond);
    pthread_mutex_unlock(&ch->lock);
    notify(ch);
    /* Acquire: pairs with the I/O thread's release store of done. */
    while (atomic_load_explicit(&v.done, memory_order_acquire) == 0)
        futex_wait_private(&v.done, 0);
    free(v.iov);
    free(v.hdrs);
    return v.result;
}
