/* botsys-launch: start a bot with its resource limits, as its user, in namespaces of its own,
 * and make everything it starts die with it and with the server.
 *
 *   botsys-launch PARENT_PID [NAME=SOFT[:HARD] ...] [user=UID:GID] [ns=pid] [ns=net]
 *                 -- COMMAND [ARG ...]
 *
 * NAME is one of core, data, as, nofile, nproc, fsize, cpu (prlimit's names; HARD defaults
 * to SOFT). It replaces `setpriv --pdeathsig KILL [--reuid ..] -- prlimit ... --`, whose two
 * execs cost ~1 ms of CPU and of start-up latency per bot (bench/spawn.py), and it does more:
 *
 * The launcher stays in front of the bot, in the bot's process group, as its parent (its
 * grandparent, with init or the reaper below in between). When the server (PARENT_PID) dies,
 * even by kill -9, the kernel signals the launcher (parent-death signal), which kills the
 * whole group. Signals the server sends the group (SIGTERM on timeout or cancel) are the
 * bot's to handle: the launcher blocks them, waits for the bot and ends the way it ended (same
 * exit code, or the same signal), so the server sees the bot's own exit.
 *
 * user=UID:GID (the server is root): the bot runs as that user and group, with no
 * supplementary groups and no_new_privs; the switch happens in the bot's own process, so the
 * launcher (root) can still kill everything.
 *
 * ns=pid: the launcher unshares a PID namespace and forks a small init (pid 1 inside) that
 * forks the bot (pid 2) and reaps whatever is orphaned there. When the bot ends, init ends, and
 * the kernel kills every process left in the namespace (setsid or double-forked daemons
 * included) before init can be reaped: when the launcher exits, nothing of the attempt is left.
 * Killing the group (timeout, cancel, the server's death) kills init, with the same effect.
 * /proc is not remounted: the bot sees the machine's /proc (/proc/self is right; getpid()
 * says 2). ns=net: a new network namespace with only loopback, up. Not root: the namespaces
 * are owned by a new user namespace in which the bot keeps its uid (and gets no capability).
 *
 * Without ns=pid (the machine refuses namespaces), a reaper takes init's place: a child
 * subreaper (PR_SET_CHILD_SUBREAPER) in a process group of its own, which forks the bot into
 * the launcher's group. Every process the bot's tree orphans (setsid or double-forked
 * daemons) is reparented to the reaper instead of the machine's init; when the bot ends, the
 * reaper SIGKILLs its children (and the groups they lead), reaps, and repeats until it has
 * none. Being outside the group, it survives the group's SIGKILL (timeout, cancel, the
 * server's death), and its parent-death signal tells it the launcher died: it then kills the
 * bot and everything adopted the same way. The launcher is a subreaper too, for what is left
 * if the reaper itself is killed.
 *
 * If the server died before the signal was armed, the bot never starts. Anything wrong exits
 * 127 with one line on stderr, before COMMAND runs.
 * Built by botsys/runners/launcher.py; without a C compiler the two-program chain is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

/* What runs the bot, beyond the limits. */
struct plan {
    int set_user;
    uid_t uid;
    gid_t gid;
    int ns; /* CLONE_NEWPID and/or CLONE_NEWNET */
};

/* "user=UID:GID", "ns=pid", "ns=net": 0 when taken, 1 when not one of these, -1 when bad. */
static int parse_option(const char *arg, struct plan *plan) {
    if (strcmp(arg, "ns=pid") == 0 || strcmp(arg, "ns=net") == 0) {
        plan->ns |= arg[3] == 'p' ? CLONE_NEWPID : CLONE_NEWNET;
        return 0;
    }
    if (strncmp(arg, "user=", 5) != 0) return 1;
    const char *uid = arg + 5, *colon = strchr(uid, ':');
    rlim_t u, g;
    if (colon == NULL || parse_number(uid, colon, &u) != 0) return -1;
    if (parse_number(colon + 1, colon + 1 + strlen(colon + 1), &g) != 0) return -1;
    if (u == 0 || u > 0x7fffffff || g > 0x7fffffff) return -1; /* never "switch" to root */
    plan->set_user = 1;
    plan->uid = (uid_t)u;
    plan->gid = (gid_t)g;
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* In a new user namespace: keep our own uid and gid (one-line maps an unprivileged process
 * may write for itself). */
static int map_self(uid_t uid, gid_t gid) {
    char line[64];
    if (write_file("/proc/self/setgroups", "deny") != 0) return -1;
    snprintf(line, sizeof line, "%u %u 1", (unsigned)uid, (unsigned)uid);
    if (write_file("/proc/self/uid_map", line) != 0) return -1;
    snprintf(line, sizeof line, "%u %u 1", (unsigned)gid, (unsigned)gid);
    return write_file("/proc/self/gid_map", line);
}

/* A new network namespace has a loopback device, down. */
static int loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    close(s);
    return ok ? 0 : -1;
}

