"""The zygote process: a Python that loaded the standard modules once and forks one bot per attempt.

Started by zygote.py (one per ``start = "fork"`` bot type and replica) as
``python -c BOOT zygote_main.py PLAN_JSON``, holding its end of a SOCK_SEQPACKET socket (``plan["sock"]``).
Standard library only, run as a script: a bot must not find botsys imported. It never runs bot
code itself, so nothing one bot does reaches the next: every attempt is a fork of this pristine
process.

Per attempt the server sends ``{"id", "argv", "env", "cwd"}`` with three descriptors (the bot's
stdin, stdout, stderr). The zygote forks the attempt's *leader*, which does in Python what
botsys-launch (launch.c) does in C, in the same order, with the same guarantees (read that file
first): its own process group, the rlimits, the namespaces, the group signals blocked, then a PID
namespace's init (or, where namespaces are refused, a subreaper) that forks the bot. The bot
switches user, arms its parent-death signal, sets no_new_privs and, where the launcher would exec,
runs the script as ``__main__``. The leader ends the way the bot ended. As root with PID
namespaces the leader is left out: the zygote unshares, forks the namespace's init directly
(run_direct_init) and goes back to its own namespaces with setns. There it also keeps a spare:
the next attempt's namespace and init, whose bot (run_spare_bot) set up all it could and waits
on a socket for the request and its descriptors; a new spare is forked after each reply.

The zygote answers ``{"id", "pid"}`` (the leader: pid = process group) then ``{"exit": pid,
"status"}``; it keeps the leader a zombie (waitid WNOWAIT) until the server sends ``{"release":
pid}``, so the server's last killpg of the group can never hit a reused pid. When the server dies
the zygote dies (parent-death signal), and every leader with it, which kills its group.
"""

import _signal
import _socket
import atexit
import ctypes
import errno
import fcntl
import json
import os
import resource
import selectors
import socket
import stat
import struct
import sys
import time
import types

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP, IFF_RUNNING = 0x1, 0x40
# Nobody sends it but the kernel, on the death of the process that forked us (as in launch.c).
GONE = _signal.SIGRTMIN + 1
GROUP_SIGNALS = {
    _signal.SIGTERM,
    _signal.SIGINT,
    _signal.SIGHUP,
    _signal.SIGQUIT,
    _signal.SIGUSR1,
    _signal.SIGUSR2,
}
LIMITS = {
    "core": resource.RLIMIT_CORE,
    "data": resource.RLIMIT_DATA,
    "as": resource.RLIMIT_AS,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "cpu": resource.RLIMIT_CPU,
}
NAME = "botsys-zygote"  # the comm of the zygote and of the processes around each bot
SPARE = "botsys-spare"  # the comm of a spare's bot until its attempt comes
END_CHILDREN_S = 1.0  # a fork loop may keep refilling the tree; past this, give up and say so
FDS_SPACE = _socket.CMSG_LEN(3 * 4)  # an attempt's three descriptors (C ints)
MAX_MESSAGE = 1 << 20  # an attempt's env and argv; the payload goes through stdin, not here
# Loaded once here so that no bot pays for it: the protocol's module. Not more by default: every
# MB the zygote maps costs each attempt's three forks and exits (page tables, copy-on-write
# faults). Measured here: 13.0 MB bare, 17.3 MB with a dozen common modules (random pulls in
# OpenSSL), 22.1 MB with forty, and fork+exit took 2.1 / 3.5 / 6.8 ms. Types name what their
# bots use in ``preload``.
PRELOAD = ("json",)
# Each script's code, compiled here once per version for every fork to come instead of by each
# bot (a spawned python compiles its script at every start: ~3.5 us a line here, and more in a
# fork, whose compiler copies the pages it writes). Only scripts the bot user may read, in
# folders it may enter, up to CODE_MAX_BYTES each; the oldest go first past CODE_MAX_SCRIPTS
# or CODE_MAX_TOTAL bytes of source (their code makes the zygote bigger, and every fork with it).
CODE = {}  # script path -> (its stat key, code object)
CODE_MAX_SCRIPTS = 32
CODE_MAX_BYTES = 1 << 20
CODE_MAX_TOTAL = 4 << 20

