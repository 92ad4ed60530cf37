"""Confinement of sample processes with what Linux gives a process (stdlib only:
the fork server imports this module before it forks anything).

Layers, each detected at start and used where it works:

* ``rlimits``: address space, CPU time, file size, no core dumps, processes
  (``RLIMIT_NPROC`` binds only a non-root user: the kernel exempts uid 0);
* ``process-group``: each sample leads a process group of its own, killed whole;
* ``parent-death``: ``PR_SET_PDEATHSIG`` ends samples whose fork server died;
* ``pid-namespace``: each sample is process 1 of a PID namespace of its own, so
  ``kill(-1)`` reaches only its own children, and the kernel kills whatever it
  started (``setsid`` and double forks included) before its exit is reported;
* ``net-namespace``: the fork server lives in a network namespace with no
  interface up, so no connection can be made, loopback included;
* ``read-only-fs``: in a mount namespace of the fork server's, every mount is
  read-only except a fresh, size-capped ``/tmp`` (samples' working directories)
  and ``/dev/shm``; ``/run`` is hidden;
* ``hidden-home``: ``/root`` and ``/home`` are empty there;

  every directory the test process imports from (its ``sys.path``, the Python
  installation) stays visible, read-only, wherever it lives (a virtual
  environment under ``/tmp``, a checkout in a home directory): it is bound
  back over whatever covers it, and :meth:`Confinement.hidden_paths` checks
  from inside a sample that it is;
* ``no-capabilities``: a sample drops every capability (and cannot regain them
  through ``execve``). It keeps its uid, so it reads the Python installation
  exactly as the test run does (here readable by root only): fidelity with the
  reference evaluator holds, while without ``CAP_SYS_ADMIN`` it can't undo the
  namespaces and without ``CAP_SYS_PTRACE`` it can't read other processes'
  memory or environment;
* ``pids-cgroup`` / ``memory-cgroup`` / ``cpu-cgroup``: each concurrent sample
  slot is a cgroup (v1) with a process limit and a memory limit on everything
  the sample starts, which is what stops a fork bomb or a flock of memory eaters
  under root, and an equal CPU weight, so that a sample's many processes share
  one sample's part of the CPU and can't slow the samples beside it.

Modes: ``auto`` uses what works, ``strict`` refuses to run unless every layer
works, ``basic`` keeps only what OpenAI's evaluator has (rlimits, a process
group) and is the fallback everywhere else.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import math
import os
import resource
import signal
import socket
import sys
from typing import Callable

__all__ = ["LAYERS", "MODES", "Confinement", "describe", "missing_layers"]

LAYERS = ("rlimits", "process-group", "parent-death", "pid-namespace", "net-namespace", "read-only-fs",
          "hidden-home", "no-capabilities", "pids-cgroup", "memory-cgroup", "cpu-cgroup")
HOME_DIRECTORIES = ("/root", "/home")
# Covered by fresh, empty file systems in the sandbox's mount namespace.
SCRATCH_DIRECTORIES = ("/tmp", "/dev/shm", "/run")
MODES = ("auto", "strict", "basic")
BASIC_LAYERS = ("rlimits", "process-group")

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
MOUNT_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
                      "nodiratime": 2048, "relatime": 1 << 21}
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 28, 38
# NOROOT, NO_SETUID_FIXUP and KEEP_CAPS locked: uid 0 gains nothing back on execve.
LOCKED_SECUREBITS = 0x2F
CAP_VERSION_3 = 0x20080522
SAMPLE_PROCESSES = 32  # per sample, in its pids cgroup (HumanEval samples fork nothing)
SAMPLE_TMP_SIZE = "512m"
CPU_WEIGHT, DEMOTED_CPU_WEIGHT = 1024, 64  # cpu.shares of a slot, and of one whose sample runs long
FILE_SIZE_LIMIT = 64 * 1024 * 1024


def describe(mode: str, layers: dict[str, str]) -> str:
    """``MODE: layers in force; not available: layer (why), ...``, for the report header."""
    text = f"{mode}: " + ", ".join(layer for layer in LAYERS if layers.get(layer) == "")
    missing = missing_layers(layers)
    if missing:
        text += "; not available: " + ", ".join(f"{layer} ({why})" for layer, why in missing.items())
    return text


def missing_layers(layers: dict[str, str]) -> dict[str, str]:
    """The layers not in force, each with why."""
    return {layer: why for layer, why in layers.items() if why}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc_call(libc: ctypes.CDLL, name: str) -> Callable[..., int]:
    function = getattr(libc, name)

    def call(*args: object) -> int:
        result = int(function(*args))
        if result == -1:
            code = ctypes.get_errno()
            raise OSError(code, f"{name}: {os.strerror(code)}")
        return result

    return call


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="surrogateescape")


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _listable(path: str) -> bool:
    try:
        os.listdir(path) if os.path.isdir(path) else os.stat(path)
        return True
    except OSError:
        return False


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; the number itself for one Python does not name."""
    return signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)