static int enter_namespaces(int ns) {
    int flags = ns;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (uid != 0) flags |= CLONE_NEWUSER; /* not root: a user namespace owns the others */
    if (unshare(flags) != 0) return fail("unshare", strerror(errno));
    if (uid != 0 && map_self(uid, gid) != 0) return fail("user namespace", strerror(errno));
    if ((ns & CLONE_NEWNET) && loopback_up() != 0) return fail("loopback", strerror(errno));
    return 0;
}

/* In the forked child: become the bot (in process group GROUP, if not 0). Never returns. */
static void exec_bot(const struct plan *plan, pid_t parent, pid_t group, const sigset_t *mask,
                     char **argv) {
    if (group != 0 && setpgid(0, group) != 0) _exit(fail("setpgid", strerror(errno)));
    if (plan->set_user &&
        (setgroups(1, &plan->gid) != 0 || setgid(plan->gid) != 0 || setuid(plan->uid) != 0))
        _exit(fail("cannot switch user", strerror(errno)));
    /* After the uid change, which clears it: die with the process that forked us. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(fail("prctl", strerror(errno)));
    signal(SIGRTMIN + 1, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    execvp(argv[0], argv);
    _exit(fail(argv[0], strerror(errno)));
}

/* Reaps orphans until the bot ends; its wait status. */
static int wait_bot(pid_t bot) {
    for (;;) {
        int st;
        pid_t done = waitpid(-1, &st, 0);
        if (done == bot) return st;
        if (done < 0 && errno != EINTR) _exit(fail("waitpid", strerror(errno)));
    }
}

/* The namespace's init: runs the bot, reaps orphans, reports the bot's wait status. */
static void run_init(const struct plan *plan, const sigset_t *mask, char **argv, int report) {
    pid_t me = getpid(); /* 1 */
    pid_t bot = fork();
    if (bot < 0) _exit(fail("fork", strerror(errno)));
    if (bot == 0) exec_bot(plan, me, 0, mask, argv);
    int status = wait_bot(bot);
    if (write(report, &status, sizeof status) != sizeof status) _exit(127);
    _exit(0); /* the kernel now kills what is left in the namespace */
}

/* SIGKILL a child of ours and the process group it leads, if any. Both ids are safe: a child
 * is reaped by nobody but us, and a group's id stays its leader's pid while the group lives. */
static void kill_child(pid_t child) {
    kill(-child, SIGKILL);
    kill(child, SIGKILL);
}

/* Kills every child listed in /proc/self/task/<tid>/children (we have one thread); how many,
 * or -1 if the list cannot be read. */
static int kill_listed_children(void) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int count = 0, digits = 0;
    pid_t pid = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t k = 0; k < n; k++) {
            if (buf[k] >= '0' && buf[k] <= '9') {
                pid = pid * 10 + (buf[k] - '0');
                digits = 1;
            } else if (digits) {
                kill_child(pid);
                count++;
                pid = 0, digits = 0;
            }
        }
    }
    if (digits) {
        kill_child(pid);
        count++;
    }
    close(fd);
    return n < 0 ? -1 : count;
}

static long elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* A fork loop may keep refilling the tree; past this, give up and say so. */
#define END_CHILDREN_MS 1000

/* As a subreaper: kill and reap every child, and every orphan that comes to us meanwhile,
 * until wait() says there are none. A killed process forks no more, so each round ends a
 * level of the tree and what it had started comes to us for the next. */
static void end_children(void) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int listed = kill_listed_children(), st;
        if (listed < 0) {
            fail("cannot list the bot's leftover processes", strerror(errno));
            return;
        }
        /* every listed child was SIGKILLed: that many waits all return */
        for (int k = 0; k < listed; k++) {
            if (waitpid(-1, &st, __WALL) < 0 && errno != EINTR) break;
        }
        if (listed == 0 && waitpid(-1, &st, WNOHANG | __WALL) < 0 && errno == ECHILD) return;
        if (elapsed_ms(&start) > END_CHILDREN_MS) {
            fail("the bot's processes kept forking", "some may outlive it");
            return;
        }
    }
}

static volatile pid_t reaper_bot; /* the bot, while the reaper waits for it */

/* The reaper's parent-death signal: the launcher was killed (with the group, or by the
 * server's death). The bot may have left the group: kill it; wait_bot then returns. */
