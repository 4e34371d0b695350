/* test_readonly.c - the responder maps the ring read-only: a write through its mapping faults. */
#include "../../capd/ring.c"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "check.h"

#define CAMERA "readonly"

static char prefix[32];

/* ---- fixtures ------------------------------------------------------------------ */

static struct ring_writer *make_writer(void)
{
    struct ring_writer_params p = {
        .prefix = prefix,
        .name = CAMERA,
        .source = "test",
        .slot_count = 4,
        .slot_size = 65536,
        .width = 64,
        .height = 48,
        .fps_milli = 30000,
        .group = (gid_t)-1,
    };
    struct ring_writer *w = NULL;
    int rc = ring_writer_create(&p, &w);
    CHECKF(rc == 0, "ring_writer_create: %s", strerror(-rc));
    return w;
}

/* Publishes one JPEG-framed frame of size bytes. */
static void publish(struct ring_writer *w, size_t size)
{
    static uint8_t frame[4096];
    struct ring_frame_meta meta = {64, 48, time_real_us(), 0};

    memset(frame, 0x5a, size);
    frame[0] = 0xFF;
    frame[1] = 0xD8;
    frame[size - 2] = 0xFF;
    frame[size - 1] = 0xD9;
    CHECK(ring_writer_publish(w, frame, size, &meta) > 0);
}

/* A writer, and a reader attached to its object the way a responder attaches. */
struct pair {
    struct ring_writer *w;
    struct ring_reader *r;
};

static int pair_open(struct pair *p)
{
    int rc;

    p->w = make_writer();
    p->r = ring_reader_create(prefix, CAMERA);
    if (!p->w)
        return -1;
    publish(p->w, 1000);
    rc = ring_reader_check(p->r);
    CHECKF(rc == 0, "ring_reader_check: %s", strerror(-rc));
    CHECK(p->r->map != NULL);
    return rc == 0 && p->r->map ? 0 : -1;
}

static void pair_close(struct pair *p)
{
    ring_reader_destroy(p->r);
    ring_writer_destroy(p->w, 0);
}

/* ---- the child that writes ----------------------------------------------------- */

/* Where the child's write must fault. The pointer itself is volatile: the compiler
 * must store it before the faulting write, which the handler then compares. */
static volatile uint8_t *volatile fault_target;

/* Only the expected fault counts: a write refused for lack of permission (not a
 * missing page) at exactly the target. Then the handler restores the default
 * action and returns; the write runs again and kills the child with SIGSEGV. */
static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    struct sigaction dfl;

    (void)ctx;
    if (si->si_code != SEGV_ACCERR)
        _exit(3);
    if (si->si_addr != (void *)fault_target)
        _exit(4);
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
}

/* Forks a child that stores value at target. Returns its wait status. */
static int write_in_child(volatile uint8_t *target, uint8_t value)
{
    int status = 0;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        CHECKF(0, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
        fault_target = target;
        atomic_signal_fence(memory_order_seq_cst);
        *target = value;
        _exit(0); /* the write went through */
    }
    if (waitpid(pid, &status, 0) != pid)
        CHECKF(0, "waitpid: %s", strerror(errno));
    return status;
}

/* Checks that a child writing at target dies of SIGSEGV and that the byte is unchanged. */
static void expect_write_faults(volatile uint8_t *target, const char *what)
{
    uint8_t before = *target;
    int status = write_in_child(target, (uint8_t)~before);

    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
           "a write to the %s through the reader's mapping: child %s %d (SIGSEGV expected; exit 0 "
           "means the write went through, 3 a fault of another kind, 4 one elsewhere)",
           what, WIFSIGNALED(status) ? "killed by signal" : "exited with",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    CHECKF(*target == before, "the %s byte changed", what);
}

/* ---- cases ---------------------------------------------------------------------- */