def exit_description(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal_name(os.WTERMSIG(status))}"
    return f"exit status {os.WEXITSTATUS(status)}"


def read_mounts() -> list[tuple[str, str, set[str], str, str]]:
    """``(mount point, root, per-mount options, fs type, super options)`` for each mount, in order."""
    mounts = []
    with open("/proc/self/mountinfo") as lines:
        for line in lines:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            mounts.append((_unescape(fields[4]), _unescape(fields[3]), set(fields[5].split(",")),
                           tail[0], tail[2] if len(tail) > 2 else ""))
    return mounts


class CgroupSlots:
    """One v1 cgroup per concurrent sample under the fork server's own cgroup of a
    controller, reached through a detached bind mount that nobody else can see:
    samples find the cgroup file system read-only and can't move out or raise a limit."""

    def __init__(self, controller: str, mount_point: str, own_path: str, slots: int,
                 limits: dict[str, int], libc: ctypes.CDLL) -> None:
        mount, umount2 = _libc_call(libc, "mount"), _libc_call(libc, "umount2")
        staging = f"/tmp/.passk-{controller}"
        os.mkdir(staging, 0o700)
        mount(mount_point.encode(), staging.encode(), None, MS_BIND, None)
        try:
            self.base = os.open(os.path.join(staging, own_path.lstrip("/")), os.O_RDONLY | os.O_DIRECTORY)
        finally:
            umount2(staging.encode(), MNT_DETACH)
            os.rmdir(staging)
        self.name = f"passk-{os.getpid()}"
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.name, dir_fd=self.base)
        self.procs: list[int] = []
        self.slots = [f"{self.name}/{index}" for index in range(slots)]
        for slot in self.slots:
            with contextlib.suppress(FileExistsError):
                os.mkdir(slot, dir_fd=self.base)
            for name, value in limits.items():
                with contextlib.suppress(FileNotFoundError):  # memsw exists only with swap accounting
                    self.write(f"{slot}/{name}", str(value))
            self.procs.append(os.open(f"{slot}/cgroup.procs", os.O_WRONLY, dir_fd=self.base))

    def write(self, path: str, text: str) -> None:
        fd = os.open(path, os.O_WRONLY, dir_fd=self.base)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def read(self, path: str) -> str:
        fd = os.open(path, os.O_RDONLY, dir_fd=self.base)
        try:
            return os.read(fd, 4096).decode()
        finally:
            os.close(fd)

    def close(self) -> None:
        for fd in self.procs:
            os.close(fd)
        for slot in [*self.slots, self.name]:
            with contextlib.suppress(OSError):
                os.rmdir(slot, dir_fd=self.base)
        os.close(self.base)


def cgroup_paths(memberships: str | None = None) -> dict[str, str]:
    """controller -> this process's cgroup in its v1 hierarchy, and "" -> its v2 cgroup, from
    ``/proc/self/cgroup`` (or ``memberships``, text of that form)."""
    if memberships is None:
        with open("/proc/self/cgroup") as lines:
            memberships = lines.read()
    paths = {}
    for line in memberships.splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3 and fields[2]:
            for controller in fields[1].split(","):
                paths[controller] = fields[2]
    return paths


def own_cgroups() -> dict[str, tuple[str, str]]:
    """controller -> (mount point of its v1 hierarchy, this process's cgroup in it)."""
    paths = cgroup_paths()
    found = {}
    for point, root, _, fstype, options in read_mounts():
        if fstype != "cgroup" or root != "/":
            continue
        for controller in ("pids", "memory", "cpu"):
            if controller in options.split(",") and controller in paths:
                found[controller] = (point, paths[controller])
    return found