_libc = ctypes.CDLL(None, use_errno=True)

# Every page a forked child writes is copied first (copy-on-write), and running a function for
# the first time writes to it (3.11's adaptive bytecode) and to every object it touches: the
# child's cost grows with the Python it runs. So the children here call the C functions behind
# ``signal`` (``_signal``, plain ints) instead of its enum-converting wrappers, which cost each
# child ~60 copied pages more, read their descriptors without socket.recv_fds' wrapper (~20),
# and get sys.path[0] from the server (os.path.abspath: ~40).


class Failed(Exception):
    """Set-up of an attempt failed: one line on the bot's stderr, exit 127 (as launch.c)."""


def _call(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise Failed(f"{what}: {os.strerror(err)}")


def prctl(option, value):
    _call(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def set_name(name):
    """/proc/<pid>/comm: "botsys-zygote" for our own processes, the interpreter's for the bot."""
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


# ---- the bot: what launch.c's exec_bot does, then the interpreter's part of `python script`


def run_bot(plan, parent, group, mask, request):
    """In the forked bot: become the bot and run the script. Never returns."""
    _become_bot(plan, parent, group)
    os.closerange(3, _max_fd())  # the report pipe: exec would have closed it (O_CLOEXEC)
    _run(plan, mask, request)


def run_spare_bot(plan, mask, sock):
    """A spare's bot (pid 2 of its namespace): everything a bot does before its attempt is
    known, then it waits on ``sock`` for the attempt's request and its three descriptors."""
    _become_bot(plan, 1, 0)  # named SPARE until _run names it as the interpreter
    os.closerange(3, sock)  # the report pipe, and whatever else came from init
    os.closerange(sock + 1, _max_fd())
    s = _socket.socket(fileno=sock)
    try:
        data, fds = _recv_fds(s)
    finally:
        s.close()
    if not data or len(fds) != 3:
        os._exit(0)  # the zygote let the spare go
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    _run(plan, mask, json.loads(data))


def _become_bot(plan, parent, group):
    """The bot's own set-up: its group, the bot user, death with its parent, no_new_privs."""
    if group and os.getpgrp() != group:
        os.setpgid(0, group)
    user = plan.get("user")
    if user:
        uid, gid = user
        os.setgroups([gid])
        os.setgid(gid)
        os.setuid(uid)
    # After the uid change, which clears it: die with the process that forked us.
    prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(127)
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _run(plan, mask, request):
    """The bot's last steps before its script: its name, signals as a fresh python has them."""
    set_name(plan["comm"])
    _signal.signal(GONE, _signal.SIG_DFL)
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)  # as a fresh python has it
    _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
    os._exit(run_script(request, plan.get("args_area")))


def run_script(request, args_area=None):
    """Run the script as ``python script args`` would; its exit code."""
    script, *_ = request["argv"]
    os.chdir(request["cwd"])
    _set_environ(request["env"])
    sys.argv = list(request["argv"])
    _show_cmdline(args_area, [sys.executable, *sys.argv])
    sys.path.insert(0, request["path0"])  # as `python script` does (the server computed it)
    _fresh_stdio()
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__builtins__ = __builtins__
    main.__cached__ = None
    sys.modules["__main__"] = main  # the zygote's own module is no more reachable by name
    code = 0
    try:
        compiled = _cached_code(script)
        if compiled is None:
            with open(script, "rb") as f:
                source = f.read()
            compiled = compile(source, script, "exec", dont_inherit=True)
        exec(compiled, main.__dict__)
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        code = -_signal.SIGINT
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    # The interpreter's own shutdown: join threads, run atexit, flush.
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:
            sys.excepthook(*sys.exc_info())
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 120  # as python: "Exception ignored ... flushing sys.stdout"
    if code < 0:  # died of SIGINT, as python does for an uncaught KeyboardInterrupt
        _signal.signal(-code, _signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _cached_code(script):
    """The zygote's compile of ``script``, if the file is still that version and this bot may
    read it (else it reads and compiles the file itself, with python's errors)."""
    cached = CODE.get(script)
    if cached is None or cached[1] is None:
        return None
    try:
        if _stat_key(os.stat(script)) != cached[0] or not os.access(script, os.R_OK):
            return None
    except OSError:
        return None
    return cached[1]


def _code_bytes():
    """Source bytes behind the code held in CODE (a stat key's size)."""
    return sum(key[2] for key, compiled in CODE.values() if compiled is not None)


def _stat_key(st):
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _set_environ(env):
    """os.environ (and the C environment) becomes ``env``. The zygote's is the type's scrubbed
    one already, which differs from an attempt's in HOME and TMPDIR: only what differs is set
    (each unsetenv/putenv costs the bot copy-on-write faults)."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def args_area():
    """(start, size) of this process's argument area (what /proc/<pid>/cmdline shows); forks
    share it, so it is read once. None if /proc cannot tell."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49)
    except (OSError, IndexError, ValueError):
        return None
    return (start, end - start) if end > start else None


def _show_cmdline(area, args):
    """/proc/<pid>/cmdline (ps, pgrep) names the bot as a spawned one's would, not the zygote:
    written over the zygote's own argument area, which this copy no longer needs (python keeps
    its own copy of argv; setproctitle does the same). Longer than that area: cut."""
    if not area:
        return
    start, size = area
    data = b"\0".join(os.fsencode(a) for a in args)[: size - 1]
    ctypes.memmove(start, data.ljust(size, b"\0"), size)


def _exit_code(exc):
    value = exc.code
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        print(value, file=sys.stderr)
    except Exception:
        pass
    return 1


def _fresh_stdio():
    """New sys.stdin/stdout/stderr over descriptors 0-2, set up as python sets them for pipes."""
    encoding = os.environ.get("PYTHONIOENCODING", "")
    encoding, _, errors = encoding.partition(":")
    encoding = encoding or "utf-8"
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))  # what -u would come from
    sys.stdin = sys.__stdin__ = open(  # noqa: SIM115 - they live as long as the bot
        0, encoding=encoding, errors=errors or "strict", newline="\n", closefd=False
    )
    sys.stdout = sys.__stdout__ = open(  # noqa: SIM115
        1,
        "w",
        buffering=1 if unbuffered else -1,
        encoding=encoding,
        errors=errors or "strict",
        newline="\n",
        closefd=False,
    )
    if unbuffered:
        sys.stdout.reconfigure(write_through=True)
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2,
        "w",
        buffering=1,
        encoding=encoding,
        errors="backslashreplace",
        newline="\n",
        closefd=False,
    )


