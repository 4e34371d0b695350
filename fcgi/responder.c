/* responder.c - capd.fcgi: serves capd's ring over FastCGI (thread pool) or as a one-shot CGI. */
#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "out.h"
#include "ring.h"
#include "serve.h"
#include "util.h"

#define DEFAULT_MAX_VIEWERS 256u
/* Threads beyond the viewer cap, so that snapshots, state and the 503 for
 * viewers over the cap are still answered when every stream slot is taken. */
#define SPARE_THREADS     16u
#define THREAD_STACK_SIZE (256u * 1024u)
/* After SIGTERM, streams get this long to end before the process exits. */
#define SHUTDOWN_GRACE_NS (1500ull * 1000000u)

extern char **environ;

static volatile sig_atomic_t stop_requested;
/* The socket the workers accept on: 0 when the web server passed it as stdin
 * (FastCGI's convention), or the one --listen opened. */
static int listen_fd;
static _Atomic uint32_t workers_alive;
static struct serve_config config;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct options {
    const char *listen;  /* --listen unix:PATH | HOST:PORT | :PORT */
    uint32_t socket_mode; /* permissions of a --listen unix socket */
    int per_thread; /* --stream-mode threads */
    uint32_t max_viewers;
    uint32_t threads; /* 0: max_viewers + SPARE_THREADS */
    int verbose;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: capd.fcgi [--max-viewers N] [--threads N] [--stream-mode M] [--listen ADDR] [-v]\n"
        "\n"
        "The capd responder. Run by a web server, it streams the frames that capd publishes\n"
        "in shared memory. Under a FastCGI server (lighttpd mod_fastcgi, Apache mod_fcgid\n"
        "or mod_proxy_fcgi with a spawner) it serves many requests with a thread pool;\n"
        "started as a CGI program (e.g. installed as cgi-bin/capd.cgi) it serves one request.\n"
        "\n"
        "Endpoints, by the last path segment or by ?action=:\n"
        "  stream     multipart/x-mixed-replace MJPEG\n"
        "  snapshot   one JPEG, newer than the request\n"
        "  state      JSON: cameras, sizes, fps, viewers, drops and responder counters\n"
        "Query parameters: cam=NAME, fps=N (cap), frames=N, seconds=N, parts=full|early|auto.\n"
        "\n"
        "Options:\n"
        "      --max-viewers N   concurrent streams per process, 1-65536 (default: %u);\n"
        "                        more get 503 with Retry-After\n"
        "      --threads N       FastCGI worker threads (default: max-viewers + %u)\n"
        "      --stream-mode M   fanout (default): one thread per camera copies each frame\n"
        "                        once and writes it to all of this process's viewers;\n"
        "                        threads: each viewer's thread reads the ring itself (as CGI)\n"
        "      --listen ADDR     serve FastCGI on a socket of our own instead of the one a web\n"
        "                        server passes on stdin: unix:/PATH, HOST:PORT or :PORT (for\n"
        "                        nginx or Apache mod_proxy_fcgi; no spawn-fcgi needed)\n"
        "      --socket-mode M   permissions of a unix --listen socket (default: 0660)\n"
        "  -v, --verbose         log more\n"
        "  -h, --help            show this help and exit\n"
        "      --version         show the version and exit\n"
        "\n"
        "Environment:\n"
        "  CAPD_SHM_PREFIX       shared-memory name prefix (default: capd-), as given to capd\n",
        DEFAULT_MAX_VIEWERS, SPARE_THREADS);
}

static void parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_MAX_VIEWERS = 256, OPT_THREADS, OPT_STREAM_MODE, OPT_LISTEN, OPT_SOCKET_MODE,
           OPT_VERSION };
    static const struct option longopts[] = {
        {"max-viewers", required_argument, NULL, OPT_MAX_VIEWERS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"stream-mode", required_argument, NULL, OPT_STREAM_MODE},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->max_viewers = DEFAULT_MAX_VIEWERS;
    o->socket_mode = 0660;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_MAX_VIEWERS:
            if (parse_u32(optarg, 1, 65536, &o->max_viewers) < 0)
                die_bad_option("--max-viewers", optarg, "expected a whole number from 1 to 65536");
            break;
        case OPT_THREADS:
            if (parse_u32(optarg, 1, 65536, &o->threads) < 0)
                die_bad_option("--threads", optarg, "expected a whole number from 1 to 65536");
            break;
        case OPT_LISTEN:
            if (strncmp(optarg, "unix:", 5) == 0 ? optarg[5] != '/'
                                                   : !strchr(optarg, ':') || optarg[0] == '/')
                die_bad_option("--listen", optarg,
                               "expected unix:/ABSOLUTE/PATH, HOST:PORT or :PORT");
            o->listen = optarg;
            break;
        case OPT_SOCKET_MODE: {
            char *end;
            unsigned long mode = strtoul(optarg, &end, 8);
            if (!*optarg || *end || mode > 0777)
                die_bad_option("--socket-mode", optarg, "expected an octal mode such as 0660");
            o->socket_mode = (uint32_t)mode;
            break;
        }
        case OPT_STREAM_MODE:
            if (strcmp(optarg, "fanout") == 0)
                o->per_thread = 0;
            else if (strcmp(optarg, "threads") == 0)
                o->per_thread = 1;
            else
                die_bad_option("--stream-mode", optarg, "expected fanout or threads");
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("capd.fcgi %s\n", CAPD_VERSION);
            exit(0);
        case ':':
            die_bad_option(argv[optind - 1], NULL, "this option needs a value");
        default:
            die_bad_option(argv[optind - 1], NULL, "unknown option");
        }
    }
    if (optind < argc)
        die_bad_option(argv[optind], NULL, "unexpected argument");
    if (!o->threads)
        o->threads = o->max_viewers + SPARE_THREADS;
}

