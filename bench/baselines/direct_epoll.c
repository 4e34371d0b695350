/* direct_epoll.c - baseline: the direct limit, one epoll process writing one copy of each frame to
 * all. */
/*
 * The cheapest design that serves the same stream: no web server, no FastCGI, no threads.
 *   - The frames of a folder are loaded into memory at start; a timerfd publishes the next one
 *     every 1/fps s (its capture time is the publish time, CLOCK_REALTIME). The part header
 *     is formatted once per frame; the frame's bytes are never copied.
 *   - Every idle viewer is written the new part at once with one nonblocking writev of
 *     [part header][frame][boundary]. A viewer whose socket is full keeps that one part in
 *     flight and finishes it when epoll says it is writable, then jumps to the newest frame:
 *     nothing is ever queued behind the part in flight.
 *   - HTTP is minimal: read the request head, answer GET with the endless multipart stream on
 *     any path (HEAD: the headers only), then ignore what the client sends until it closes.
 * The stream format matches capd's "full" layout: a boundary line first, then per frame
 * Content-Type, Content-Length and X-Timestamp, the JPEG, and the boundary line at once.
 * There is no keep-alive repeat: a viewer costs nothing between frames.
 * "Busy" means the socket's send buffer is full. The kernel grows that buffer up to
 * net.ipv4.tcp_wmem's maximum (4 MiB on Debian, about 45 frames of 720p), so a slow viewer
 * falls seconds behind before skipping starts; --sndbuf caps the buffer to keep it current.
 * It is a stand-alone benchmark program: it links only libc.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BOUNDARY        "directframe"
#define MAX_FRAME_BYTES (64u * 1024u * 1024u)
#define REQUEST_MAX     8192
#define PART_HEAD_MAX   160
#define MAX_EVENTS      256

static const char STREAM_HEAD[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: multipart/x-mixed-replace;boundary=" BOUNDARY "\r\n"
    "Cache-Control: no-cache\r\n"
    "Connection: close\r\n"
    "\r\n";
static const char FIRST_BOUNDARY[] = "--" BOUNDARY "\r\n";
static const char NEXT_BOUNDARY[] = "\r\n--" BOUNDARY "\r\n";
static const char BAD_METHOD[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                                 "Allow: GET, HEAD\r\n"
                                 "Content-Length: 0\r\n"
                                 "Connection: close\r\n"
                                 "\r\n";
static const char TOO_LARGE[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                "Content-Length: 0\r\n"
                                "Connection: close\r\n"
                                "\r\n";

struct frame {
    uint8_t *data;
    size_t len;
};

/* The newest published frame: its header is formatted once and copied into each part. */
struct publication {
    uint64_t seq; /* 0: nothing published yet */
    const struct frame *frame;
    char head[PART_HEAD_MAX];
    size_t head_len;
};

enum client_state { READING_REQUEST, STREAMING, CLOSING };

struct client {
    int fd;
    size_t index; /* position in clients[] */
    enum client_state state;
    int busy;          /* a write is in flight (iov holds what is left of it) */
    uint64_t sent_seq; /* the publication the part in flight (or the last one) came from */
    struct iovec iov[3];
    int iov_first, iov_count;
    char head[PART_HEAD_MAX];
    size_t request_len;
    char request[REQUEST_MAX];
};

struct options {
    const char *dir;
    double fps;
    unsigned port;
    const char *bind;
    int sndbuf; /* 0: the kernel's autotuning */
};

static struct options opts = {NULL, 30.0, 8082, "127.0.0.1", 0};
static struct frame *frames;
static size_t frame_count;
static struct publication current;
static struct client **clients;
static size_t client_count, client_capacity;
static int epoll_fd = -1;
/* epoll tags for the three non-client descriptors; clients are tagged with their struct. */
static char listen_tag, timer_tag, signal_tag;

static void *alloc_or_die(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "direct_epoll: out of memory\n");
        abort();
    }
    return p;
}

static uint64_t realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- frames from a folder ------------------------------------------------------------------ */

static int is_jpeg_name(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    return de->d_name[0] != '.' && ((n > 4 && strcasecmp(de->d_name + n - 4, ".jpg") == 0) ||
                                    (n > 5 && strcasecmp(de->d_name + n - 5, ".jpeg") == 0));
}