# ---- the leader, init and the reaper: launch.c's main, run_init, run_reaper


def lead(plan, request, fds, zygote):
    """In the forked leader (through _in_child: never returns)."""
    in_namespace = _set_up_leader(plan, fds, zygote)
    # Blocked before the fork, so none is lost: the bot unblocks them, we never do.
    before = _signal.pthread_sigmask(_signal.SIG_BLOCK, GROUP_SIGNALS)
    me = os.getpid()
    if not in_namespace:
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a killed reaper come here
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        _in_child(_helper, plan, request, me, before, report_r, report_w, in_namespace)
    os.close(report_w)
    status = _wait_for(child)
    data = os.read(report_r, 4)
    if len(data) == 4:
        status = struct.unpack("i", data)[0]
    elif not in_namespace:
        _end_children()  # the reaper was killed: its orphans are ours
    _end_like(status)


def _set_up_leader(plan, fds, zygote):
    """Pipes, group, parent-death signal, limits, namespaces; True if in a PID namespace."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)  # from here on, errors go to the bot's stderr
    os.closerange(3, _max_fd())  # the zygote's socket, selector and pidfds
    _signal.signal(GONE, _server_gone)
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    prctl(PR_SET_PDEATHSIG, GONE)
    if os.getppid() != zygote:
        raise Failed("the server is gone")
    for name, soft, hard in plan["limits"]:
        resource.setrlimit(LIMITS[name], (soft, hard))
    ns = (CLONE_NEWPID if plan.get("pid_ns") else 0) | (CLONE_NEWNET if plan.get("net_ns") else 0)
    if ns:
        _enter_namespaces(ns)
    return bool(ns & CLONE_NEWPID)


def run_direct_init(plan, request, fds, report_w, spare=None):
    """pid 1 of the attempt's new PID namespace, forked by the zygote itself: what the leader
    and init do together on the other path, for one fork less. It leads the group the server
    signals; as a namespace's init it gets none of those signals but SIGKILL (it has no
    handler), which ends the whole namespace. It reports the bot's wait status, then exits.
    A spare's init (``spare``: the socket its bot waits on) has no attempt yet: its bot gets
    the descriptors later, its own errors go to the zygote's stderr."""
    for target, fd in enumerate(fds or ()):
        os.dup2(fd, target)  # from here on, errors go to the bot's stderr
    os.dup2(report_w, 3)
    if spare is not None:
        os.dup2(spare, 4)
    os.closerange(5 if spare is not None else 4, _max_fd())  # the zygote's socket, selector...
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)  # a handler would let the group's ^C in
    os.setpgid(0, 0)
    prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)  # dies with the zygote: the namespace goes too
    for name, soft, hard in plan["limits"]:
        resource.setrlimit(LIMITS[name], (soft, hard))
    if plan.get("net_ns"):
        _loopback_up()
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, ())
    if spare is not None:
        set_name(SPARE)  # the bot is born with it: ps (and tests) tell a spare from a bot
    bot = os.fork()
    if bot == 0:
        if spare is not None:
            _in_child(run_spare_bot, plan, mask, 4)
        _in_child(run_bot, plan, 1, 0, mask, request)
    if spare is not None:
        set_name(NAME)
        os.close(4)  # the bot's alone: if it dies, the zygote's send fails
    status = _wait_bot(bot)
    os.write(3, struct.pack("i", status))
    os._exit(0)  # the kernel now kills what is left in the namespace


