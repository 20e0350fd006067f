/* botsys-launch: start a bot with its resource limits, and make its whole process group die
 * with the server.
 *
 *   botsys-launch PARENT_PID [NAME=SOFT[:HARD] ...] -- COMMAND [ARG ...]
 *
 * NAME is one of core, data, as, nofile, nproc, fsize, cpu (prlimit's names; HARD defaults
 * to SOFT). It replaces `setpriv --pdeathsig KILL -- prlimit ... --`, whose two execs cost
 * ~1 ms of CPU and of start-up latency per bot (bench/spawn.py), and it does more:
 *
 * The launcher stays in front of the bot, in the bot's process group, as its parent. When the
 * server (PARENT_PID) dies, even by kill -9, the kernel signals the launcher (parent-death
 * signal), which kills the whole group: the bot and every process the bot started. (The
 * parent-death signal alone reaches only the bot's own process; its children outlived a
 * killed server.) Signals the server sends the group (SIGTERM on timeout or cancel) are the
 * bot's to handle: the launcher blocks them, waits for the bot and ends the way it ended
 * (same exit code, or the same signal), so the server sees the bot's own exit.
 *
 * If the server died before the signal was armed, the bot never starts. Anything wrong exits
 * 127 with one line on stderr, before COMMAND runs.
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
#include <sys/wait.h>
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

/* The server is gone: end the bot's whole process group, the launcher with it. */
static void server_gone(int sig) {
    (void)sig;
    kill(0, SIGKILL);
}

/* Die of the signal that killed the bot (no core file of the launcher for the bot's crash). */
static int end_like(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    int sig = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    kill(getpid(), sig);
    return 128 + sig; /* a signal whose default is not to terminate */
}

int main(int argc, char **argv) {
    if (argc < 4) return fail("usage", "botsys-launch PARENT_PID [NAME=SOFT[:HARD] ...] -- COMMAND");
    char *end;
    errno = 0;
    long parent = strtol(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || end == argv[1] || parent <= 1)
        return fail("not a parent pid", argv[1]);
    /* A real-time signal: nobody sends it but the kernel, on the server's death. */
    int gone_signal = SIGRTMIN + 1;
    struct sigaction gone = {0};
    gone.sa_handler = server_gone;
    sigemptyset(&gone.sa_mask);
    if (sigaction(gone_signal, &gone, NULL) != 0) return fail("sigaction", strerror(errno));
    if (prctl(PR_SET_PDEATHSIG, gone_signal) != 0) return fail("prctl", strerror(errno));
    if (getppid() != (pid_t)parent) return fail("the server is gone", argv[1]);
    /* Lead a process group of our own (the server starts us so; anyone else may not), so the
     * group killed on the server's death is the bot's and never the caller's. */
    if (getpgrp() != getpid() && setpgid(0, 0) != 0) return fail("setpgid", strerror(errno));
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        int status = apply_limit(argv[i]);
        if (status == -1) return fail("not a limit (NAME=SOFT[:HARD])", argv[i]);
        if (status == -2) return fail(argv[i], strerror(errno));
    }
    if (i + 1 >= argc) return fail("usage", "no COMMAND after --");

    /* Blocked before the fork, so none is lost: the bot unblocks them (pending ones arrive
     * then), the launcher never does and outlives them to report the bot's end. */
    sigset_t for_the_bot, before;
    sigemptyset(&for_the_bot);
    int group_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t k = 0; k < sizeof group_signals / sizeof group_signals[0]; k++)
        sigaddset(&for_the_bot, group_signals[k]);
    sigprocmask(SIG_BLOCK, &for_the_bot, &before);
    pid_t launcher = getpid();
    pid_t bot = fork();
    if (bot < 0) return fail("fork", strerror(errno));
    if (bot == 0) {
        /* Dies with the launcher too (it is only ever SIGKILLed, with the whole group). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != launcher) _exit(127);
        signal(gone_signal, SIG_DFL);
        sigprocmask(SIG_SETMASK, &before, NULL);
        execvp(argv[i + 1], &argv[i + 1]);
        _exit(fail(argv[i + 1], strerror(errno)));
    }
    int status;
    while (waitpid(bot, &status, 0) < 0) {
        if (errno != EINTR) return fail("waitpid", strerror(errno));
    }
    return end_like(status);
}