/* Reads path whole into a new buffer; 0, or -errno (-EINVAL: not a complete JPEG). */
static int load_jpeg(const char *path, struct frame *out)
{
    struct stat st;
    size_t used = 0;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

    out->data = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size < 4 || (uint64_t)st.st_size > MAX_FRAME_BYTES) {
        rc = -EINVAL;
        goto out;
    }
    out->len = (size_t)st.st_size;
    out->data = alloc_or_die(out->len);
    while (used < out->len) {
        ssize_t n = read(fd, out->data + used, out->len - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        used += (size_t)n;
    }
    /* SOI at the start, EOI at the end: the load client checks the same. */
    if (out->data[0] != 0xFF || out->data[1] != 0xD8 || out->data[out->len - 2] != 0xFF ||
        out->data[out->len - 1] != 0xD9)
        rc = -EINVAL;
out:
    if (rc < 0) {
        free(out->data);
        out->data = NULL;
    }
    close(fd);
    return rc;
}

/* Loads every *.jpg / *.jpeg of dir in name order; 0 or -errno (message printed). */
static int load_frames(const char *dir)
{
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, is_jpeg_name, alphasort), rc = 0;

    if (n < 0) {
        rc = -errno;
        fprintf(stderr, "direct_epoll: %s: %s\n", dir, strerror(-rc));
        return rc;
    }
    if (n == 0) {
        fprintf(stderr, "direct_epoll: %s: no .jpg files\n", dir);
        rc = -ENOENT;
        goto out;
    }
    frames = calloc((size_t)n, sizeof(*frames));
    if (!frames)
        abort();
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name);
        rc = load_jpeg(path, &frames[frame_count]);
        if (rc < 0) {
            fprintf(stderr, "direct_epoll: %s: %s\n", path,
                    rc == -EINVAL ? "not a complete JPEG" : strerror(-rc));
            goto out;
        }
        frame_count++;
    }
out:
    for (int i = 0; i < n; i++)
        free(entries[i]);
    free(entries);
    return rc;
}

static void free_frames(void)
{
    for (size_t i = 0; i < frame_count; i++)
        free(frames[i].data);
    free(frames);
}

/* ---- clients --------------------------------------------------------------------------------- */

static void client_close(struct client *c)
{
    struct client *last = clients[client_count - 1];

    /* Swap the last client into this one's place: removal is O(1). */
    clients[c->index] = last;
    last->index = c->index;
    client_count--;
    close(c->fd); /* also removes it from the epoll set */
    free(c);
}

/* Queues bytes (static or owned by c) as the write in flight; the caller pumps it. */
static void client_set_write(struct client *c, const void *a, size_t alen, const void *b,
                             size_t blen, const void *d, size_t dlen)
{
    c->iov[0] = (struct iovec){(void *)a, alen};
    c->iov[1] = (struct iovec){(void *)b, blen};
    c->iov[2] = (struct iovec){(void *)d, dlen};
    c->iov_first = 0;
    c->iov_count = d ? 3 : b ? 2 : 1;
    c->busy = 1;
}

/* Starts writing the newest frame as one part: header, frame, boundary. */
static void client_start_part(struct client *c)
{
    memcpy(c->head, current.head, current.head_len);
    client_set_write(c, c->head, current.head_len, current.frame->data, current.frame->len,
                     NEXT_BOUNDARY, sizeof(NEXT_BOUNDARY) - 1);
    c->sent_seq = current.seq;
}

/* Writes what it can of the part in flight, then the newest frame when it is newer than the
 * one just finished. 0 (done or the socket is full; epoll reports when it drains) or -errno
 * (the viewer is gone, or a one-shot answer was sent: close it). */
static int client_pump(struct client *c)
{
    while (c->busy) {
        ssize_t n = writev(c->fd, c->iov + c->iov_first, c->iov_count - c->iov_first);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        while (c->iov_first < c->iov_count && (size_t)n >= c->iov[c->iov_first].iov_len) {
            n -= (ssize_t)c->iov[c->iov_first].iov_len;
            c->iov_first++;
        }
        if (c->iov_first < c->iov_count) {
            c->iov[c->iov_first].iov_base = (uint8_t *)c->iov[c->iov_first].iov_base + n;
            c->iov[c->iov_first].iov_len -= (size_t)n;
            continue;
        }
        c->busy = 0;
        if (c->state == CLOSING)
            return -ECONNABORTED;
        /* Skip every frame published meanwhile: go straight to the newest. */
        if (current.seq && c->sent_seq != current.seq)
            client_start_part(c);
    }
    return 0;
}