def _helper(plan, request, leader, mask, report_r, report_w, in_namespace):
    os.close(report_r)
    if not in_namespace:
        _run_reaper(plan, request, leader, mask, report_w)
    # init dies with the leader (only ever SIGKILLed, with the whole group)
    prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)
    _signal.signal(GONE, _signal.SIG_DFL)
    me = os.getpid()  # 1
    bot = os.fork()
    if bot == 0:
        _in_child(run_bot, plan, me, 0, mask, request)
    status = _wait_bot(bot)
    os.write(report_w, struct.pack("i", status))
    os._exit(0)  # the kernel now kills what is left in the namespace


def _run_reaper(plan, request, leader, mask, report_w):
    bot_pid = [0]

    def leader_gone(signum, frame):  # the leader died: the bot may have left the group
        if bot_pid[0] > 0:
            os.kill(bot_pid[0], _signal.SIGKILL)

    _signal.pthread_sigmask(_signal.SIG_BLOCK, {GONE})  # until the bot's pid is known
    _signal.signal(GONE, leader_gone)
    prctl(PR_SET_PDEATHSIG, GONE)
    if os.getppid() != leader:
        os._exit(127)
    os.setpgid(0, 0)  # out of the group: survives its SIGKILL to end what the bot left
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    bot = os.fork()
    if bot == 0:
        _in_child(run_bot, plan, me, leader, mask, request)
    bot_pid[0] = bot
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {GONE})
    status = _wait_bot(bot)
    bot_pid[0] = 0
    _end_children()
    try:
        os.write(report_w, struct.pack("i", status))
    except OSError:
        pass  # the leader is gone
    os._exit(0)