class Confinement:
    """Set up once in the fork server (:meth:`setup`), then around each fork
    (:meth:`before_fork`, :meth:`after_fork`) and in each sample (:meth:`enter`)."""

    def __init__(self, mode: str, memory: int, slots: int, without: frozenset[str] = frozenset(),
                 import_paths: tuple[str, ...] = ()) -> None:
        self.mode, self.memory, self.slot_count = mode, memory, slots
        # What samples must still see: where the test process imports from, and the Python installation.
        self.import_paths = tuple(dict.fromkeys(
            os.path.realpath(path) for path in (sys.base_prefix, sys.prefix, sys.exec_prefix, *import_paths)
            if path and os.path.exists(path)))
        # Decided before a user namespace maps this process to uid 0 in it: the kernel
        # exempts only the real root from RLIMIT_NPROC, and only it may setns back.
        self.real_root = os.geteuid() == 0
        self.covered_import_paths: list[str] = []
        self.without = without  # layers left out on purpose (the isolation benchmark measures each)
        self.layers: dict[str, str] = {}  # layer -> "" in force, or why not
        self.cgroups: dict[str, CgroupSlots] = {}
        self.oom_kills: list[int] = [0] * slots
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self.own_pid_namespace = -1
        self.pid_namespace_in_sample = False  # without real root: the sample makes it (see enter)
        # Bound before forking: a sample must not pay for ctypes lookups.
        self.prctl = self.libc.prctl
        self.capset = self.libc.capset
        self.cap_header = _CapHeader(CAP_VERSION_3, 0)
        self.cap_data = (_CapData * 2)()

    def in_force(self, layer: str) -> bool:
        return self.layers.get(layer) == ""

    def missing(self) -> dict[str, str]:
        return missing_layers(self.layers)

    def setup(self) -> dict[str, str]:
        """Enter the namespaces and prepare the cgroups; return what is in force."""
        for layer in BASIC_LAYERS:
            self.layers[layer] = ""
        if self.mode == "basic":
            for layer in LAYERS[len(BASIC_LAYERS):]:
                self.layers[layer] = "off (--passk-isolation=basic)"
            return self.layers
        self._try("parent-death", self._parent_death)
        privileged = self._try_user_namespace()
        self._try_privileged(privileged, "read-only-fs", self._mount_namespace)
        self._try("pids-cgroup", lambda: self._cgroup("pids", {"pids.max": SAMPLE_PROCESSES}))
        memory_limits = {"memory.limit_in_bytes": self.memory, "memory.memsw.limit_in_bytes": self.memory}
        self._try("memory-cgroup", lambda: self._cgroup("memory", memory_limits) if self.memory > 0 else None)
        self._try("cpu-cgroup", lambda: self._cgroup("cpu", {"cpu.shares": CPU_WEIGHT}))
        if self.in_force("read-only-fs"):
            self._try("hidden-home", self._hide_homes)
            self._try("read-only-fs", self._remount_read_only)
        else:
            self.layers["hidden-home"] = "needs the mount namespace"
        self._try_privileged(privileged, "net-namespace", self._net_namespace)
        self._try_privileged(privileged, "pid-namespace", self._pid_namespace)
        self._try("no-capabilities", self._probe_drop_capabilities)
        return self.layers

    def _try_privileged(self, privileged: bool, layer: str, action: Callable[[], object]) -> None:
        """A layer that needs root, or a user namespace in which to have its powers."""
        if privileged:
            self._try(layer, action)
        else:
            self.layers[layer] = "needs root or user namespaces"

    def _try(self, layer: str, action: Callable[[], object]) -> None:
        if layer in self.without:
            self.layers[layer] = "left out"
            return
        try:
            action()
            self.layers[layer] = ""
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            self.layers[layer] = str(exc) or type(exc).__name__

    def _parent_death(self) -> None:
        _libc_call(self.libc, "prctl")(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def _try_user_namespace(self) -> bool:
        """Root has what namespaces need; another user may get it in a user namespace."""
        if self.real_root:
            return True
        uid, gid = os.geteuid(), os.getegid()
        try:
            _libc_call(self.libc, "unshare")(CLONE_NEWUSER)
            for path, text in (("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", f"0 {uid} 1"),
                               ("/proc/self/gid_map", f"0 {gid} 1")):
                with open(path, "w") as file:
                    file.write(text)
            return True
        except OSError:
            return False

    def _mount_namespace(self) -> None:
        _libc_call(self.libc, "unshare")(CLONE_NEWNS)
        _libc_call(self.libc, "mount")(None, b"/", None, MS_REC | MS_PRIVATE, None)
        tmp_options = f"size={SAMPLE_TMP_SIZE},mode=1777".encode()
        self._cover({"/tmp": (MS_NOSUID | MS_NODEV, tmp_options),
                     **{path: (MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=64m,mode=1777") for path in SCRATCH_DIRECTORIES[1:]}})

    def _hide_homes(self) -> None:
        """Empty home directories: what a sample could read there (keys, tokens, dotfiles)
        could leave the sandbox in its error message."""
        self._cover({home: (MS_NOSUID | MS_NODEV, b"size=1m,mode=755") for home in HOME_DIRECTORIES})

    def _cover(self, points: dict[str, tuple[int, bytes]]) -> None:
        """Mount a fresh tmpfs on each existing directory of ``points``, then bind the import
        paths that lived below one back to where they were, each through a descriptor
        opened before the cover went on (``/proc/self/fd/N`` still reaches the old mount)."""
        mount = _libc_call(self.libc, "mount")
        points = {point: how for point, how in points.items() if os.path.isdir(point)}
        # An import path that is itself covered can't be bound back without undoing the cover.
        self.covered_import_paths += [path for path in self.import_paths if path in points]
        below = [path for path in self.import_paths if any(_inside(path, point) and path != point for point in points)]
        below = [path for path in below if not any(path != other and _inside(path, other) for other in below)]
        kept = [(path, os.open(path, os.O_PATH)) for path in below]
        try:
            for point, (flags, options) in points.items():
                mount(b"tmpfs", point.encode(), b"tmpfs", flags, options)
            for path, fd in kept:
                if os.path.isdir(f"/proc/self/fd/{fd}"):
                    os.makedirs(path, exist_ok=True)
                else:  # a zip archive on the path
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
                mount(f"/proc/self/fd/{fd}".encode(), path.encode(errors="surrogateescape"), None, MS_BIND | MS_REC, None)
        finally:
            for _, fd in kept:
                os.close(fd)

    def _remount_read_only(self) -> None:
        mount = _libc_call(self.libc, "mount")
        writable = {"/tmp", "/dev/shm"}
        for point, _, options, _, _ in read_mounts():
            if point in writable or "ro" in options:
                continue
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            for option in options:
                flags |= MOUNT_OPTION_FLAGS.get(option, 0)
            try:
                mount(None, point.encode(errors="surrogateescape"), None, flags, None)
            except OSError:
                pass  # judged below, on what is visible
        visible = {point: options for point, _, options, _, _ in read_mounts()}  # the last mount on a path hides the rest
        still_writable = [point for point, options in visible.items() if point not in writable and "ro" not in options]
        if still_writable:
            raise OSError(errno.EPERM, f"still writable: {', '.join(sorted(set(still_writable))[:3])}")

    def _cgroup(self, controller: str, limits: dict[str, int]) -> None:
        if not self.in_force("read-only-fs"):
            # Without a read-only view of the cgroup file system, a sample running
            # as root could move itself out of its cgroup.
            raise OSError(errno.EPERM, "needs the read-only mount namespace")
        found = own_cgroups()
        if controller not in found:
            raise OSError(errno.ENOENT, f"no cgroup v1 {controller} hierarchy")
        mount_point, own_path = found[controller]
        self.cgroups[controller] = CgroupSlots(controller, mount_point, own_path, self.slot_count, limits, self.libc)

    def _net_namespace(self) -> None:
        _libc_call(self.libc, "unshare")(CLONE_NEWNET)
        probe = socket.socket()
        probe.settimeout(1)
        try:
            probe.connect(("127.0.0.1", 9))
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:
                raise OSError(errno.EPERM, "loopback still reachable") from None
        else:
            raise OSError(errno.EPERM, "loopback still reachable")
        finally:
            probe.close()

    def _pid_namespace(self) -> None:
        self.unshare = _libc_call(self.libc, "unshare")
        self.setns = _libc_call(self.libc, "setns")
        if not self.real_root:
            # In a user namespace the server may not setns back to its own PID namespace,
            # so each sample makes its own: see enter(). Probe that once here.
            self._probe_in_child(self._enter_pid_namespace)
            self.pid_namespace_in_sample = True
            return
        own = os.open("/proc/self/ns/pid", os.O_RDONLY)
        try:
            self.unshare(CLONE_NEWPID)
            self.setns(own, CLONE_NEWPID)
        except OSError:
            os.close(own)
            raise
        self.own_pid_namespace = own

    def _enter_pid_namespace(self) -> None:
        """In the sample: become process 1 of a new PID namespace. The process that was the
        sample stays behind, waits for it, and ends as it ends, so the fork server sees the
        same exit status, and everything the sample starts dies with process 1."""
        self.unshare(CLONE_NEWPID)
        child = os.fork()
        if child == 0:
            if self.in_force("parent-death"):
                self.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getpid() != 1:
                raise OSError(errno.EPERM, "not process 1 of a new PID namespace")
            return
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        if os.WIFSIGNALED(status):
            signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
            os.kill(os.getpid(), os.WTERMSIG(status))
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)

    def _probe_drop_capabilities(self) -> None:
        self._probe_in_child(self.drop_capabilities)

    @staticmethod
    def _probe_in_child(action: Callable[[], object]) -> None:
        """Run ``action`` in a child (it may change the process for good); raise if it failed."""
        pid = os.fork()
        if pid == 0:
            try:
                action()
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise OSError(errno.EPERM, f"{getattr(action, '__name__', 'probe')} failed in a child")

    def sample_forks(self) -> bool:
        """Whether a sample forks once more on entering (its own PID namespace, without real root)."""
        return self.pid_namespace_in_sample and self.in_force("pid-namespace")

    def before_fork(self) -> None:
        """The next child starts a PID namespace of its own."""
        if self.own_pid_namespace >= 0:
            self.unshare(CLONE_NEWPID)

    def after_fork(self) -> None:
        """Back in the server's own PID namespace for later children, which lets the next unshare work."""
        if self.own_pid_namespace >= 0:
            self.setns(self.own_pid_namespace, CLONE_NEWPID)

    def drop_capabilities(self) -> None:
        if os.geteuid() == 0:  # root here, in a user namespace too
            self.prctl(PR_SET_SECUREBITS, LOCKED_SECUREBITS, 0, 0, 0)
        if self.capset(ctypes.byref(self.cap_header), self.cap_data) != 0:
            raise OSError(ctypes.get_errno(), "capset")
        self.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)

    def enter(self, slot: int, timeout: float | None) -> None:
        """In the sample, before any of its code runs: join the slot's cgroups, set limits, drop
        privileges. ``timeout`` None: no CPU-time limit yet (a candidate started ahead of its
        sample sets it with :meth:`limit_cpu` when the sample comes; lowering a limit needs no privilege)."""
        for cgroup in self.cgroups.values():
            os.write(cgroup.procs[slot], b"0")
        if self.in_force("parent-death"):
            self.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if self.sample_forks():
            self._enter_pid_namespace()  # before RLIMIT_NPROC, which counts every process of the user
        if self.memory > 0:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))
        if timeout is not None:
            self.limit_cpu(timeout)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.mode != "basic":
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
            if not self.real_root:
                resource.setrlimit(resource.RLIMIT_NPROC, (SAMPLE_PROCESSES, SAMPLE_PROCESSES))
        if self.in_force("no-capabilities"):
            self.drop_capabilities()

    @staticmethod
    def limit_cpu(timeout: float) -> None:
        cpu = math.ceil(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    def set_cpu_weight(self, slot: int, demoted: bool) -> bool:
        cgroup = self.cgroups.get("cpu")
        if cgroup is None:
            return False
        with contextlib.suppress(OSError):
            cgroup.write(f"{cgroup.slots[slot]}/cpu.shares", str(DEMOTED_CPU_WEIGHT if demoted else CPU_WEIGHT))
        return True

    def killed_for_memory(self, slot: int) -> bool:
        """Whether the memory cgroup's OOM killer struck the slot since last asked."""
        cgroup = self.cgroups.get("memory")
        if cgroup is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            for line in cgroup.read(f"{cgroup.slots[slot]}/memory.oom_control").splitlines():
                if line.startswith("oom_kill "):
                    count = int(line.split()[1])
                    struck, self.oom_kills[slot] = count > self.oom_kills[slot], count
                    return struck
        return False

    def hidden_paths(self) -> tuple[dict[str, str], str]:
        """Import paths a sample can't list, each with the layer that hides it, and why a
        sample could not even enter the confinement ("" when it could): checked from a
        child that enters it as a sample does."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            report: dict[str, object] = {"error": "", "unseen": []}
            try:
                self.enter(0, 1.0)
                report["unseen"] = [path for path in self.import_paths
                                    if path in self.covered_import_paths or not _listable(path)]
            except BaseException as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
            os.write(write_fd, json.dumps(report).encode())
            os._exit(0)
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        try:
            report = json.loads(b"".join(chunks))
        except ValueError:
            return {}, f"the probing sample ended without a report ({exit_description(status)})"
        hidden = {path: "hidden-home" if any(_inside(path, home) for home in HOME_DIRECTORIES) else "read-only-fs"
                  for path in report["unseen"]}
        return hidden, str(report["error"])

    def close(self) -> None:
        for cgroup in self.cgroups.values():
            cgroup.close()
        self.cgroups.clear()