/* Parses the request head once complete: 0 (answered or still incomplete), -errno to close. */
static int client_on_request(struct client *c)
{
    char *end;

    c->request[c->request_len] = '\0';
    end = strstr(c->request, "\r\n\r\n");
    if (!end)
        end = strstr(c->request, "\n\n");
    if (!end) {
        if (c->request_len < REQUEST_MAX - 1)
            return 0;
        c->state = CLOSING;
        client_set_write(c, TOO_LARGE, sizeof(TOO_LARGE) - 1, NULL, 0, NULL, 0);
        return client_pump(c);
    }
    if (strncmp(c->request, "GET ", 4) == 0) {
        c->state = STREAMING;
        c->sent_seq = 0;
        client_set_write(c, STREAM_HEAD, sizeof(STREAM_HEAD) - 1, FIRST_BOUNDARY,
                         sizeof(FIRST_BOUNDARY) - 1, NULL, 0);
    } else if (strncmp(c->request, "HEAD ", 5) == 0) {
        c->state = CLOSING;
        client_set_write(c, STREAM_HEAD, sizeof(STREAM_HEAD) - 1, NULL, 0, NULL, 0);
    } else {
        c->state = CLOSING;
        client_set_write(c, BAD_METHOD, sizeof(BAD_METHOD) - 1, NULL, 0, NULL, 0);
    }
    return client_pump(c);
}

/* Reads until the socket is empty; 0, or -errno when the client closed or failed. */
static int client_on_readable(struct client *c)
{
    for (;;) {
        char discard[1024];
        ssize_t n;

        if (c->state == READING_REQUEST) {
            n = read(c->fd, c->request + c->request_len, REQUEST_MAX - 1 - c->request_len);
        } else {
            /* A streaming viewer has nothing more to say; only its EOF matters. */
            n = read(c->fd, discard, sizeof(discard));
        }
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        if (c->state == READING_REQUEST) {
            int rc;
            c->request_len += (size_t)n;
            rc = client_on_request(c);
            if (rc < 0 || c->state == READING_REQUEST)
                return rc;
        }
    }
}

static void client_on_event(struct client *c, uint32_t events)
{
    int rc = 0;

    if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        rc = -ECONNRESET;
    if (rc == 0 && (events & EPOLLIN))
        rc = client_on_readable(c);
    if (rc == 0 && (events & EPOLLOUT))
        rc = client_pump(c);
    if (rc < 0)
        client_close(c);
}

static void accept_clients(int listen_fd)
{
    for (;;) {
        int one = 1, fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev;
        struct client *c;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                fprintf(stderr, "direct_epoll: accept: %s\n", strerror(errno));
            return;
        }
        /* Each part leaves in one go instead of its tail waiting for an ACK (Nagle). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (opts.sndbuf)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opts.sndbuf, sizeof(opts.sndbuf));
        c = alloc_or_die(sizeof(*c));
        memset(c, 0, offsetof(struct client, request));
        c->fd = fd;
        c->state = READING_REQUEST;
        if (client_count == client_capacity) {
            size_t cap = client_capacity ? client_capacity * 2 : 64;
            struct client **grown = realloc(clients, cap * sizeof(*clients));
            if (!grown)
                abort();
            clients = grown;
            client_capacity = cap;
        }
        c->index = client_count;
        clients[client_count++] = c;
        /* Edge-triggered in and out, registered once: no epoll_ctl per frame. */
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            fprintf(stderr, "direct_epoll: epoll_ctl: %s\n", strerror(errno));
            client_close(c);
        }
    }
}

/* ---- frames over time ------------------------------------------------------------------------ */

/* Publishes the next frame and starts it on every viewer that is not busy. */
static void publish_next(void)
{
    static size_t next_index;
    uint64_t capture_us = realtime_us();

    current.frame = &frames[next_index];
    next_index = (next_index + 1) % frame_count;
    current.seq++;
    current.head_len =
        (size_t)snprintf(current.head, sizeof(current.head),
                         "Content-Type: image/jpeg\r\n"
                         "Content-Length: %zu\r\n"
                         "X-Timestamp: %llu.%06llu\r\n"
                         "\r\n",
                         current.frame->len, (unsigned long long)(capture_us / 1000000u),
                         (unsigned long long)(capture_us % 1000000u));
    /* Walk backwards: a client that fails is swapped with the last one, already visited. */
    for (size_t i = client_count; i-- > 0;) {
        struct client *c = clients[i];
        if (c->state != STREAMING || c->busy)
            continue; /* busy ones jump to this frame when their part is done */
        client_start_part(c);
        if (client_pump(c) < 0)
            client_close(c);
    }
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int open_listener(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opts.port)};
    socklen_t addr_len = sizeof(addr);
    int one = 1, fd;

    if (inet_pton(AF_INET, opts.bind, &addr.sin_addr) != 1) {
        fprintf(stderr, "direct_epoll: --bind needs an IPv4 address, not '%s'\n", opts.bind);
        return -EINVAL;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) < 0)
        goto fail;
    opts.port = ntohs(addr.sin_port); /* the real one when --port 0 */
    return fd;