def _in_child(func, *args):
    """Run ``func`` in a just-forked child; whatever happens, never return into the caller."""
    try:
        func(*args)
    except Failed as exc:
        _fail(str(exc))
    except BaseException as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    finally:
        os._exit(127)


def _server_gone(signum, frame):
    os.kill(0, _signal.SIGKILL)  # the zygote (so the server) is gone: end the whole group


def _wait_for(pid):
    return os.waitpid(pid, 0)[1]  # retried on EINTR (PEP 475), after signal handlers ran


def _wait_bot(bot):
    """Reaps orphans until the bot ends; its wait status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == bot:
            return status


def _end_like(status):
    """Exit the way the bot ended: same code, or the same signal."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    sig = os.WTERMSIG(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        _signal.signal(sig, _signal.SIG_DFL)
    except (OSError, ValueError):
        pass  # SIGKILL, SIGSTOP
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


def _children():
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError as exc:
        raise Failed(f"cannot list the bot's leftover processes: {exc}") from None


def _end_children():
    """As a subreaper: kill and reap every child and every orphan that comes to us meanwhile."""
    start = time.monotonic()
    while True:
        try:
            listed = _children()
        except Failed as exc:
            _fail(str(exc))
            return
        _kill_children(listed)
        for _ in listed:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
        if not listed:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    continue
            except ChildProcessError:
                return
        if time.monotonic() - start > END_CHILDREN_S:
            _fail("the bot's processes kept forking: some may outlive it")
            return


def _kill_children(pids):
    for pid in pids:
        for target in (-pid, pid):  # the child and the group it leads, if any
            try:
                os.kill(target, _signal.SIGKILL)
            except OSError:
                pass


def _enter_namespaces(ns):
    uid, gid = os.geteuid(), os.getegid()
    flags = ns | (CLONE_NEWUSER if uid != 0 else 0)  # not root: a user namespace owns the others
    _call(_libc.unshare(ctypes.c_int(flags)), "unshare")
    if uid != 0:
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            raise Failed(f"user namespace: {exc.strerror}") from None
    if ns & CLONE_NEWNET:
        _loopback_up()


def _kill_now(pid):
    """SIGKILL a child's group (its namespace) and reap it."""
    try:
        os.killpg(pid, _signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            ifr = bytearray(struct.pack("16sH22x", b"lo", 0))
            fcntl.ioctl(s, SIOCGIFFLAGS, ifr)
            flags = struct.unpack_from("H", ifr, 16)[0] | IFF_UP | IFF_RUNNING
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags))
        except OSError as exc:
            raise Failed(f"loopback: {exc.strerror}") from None


def _fail(message):
    try:
        os.write(2, f"botsys-zygote: {message}\n".encode(errors="replace"))
    except OSError:
        pass


def _recv_fds(sock):
    """(data, descriptors): socket.recv_fds without its Python wrapper (see the note on
    copy-on-write above)."""
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, FDS_SPACE)
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.extend(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4]))
    return data, fds


def _max_fd():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- the zygote's loop


def _exitcode(info):
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status  # killed or dumped


