/* source_pacer.c - frame pacing on CLOCK_MONOTONIC for sources that run on their own clock. */
#include <errno.h>

#include "source.h"
#include "util.h"

void source_pacer_init(struct source_pacer *pacer, uint32_t fps_milli)
{
    pacer->period_ns = (uint64_t)1000000000000u / (fps_milli ? fps_milli : 1000u);
    pacer->next_ns = time_mono_ns();
}

int source_pacer_wait(struct source_pacer *pacer, int timeout_ms)
{
    uint64_t now = time_mono_ns();
    uint64_t limit = now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    int rc;

    if (now < pacer->next_ns) {
        rc = time_sleep_until_ns(pacer->next_ns < limit ? pacer->next_ns : limit);
        if (rc < 0)
            return rc;
        now = time_mono_ns();
        if (now < pacer->next_ns)
            return 0;
    }
    /* Due. Schedule the next frame on the fixed grid, so the rate does not
     * drift; when more than a period behind (a stall), restart the grid from
     * now rather than bursting to catch up. */
    pacer->next_ns += pacer->period_ns;
    if (pacer->next_ns + pacer->period_ns < now)
        pacer->next_ns = now + pacer->period_ns;
    return 1;
}