fail:
    fprintf(stderr, "direct_epoll: %s:%u: %s\n", opts.bind, opts.port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -EIO;
}

static int open_timer(void)
{
    uint64_t period_ns = (uint64_t)(1e9 / opts.fps);
    struct itimerspec spec = {
        .it_interval = {(time_t)(period_ns / 1000000000u), (long)(period_ns % 1000000000u)},
        .it_value = {0, 1}, /* the first frame at once */
    };
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

    if (fd < 0 || timerfd_settime(fd, 0, &spec, NULL) < 0) {
        fprintf(stderr, "direct_epoll: timerfd: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -EIO;
    }
    return fd;
}

static int open_signals(void)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        fprintf(stderr, "direct_epoll: signalfd: %s\n", strerror(errno));
    return fd;
}

static int watch(int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: direct_epoll --dir DIR [--fps N] [--port P] [--bind ADDR] [--sndbuf B]\n"
                "  Serves DIR/*.jpg looped at N fps (default 30) as an MJPEG stream on\n"
                "  http://ADDR:P/ (any path; default 127.0.0.1:8082, --port 0: any free port).\n"
                "  --sndbuf sets SO_SNDBUF on every viewer's socket (default: the kernel's\n"
                "  autotuning). SIGINT/SIGTERM stop it.\n");
}

static int parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"fps", required_argument, NULL, 'f'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"sndbuf", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            opts.dir = optarg;
            break;
        case 'f':
            opts.fps = strtod(optarg, &end);
            if (*end || !(opts.fps >= 0.1 && opts.fps <= 1000)) {
                fprintf(stderr, "direct_epoll: --fps must be 0.1..1000, not '%s'\n", optarg);
                return -EINVAL;
            }
            break;
        case 'p': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || end == optarg || v > 65535) {
                fprintf(stderr, "direct_epoll: --port must be 0..65535, not '%s'\n", optarg);
                return -EINVAL;
            }
            opts.port = (unsigned)v;
            break;
        }
        case 'b':
            opts.bind = optarg;
            break;
        case 's': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || end == optarg || v < 4096 || v > (64ul << 20)) {
                fprintf(stderr, "direct_epoll: --sndbuf must be 4096..67108864, not '%s'\n",
                        optarg);
                return -EINVAL;
            }
            opts.sndbuf = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind != argc || !opts.dir) {
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int listen_fd = -1, timer_fd = -1, signal_fd = -1, rc = 1, running = 1;
    struct epoll_event events[MAX_EVENTS];

    if (parse_options(argc, argv) < 0)
        return 2;
    if (load_frames(opts.dir) < 0)
        goto out;
    signal(SIGPIPE, SIG_IGN); /* a viewer that leaves fails the write with EPIPE */
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    listen_fd = open_listener();
    timer_fd = open_timer();
    signal_fd = open_signals();
    if (epoll_fd < 0 || listen_fd < 0 || timer_fd < 0 || signal_fd < 0)
        goto out;
    if (watch(listen_fd, &listen_tag) < 0 || watch(timer_fd, &timer_tag) < 0 ||
        watch(signal_fd, &signal_tag) < 0) {
        fprintf(stderr, "direct_epoll: epoll_ctl: %s\n", strerror(errno));
        goto out;
    }
    fprintf(stderr, "direct_epoll: %zu frames from %s at %g fps on http://%s:%u/stream\n",
            frame_count, opts.dir, opts.fps, opts.bind, opts.port);
    while (running) {
        int n = epoll_wait(epoll_fd, events, MAX_EVENTS, -1), tick = 0;

        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "direct_epoll: epoll_wait: %s\n", strerror(errno));
            goto out;
        }
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &listen_tag) {
                accept_clients(listen_fd);
            } else if (tag == &timer_tag) {
                uint64_t expirations;
                /* Late ticks are not made up: one frame per wake-up. */
                tick = read(timer_fd, &expirations, sizeof(expirations)) == sizeof(expirations);
            } else if (tag == &signal_tag) {
                running = 0;
            } else {
                /* Only this client's own event closes it, and each client appears at most
                 * once per batch, so no later event of the batch points at a freed one. */
                client_on_event(tag, events[i].events);
            }
        }
        /* After the batch: publishing may close any client, and the batch may still hold
         * events for it. */
        if (tick)
            publish_next();
    }
    rc = 0;
out:
    while (client_count)
        client_close(clients[client_count - 1]);
    free(clients);
    if (signal_fd >= 0)
        close(signal_fd);
    if (timer_fd >= 0)
        close(timer_fd);
    if (listen_fd >= 0)
        close(listen_fd);
    if (epoll_fd >= 0)
        close(epoll_fd);
    free_frames();
    return rc;
}