class Zygote:
    def __init__(self, plan, sock):
        self.plan = plan
        self.sock = sock
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.pidfds = {}  # leader pid -> pidfd, until released
        self.reports = {}  # init pid -> the read end of its report pipe (direct attempts)
        # Direct attempts only: one attempt forked ahead (its namespace, init and bot, set up
        # as far as they can be without the request): (init pid, report pipe, socket).
        self.spare = None
        self.me = os.getpid()
        # As root with PID namespaces, no leader: the zygote itself unshares, forks the
        # namespace's init (which leads the group) and returns to its own namespaces.
        self.direct = bool(plan.get("pid_ns")) and os.geteuid() == 0
        self.home = {}  # namespace flag -> an fd of the zygote's own namespace, to go back to
        if self.direct:
            self.home[CLONE_NEWPID] = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            if plan.get("net_ns"):
                self.home[CLONE_NEWNET] = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def send(self, message):
        self.sock.send(json.dumps(message).encode())

    def serve(self):
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.sock:
                    if not self.on_message():
                        return
                else:
                    self.on_exit(key.data, key.fileobj)

    def on_message(self):
        try:
            data, fds = _recv_fds(self.sock)
        except InterruptedError:
            return True
        if not data:
            return False  # the server closed its end
        message = json.loads(data)
        if "release" in message:
            self.release(message["release"])
        else:
            self.fork(message, fds, data)
            self.compile_ahead(message["argv"][0])  # before the next spare: it inherits it
            self.make_spare()  # after the reply: off the attempt's path
        return True

    def fork(self, request, fds, data=b""):
        report = None
        try:
            if len(fds) != 3:
                raise OSError(errno.EINVAL, f"expected 3 descriptors, got {len(fds)}")
            pid, report = self.use_spare(data, fds)
            if pid == 0 and self.direct:
                pid, report = self.fork_init(request, fds)
            elif pid == 0:
                pid = os.fork()
                if pid == 0:
                    _in_child(lead, self.plan, request, fds, self.me)
            try:
                os.setpgid(pid, pid)  # before the server can signal the group
            except OSError:
                pass  # it already did so itself (or died: the exit report says how)
            pidfd = os.pidfd_open(pid)
        except (OSError, Failed) as exc:
            if report is not None:
                os.close(report)
            self.send({"id": request["id"], "error": f"fork: {getattr(exc, 'strerror', 0) or exc}"})
            return
        finally:
            for fd in fds:
                os.close(fd)
        self.pidfds[pid] = pidfd
        if report is not None:
            self.reports[pid] = report
        self.selector.register(pidfd, selectors.EVENT_READ, pid)
        self.send({"id": request["id"], "pid": pid})

    def compile_ahead(self, script):
        """Compile ``script`` into CODE for the attempts forked from now on, unless that version
        is there already. Never runs it; a script that is too big, not the bot user's to read,
        or does not compile is left to each bot (which reports its errors as python would)."""
        try:
            st = os.stat(script)
        except OSError:
            return
        key = _stat_key(st)
        if CODE.get(script, (None,))[0] == key:
            return
        CODE.pop(script, None)
        compiled = None
        try:
            if st.st_size <= CODE_MAX_BYTES and self.bot_may_read(script, st):
                with open(script, "rb") as f:
                    source = f.read(CODE_MAX_BYTES + 1)
                compiled = compile(source, script, "exec", dont_inherit=True)
            if _stat_key(os.stat(script)) != key:
                return  # changed meanwhile: the next attempt looks again
        except Exception:  # OSError, SyntaxError, ValueError (NUL), RecursionError, MemoryError
            pass
        size = st.st_size if compiled is not None else 0
        while CODE and (len(CODE) >= CODE_MAX_SCRIPTS or _code_bytes() + size > CODE_MAX_TOTAL):
            del CODE[next(iter(CODE))]
        CODE[script] = (key, compiled)  # None: that version is the bots' to compile

    def bot_may_read(self, script, st):
        """As the bot's user (the server's own when bots run as it): the file readable, each
        folder above it searchable, judged by their modes (the zygote itself reads as root)."""
        user = self.plan.get("user")
        if not user:
            return True
        uid, gid = user

        def allowed(mode, owner, group, bits):  # bits: (user, group, other) flags
            if owner == uid:
                return bool(mode & bits[0])
            if group == gid:
                return bool(mode & bits[1])
            return bool(mode & bits[2])

        if not allowed(
            st.st_mode, st.st_uid, st.st_gid, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
        ):
            return False
        folder = os.path.dirname(os.path.realpath(script))  # a link's target's folders
        while True:
            d = os.stat(folder)
            if not allowed(
                d.st_mode, d.st_uid, d.st_gid, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
            ):
                return False
            parent = os.path.dirname(folder)
            if parent == folder:
                return True
            folder = parent

    def make_spare(self):
        """Fork the next attempt's namespace, init and bot ahead of its request (direct mode);
        a spare that cannot be made, or that died waiting, ends spares for this zygote."""
        if not self.direct or self.spare is not None:  # False: no more spares
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid, report = self.fork_init(None, None, theirs.fileno())
        except (OSError, Failed):
            ours.close()
            self.spare = False
            return
        finally:
            theirs.close()
        self.spare = (pid, report, ours)

    def use_spare(self, data, fds):
        """Hand the request to the spare's bot; (init pid, report pipe), or (0, None)."""
        if not self.spare:
            return 0, None
        pid, report, sock = self.spare
        self.spare = None
        try:
            socket.send_fds(sock, [data], fds)
        except OSError as exc:  # this attempt forks as usual; the next spare is a new one
            if isinstance(exc, ConnectionError):  # it died waiting: no more spares
                self.spare = False
            _kill_now(pid)
            os.close(report)
            return 0, None
        finally:
            sock.close()
        return pid, report

    def fork_init(self, request, fds, spare=None):
        """Fork the attempt's init straight into new namespaces; (its pid, its report pipe)."""
        flags = 0
        for flag in self.home:
            flags |= flag
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        try:
            _call(_libc.unshare(ctypes.c_int(flags)), "unshare")
            try:
                pid = os.fork()
                if pid == 0:
                    _in_child(run_direct_init, self.plan, request, fds, report_w, spare)
            finally:
                for flag, fd in self.home.items():  # unshare(NEWPID) again needs this
                    _call(_libc.setns(fd, ctypes.c_int(flag)), "setns")
        except BaseException:
            os.close(report_r)
            raise
        finally:
            os.close(report_w)
        return pid, report_r

    def on_exit(self, pid, pidfd):
        self.selector.unregister(pidfd)
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT)
        status = _exitcode(info)
        report = self.reports.pop(pid, None)
        if report is not None:
            data = os.read(report, 4)  # init wrote the bot's wait status, unless it was killed
            os.close(report)
            if len(data) == 4:
                status = os.waitstatus_to_exitcode(struct.unpack("i", data)[0])
        self.send({"exit": pid, "status": status})

    def release(self, pid):
        pidfd = self.pidfds.pop(pid, None)
        if pidfd is None:
            return
        try:
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        except ChildProcessError:
            pass
        os.close(pidfd)

    def kill_all(self):
        for pid in [*self.pidfds, *(self.spare[:1] if self.spare else ())]:
            try:
                os.killpg(pid, _signal.SIGKILL)
            except OSError:
                pass


def main():
    plan = json.loads(sys.argv[-1])
    with open("/proc/self/comm") as f:
        plan["comm"] = f.read().strip()  # what a spawned bot's would be (its interpreter's)
    set_name(NAME)  # this process and the leaders, inits and reapers it forks
    plan["args_area"] = args_area()
    sock = socket.socket(fileno=plan["sock"])
    prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)  # die with the server, even on kill -9
    if os.getppid() != plan["server"]:
        sys.exit("botsys-zygote: the server is gone")
    missing = []
    for name in (*PRELOAD, *plan.get("preload", ())):
        try:
            __import__(name)
        except Exception as exc:  # a named module that fails to import is the config's fault
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    zygote = Zygote(plan, sock)
    zygote.send({"ready": True, "missing": missing})
    zygote.make_spare()
    try:
        zygote.serve()
    finally:
        zygote.kill_all()


if __name__ == "__main__":
    main()
