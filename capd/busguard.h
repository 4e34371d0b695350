/* busguard.h - survive the SIGBUS a read of shared memory raises after another process shrank it.
 */
#ifndef CAPD_BUSGUARD_H
#define CAPD_BUSGUARD_H

/*
 * A process with write access to a POSIX shm object can ftruncate() it while
 * we have it mapped; touching a page past the new end then raises SIGBUS,
 * which would kill a responder (or capd, for the presence object). Code that
 * touches such a mapping runs under a guard: a SIGBUS on this thread while a
 * guard is set jumps back to it, and the caller treats the object as gone.
 * A SIGBUS anywhere else keeps its default action (the process dies).
 *
 * Usage: a public entry point wraps its unguarded body,
 *
 *     int ring_reader_next(...) { BUSGUARD_RETURN(reader_next(...), reader_lost(r, f)); }
 *
 * The guarded call must own no resource that the jump would leak (no locks,
 * no allocations): it only reads and writes the mapping and its own object.
 * Guards nest. Thread-safe: the guard is per thread. The handler is
 * the process's SIGBUS handler; programs using this module must not install
 * their own.
 */
#include <setjmp.h>

extern _Thread_local sigjmp_buf *busguard_active;

/* Installs the SIGBUS handler, once per process (later calls do nothing). */
void busguard_install(void);

/*
 * BUSGUARD_RETURN(call, on_fault): the body of a guarded wrapper. Evaluates the
 * int expression `call` under a guard and returns its value; if it faults,
 * returns `on_fault` (evaluated after the jump) instead. Must be the last
 * statement of a function returning int: it always returns.
 */
#define BUSGUARD_RETURN(call, on_fault)                                                            \
    do {                                                                                           \
        sigjmp_buf busguard_jb_, *busguard_prev_ = busguard_active;                                \
        int busguard_rc_;                                                                          \
        busguard_install();                                                                        \
        if (sigsetjmp(busguard_jb_, 0)) {                                                          \
            busguard_active = busguard_prev_;                                                      \
            return (on_fault);                                                                     \
        }                                                                                          \
        busguard_active = &busguard_jb_;                                                           \
        busguard_rc_ = (call);                                                                     \
        busguard_active = busguard_prev_;                                                          \
        return busguard_rc_;                                                                       \
    } while (0)

#endif
