/* botsys-launch: start a bot with its resource limits and a parent-death signal, in one exec.
 *
 *   botsys-launch PARENT_PID [NAME=SOFT[:HARD] ...] -- COMMAND [ARG ...]
 *
 * NAME is one of core, data, as, nofile, nproc, fsize, cpu (prlimit's names; HARD defaults
 * to SOFT). It does what `setpriv --pdeathsig KILL -- prlimit ... --` does with two execs:
 * each exec of those costs ~1 ms of CPU and of start-up latency per bot (bench/spawn.py).
 * The signal is armed first; if the server (PARENT_PID) died before that, the bot never
 * starts. Anything wrong exits 127 with one line on stderr, before COMMAND runs.
 * Built by botsys/runners/launcher.py; without a C compiler the two-program chain is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static const struct {
    const char *name;
    int resource;
} LIMITS[] = {
    {"core", RLIMIT_CORE},     {"data", RLIMIT_DATA},   {"as", RLIMIT_AS},
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"fsize", RLIMIT_FSIZE},
    {"cpu", RLIMIT_CPU},
};

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "botsys-launch: %s: %s\n", what, detail);
    return 127;
}

/* A whole decimal number, nothing else. */
static int parse_number(const char *text, const char *stop, rlim_t *out) {
    char *end;
    if (text == stop || *text < '0' || *text > '9') return -1;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end != stop) return -1;
    *out = (rlim_t)value;
    return 0;
}

static int apply_limit(const char *spec) {
    const char *eq = strchr(spec, '=');
    if (eq == NULL) return -1;
    size_t name_len = (size_t)(eq - spec);
    for (size_t i = 0; i < sizeof LIMITS / sizeof LIMITS[0]; i++) {
        if (strlen(LIMITS[i].name) != name_len || strncmp(spec, LIMITS[i].name, name_len) != 0)
            continue;
        const char *soft = eq + 1, *colon = strchr(soft, ':');
        const char *soft_end = colon ? colon : soft + strlen(soft);
        struct rlimit limit;
        if (parse_number(soft, soft_end, &limit.rlim_cur) != 0) return -1;
        limit.rlim_max = limit.rlim_cur;
        if (colon && parse_number(colon + 1, colon + 1 + strlen(colon + 1), &limit.rlim_max) != 0)
            return -1;
        if (limit.rlim_cur > limit.rlim_max) return -1;
        return setrlimit(LIMITS[i].resource, &limit) == 0 ? 0 : -2;
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 4) return fail("usage", "botsys-launch PARENT_PID [NAME=SOFT[:HARD] ...] -- COMMAND");
    char *end;
    errno = 0;
    long parent = strtol(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || end == argv[1] || parent <= 1)
        return fail("not a parent pid", argv[1]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return fail("prctl", strerror(errno));
    if (getppid() != (pid_t)parent) return fail("the server is gone", argv[1]);
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        int status = apply_limit(argv[i]);
        if (status == -1) return fail("not a limit (NAME=SOFT[:HARD])", argv[i]);
        if (status == -2) return fail(argv[i], strerror(errno));
    }
    if (i + 1 >= argc) return fail("usage", "no COMMAND after --");
    execvp(argv[i + 1], &argv[i + 1]);
    return fail(argv[i + 1], strerror(errno));
}