static void launcher_gone(int sig) {
    (void)sig;
    if (reaper_bot > 0) kill(reaper_bot, SIGKILL);
}

/* No PID namespace: the subreaper that runs the bot in the launcher's group, ends all that
 * is left of its tree, and reports the bot's wait status. */
static void run_reaper(const struct plan *plan, pid_t launcher, int gone_signal,
                       const sigset_t *mask, char **argv, int report) {
    struct sigaction gone = {0};
    gone.sa_handler = launcher_gone;
    sigemptyset(&gone.sa_mask);
    sigset_t gone_only, no_pipe;
    sigemptyset(&gone_only);
    sigaddset(&gone_only, gone_signal);
    sigprocmask(SIG_BLOCK, &gone_only, NULL); /* until the bot's pid is known */
    if (sigaction(gone_signal, &gone, NULL) != 0) _exit(fail("sigaction", strerror(errno)));
    /* The launcher may be gone when we report. Blocked, not ignored: an ignored signal would
     * stay ignored in the bot across exec; the bot gets MASK instead. */
    sigemptyset(&no_pipe);
    sigaddset(&no_pipe, SIGPIPE);
    sigprocmask(SIG_BLOCK, &no_pipe, NULL);
    if (prctl(PR_SET_PDEATHSIG, gone_signal) != 0 || getppid() != launcher) _exit(127);
    if (setpgid(0, 0) != 0) _exit(fail("setpgid", strerror(errno))); /* out of the group */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) _exit(fail("subreaper", strerror(errno)));
    pid_t me = getpid(), bot = fork();
    if (bot < 0) _exit(fail("fork", strerror(errno)));
    if (bot == 0) exec_bot(plan, me, launcher, mask, argv);
    reaper_bot = bot;
    sigprocmask(SIG_UNBLOCK, &gone_only, NULL);
    int status = wait_bot(bot);
    reaper_bot = 0;
    end_children();
    if (write(report, &status, sizeof status) != sizeof status) _exit(127);
    _exit(0);
}

static int wait_for(pid_t child, int *status) {
    while (waitpid(child, status, 0) < 0) {
        if (errno != EINTR) return fail("waitpid", strerror(errno));
    }
    return 0;
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
    struct plan plan = {0};
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        int option = parse_option(argv[i], &plan);
        if (option == -1) return fail("not an option (user=UID:GID, ns=pid, ns=net)", argv[i]);
        if (option == 0) continue;
        int status = apply_limit(argv[i]);
        if (status == -1) return fail("not a limit (NAME=SOFT[:HARD])", argv[i]);
        if (status == -2) return fail(argv[i], strerror(errno));
    }
    if (i + 1 >= argc) return fail("usage", "no COMMAND after --");
    if (plan.set_user && geteuid() != 0) return fail("user=", "needs the launcher to run as root");
    if (plan.ns && enter_namespaces(plan.ns) != 0) return 127;

    /* Blocked before the fork, so none is lost: the bot unblocks them (pending ones arrive
     * then), the launcher never does and outlives them to report the bot's end. */
    sigset_t for_the_bot, before;
    sigemptyset(&for_the_bot);
    int group_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t k = 0; k < sizeof group_signals / sizeof group_signals[0]; k++)
        sigaddset(&for_the_bot, group_signals[k]);
    sigprocmask(SIG_BLOCK, &for_the_bot, &before);
    pid_t launcher = getpid();
    int in_namespace = (plan.ns & CLONE_NEWPID) != 0;
    /* orphans of a killed reaper come here */
    if (!in_namespace && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return fail("subreaper", strerror(errno));
    int report[2] = {-1, -1};
    if (pipe2(report, O_CLOEXEC) != 0) return fail("pipe", strerror(errno));
    pid_t child = fork();
    if (child < 0) return fail("fork", strerror(errno));
    if (child == 0) {
        close(report[0]);
        if (!in_namespace)
            run_reaper(&plan, launcher, gone_signal, &before, &argv[i + 1], report[1]);
        /* init dies with the launcher (it is only ever SIGKILLed, with the whole group, so
         * init cannot miss it; getppid() is 0 here: the launcher is outside the namespace) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) _exit(127);
        signal(gone_signal, SIG_DFL);
        run_init(&plan, &before, &argv[i + 1], report[1]);
    }
    int status;
    if (wait_for(child, &status) != 0) return 127;
    int bot_status; /* init's or the reaper's report; none if it was killed */
    close(report[1]);
    if (read(report[0], &bot_status, sizeof bot_status) == sizeof bot_status)
        status = bot_status;
    else if (!in_namespace)
        end_children(); /* the reaper was killed: its orphans are ours */
    return end_like(status);
}
