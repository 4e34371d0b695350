/* busguard.c - survive the SIGBUS a read of shared memory raises after another process shrank it.
 */
#include "busguard.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

_Thread_local sigjmp_buf *busguard_active;

static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig)
{
    sigjmp_buf *jb = busguard_active;
    if (jb)
        siglongjmp(*jb, 1); /* a guarded access: back to the guard */
    /* Not ours: restore the default, and the faulting access repeats and kills. */
    signal(sig, SIG_DFL);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    /* SA_NODEFER: the jump leaves the handler without sigreturn, so SIGBUS
     * must not stay blocked (guards use sigsetjmp(jb, 0): no mask restore). */
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGBUS, &sa, NULL);
}

void busguard_install(void)
{
    pthread_once(&install_once, install);
}