static void install_signals(int restart)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* FastCGI: SA_RESTART, because libfcgi ends a stream on EINTR (and the
     * workers block these signals anyway). CGI: no SA_RESTART, so a write
     * blocked on a stalled viewer returns and the process can exit. */
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void *worker_main(void *arg)
{
    FCGX_Request request;
    struct serve_worker worker;
    struct out out;

    (void)arg;
    memset(&worker, 0, sizeof(worker));
    if (FCGX_InitRequest(&request, listen_fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        goto out;
    }
    while (!stop_requested) {
        if (FCGX_Accept_r(&request) < 0)
            break;
        out_init_fcgi(&out, request.ipcFd, request.requestId, &stop_requested);
        serve_request(&worker, &config, request.envp, &out);
        FCGX_Finish_r(&request);
    }
    FCGX_Free(&request, 1);
out:
    serve_worker_free(&worker);
    /* Relaxed: main only polls this count while shutting down. */
    atomic_fetch_sub_explicit(&workers_alive, 1, memory_order_relaxed);
    return NULL;
}

/* Opens the --listen socket: "unix:/PATH" (mode applied, a stale socket file
 * replaced), "HOST:PORT" or ":PORT" (all addresses). Returns the listening
 * descriptor, or -1 after logging why. libfcgi's FCGX_OpenSocket would exit()
 * on its own on errors, without naming the flag. */
static int open_listen_socket(const char *spec, mode_t mode)
{
    int fd = -1, one = 1, rc;

    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        const char *path = spec + 5;
        if (strlen(path) >= sizeof(sun.sun_path)) {
            log_error("--listen %s: path too long", spec);
            return -1;
        }
        memcpy(sun.sun_path, path, strlen(path) + 1);
        unlink(path); /* a stale socket from an earlier run */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, mode) < 0)
            goto fail;
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE};
        struct addrinfo *ai = NULL;
        char host[256];
        const char *colon = strrchr(spec, ':');
        size_t hlen = (size_t)(colon - spec);
        if (hlen >= sizeof(host)) {
            log_error("--listen %s: host name too long", spec);
            return -1;
        }
        memcpy(host, spec, hlen);
        host[hlen] = '\0';
        rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &ai);
        if (rc != 0) {
            log_error("--listen %s: %s", spec, gai_strerror(rc));
            return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        rc = fd < 0 ? -1 : bind(fd, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        if (rc < 0)
            goto fail;
    }
    if (listen(fd, 1024) < 0)
        goto fail;
    return fd;
fail:
    log_error("--listen %s: %s", spec, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static int run_cgi(void)
{
    struct serve_worker worker;
    struct out out;

    memset(&worker, 0, sizeof(worker));
    config.mode = "cgi";
    out_init_fd(&out, STDOUT_FILENO, &stop_requested);
    serve_request(&worker, &config, environ, &out);
    serve_worker_free(&worker);
    return 0;
}

static int run_fastcgi(const struct options *o)
{
    pthread_attr_t attr;
    sigset_t block, old;
    uint32_t started = 0;
    uint64_t deadline;

    config.mode = "fastcgi";
    /* Workers never take the stop signals: only the main thread does, so a
     * worker's write is never interrupted. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (uint32_t i = 0; i < o->threads; i++) {
        pthread_t tid;
        atomic_fetch_add_explicit(&workers_alive, 1, memory_order_relaxed);
        if (pthread_create(&tid, &attr, worker_main, NULL) != 0) {
            atomic_fetch_sub_explicit(&workers_alive, 1, memory_order_relaxed);
            log_warn("could start only %u of %u threads", started, o->threads);
            break;
        }
        started++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started == 0) {
        log_error("no worker thread could be started");
        return 1;
    }
    log_info("FastCGI responder ready: %u threads, up to %u viewers", started, o->max_viewers);

    while (!stop_requested)
        pause();

    /* Wake the workers sitting in accept(), then give streams a moment to end
     * (they see the stop flag within their one-second wait). */
    shutdown(listen_fd, SHUT_RDWR);
    deadline = time_mono_ns() + SHUTDOWN_GRACE_NS;
    while (atomic_load_explicit(&workers_alive, memory_order_relaxed) > 0 &&
           time_mono_ns() < deadline) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int is_cgi;

    log_init("capd.fcgi", 0);
    parse_options(argc, argv, &o);
    log_init("capd.fcgi", o.verbose);
    if (ring_prefix_from_env(&config.prefix) < 0) {
        log_error("CAPD_SHM_PREFIX must be 1-32 characters from a-z, 0-9, '_' and '-'");
        return EXIT_USAGE;
    }
    config.max_viewers = o.max_viewers;
    config.fanout = !o.per_thread;
    config.stop = &stop_requested;

    /* libfcgi installs its own SIGTERM handler only where none is set, and it
     * only sets a flag that blocked threads never see: ours goes first. */
    install_signals(1);
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    if (o.listen) {
        /* Our own socket (nginx, Apache mod_proxy_fcgi): no spawner needed. */
        listen_fd = open_listen_socket(o.listen, (mode_t)o.socket_mode);
        if (listen_fd < 0)
            return 1;
        log_info("listening on %s", o.listen);
        return run_fastcgi(&o);
    }
    is_cgi = FCGX_IsCGI();
    if (is_cgi)
        install_signals(0);
    return is_cgi ? run_cgi() : run_fastcgi(&o);
}