/* /proc/self/maps lists the reader's mapping of the object as r--s: shared, no write. */
static void test_mapping_is_read_only_in_maps(void)
{
    struct pair p;
    char line[512], expect_path[128], perms[8] = "";
    unsigned long start, end;
    FILE *maps;

    if (pair_open(&p) < 0)
        goto out;
    snprintf(expect_path, sizeof(expect_path), "/dev/shm/%s%s", prefix, CAMERA);
    maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL);
    while (maps && fgets(line, sizeof(line), maps)) {
        char p4[8];
        if (sscanf(line, "%lx-%lx %4s", &start, &end, p4) == 3 &&
            start == (unsigned long)(uintptr_t)p.r->map) {
            snprintf(perms, sizeof(perms), "%s", p4);
            CHECKF(strstr(line, expect_path) != NULL, "mapping is not of %s: %s", expect_path,
                   line);
        }
    }
    if (maps)
        fclose(maps);
    CHECK_STREQ(perms, "r--s");
out:
    pair_close(&p);
}

/* A child writing through the reader's mapping dies of SIGSEGV: header, slot table
 * and frame data alike. */
static void test_write_to_header_faults(void)
{
    struct pair p;

    if (pair_open(&p) == 0)
        expect_write_faults((volatile uint8_t *)p.r->map + offsetof(struct ring_header, state),
                            "header's state");
    pair_close(&p);
}

static void test_write_to_slot_table_faults(void)
{
    struct pair p;

    if (pair_open(&p) == 0)
        expect_write_faults((volatile uint8_t *)p.r->slots, "first slot's seq");
    pair_close(&p);
}

static void test_write_to_frame_data_faults(void)
{
    struct pair p;

    if (pair_open(&p) == 0) {
        volatile uint8_t *last = (volatile uint8_t *)p.r->data +
                                 (size_t)p.r->layout.slot_count * p.r->layout.slot_size - 1;
        expect_write_faults((volatile uint8_t *)p.r->data, "first frame byte");
        expect_write_faults(last, "last data byte");
    }
    pair_close(&p);
}

/* The reader cannot upgrade its mapping: the object was opened read-only. */
static void test_mprotect_cannot_add_write(void)
{
    struct pair p;

    if (pair_open(&p) == 0) {
        int rc = mprotect((void *)p.r->map, 4096, PROT_READ | PROT_WRITE);
        CHECKF(rc < 0 && errno == EACCES, "mprotect(PROT_WRITE) returned %d (%s)", rc,
               rc < 0 ? strerror(errno) : "succeeded");
    }
    pair_close(&p);
}

/* The control: the same child writing through the writer's mapping succeeds, and
 * the reader sees the byte. So the faults above come from the reader's mapping,
 * not from the child machinery. */
static void test_control_writer_mapping_is_writable(void)
{
    struct pair p;

    if (pair_open(&p) == 0) {
        size_t off = offsetof(struct ring_header, reserved1);
        int status = write_in_child((volatile uint8_t *)p.w->map + off, 0xA5);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "a write through the writer's mapping: status %#x", status);
        CHECK_EQ_INT(((const volatile uint8_t *)p.r->map)[off], 0xA5);
    }
    pair_close(&p);
}

/* After the children's attempts the reader still delivers intact frames. */
static void test_reader_unharmed(void)
{
    struct pair p;
    struct ring_frame f;

    memset(&f, 0, sizeof(f));
    if (pair_open(&p) == 0) {
        expect_write_faults((volatile uint8_t *)p.r->slots, "first slot's seq");
        publish(p.w, 3000);
        CHECK_EQ_INT(ring_reader_next(p.r, &f, 1000, NULL), 0);
        CHECK_EQ_INT(f.size, 3000);
        CHECK(f.size == 3000 && f.data[0] == 0xFF && f.data[1] == 0xD8 && f.data[1500] == 0x5a);
    }
    ring_frame_free(&f);
    pair_close(&p);
}

int main(void)
{
    snprintf(prefix, sizeof(prefix), "tro%d-", (int)getpid());
    RUN_TEST(test_mapping_is_read_only_in_maps);
    RUN_TEST(test_write_to_header_faults);
    RUN_TEST(test_write_to_slot_table_faults);
    RUN_TEST(test_write_to_frame_data_faults);
    RUN_TEST(test_mprotect_cannot_add_write);
    RUN_TEST(test_control_writer_mapping_is_writable);
    RUN_TEST(test_reader_unharmed);
    return check_summary();
}
