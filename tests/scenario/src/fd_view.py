# fd_view.py — what a program sees of its descriptor table (issue 14), printed so that a
# native run and a run under vmrun can be compared line by line.
#   before/after fork, after exec, with a lowered RLIMIT_NOFILE, and the two CPython
#   test_subprocess cases that failed under vmrun (test_pass_fds_redirected,
#   test_close_fds_when_max_fd_is_lowered), reduced to their checks.
import os, resource, subprocess, sys, textwrap

FD_STATUS = textwrap.dedent("""
    import errno, os, sys
    cands = [int(x) for x in sys.argv[1:]] or range(os.sysconf("SC_OPEN_MAX"))
    fds = []
    for fd in cands:
        try:
            os.fstat(fd)
        except OSError as e:
            if e.errno == errno.EBADF:
                continue
            raise
        fds.append(fd)
    print(",".join(map(str, fds)))
    """)
LIST = textwrap.dedent("""
    import os
    def target(f):
        try: t = os.readlink("/proc/self/fd/" + f)
        except OSError: return "?"
        return "harness-file" if t.endswith((".err", ".out")) else t.split(":")[0] if ":" in t else t
    print(sorted((int(f), target(f)) for f in os.listdir("/proc/self/fd")))
    """)


def table():
    d = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(d)
    finally:
        os.close(d)
    out = []
    for f in sorted(names, key=int):
        try:
            t = os.readlink("/proc/self/fd/" + f)
        except OSError:
            continue  # the listing's own descriptor
        # pipe/socket/anon_inode ids and the harness's per-run stderr file name differ
        # between runs: keep the kind only ("memfd", "anon_inode" stay visible).
        out.append((int(f), "harness-file" if t.endswith((".err", ".out")) else t.split(":")[0] if ":" in t else t))
    return out


def show(tag):
    print(tag, table(), flush=True)


show("start")
blocks = [bytearray(100000) for _ in range(500)]  # plenty of malloc
show("after malloc")
pid = os.fork()
if pid == 0:
    show("fork child")
    os._exit(0)
os.waitpid(pid, 0)
show("after fork")
print("exec child", subprocess.run([sys.executable, "-c", LIST], capture_output=True, text=True).stdout.strip(), flush=True)

# Lowered RLIMIT_NOFILE: no descriptor at or above the new limit.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
more = [bytearray(200000) for _ in range(200)]
pid = os.fork()
if pid == 0:
    print("low limit fork child above 63:", [fd for fd, _ in table() if fd >= 64], flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("low limit above 63:", [fd for fd, _ in table() if fd >= 64], flush=True)
print("low limit exec child", subprocess.run([sys.executable, "-c", LIST], capture_output=True, text=True).stdout.strip(), flush=True)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

# test_pass_fds_redirected
pass_fds = [os.open(os.devnull, os.O_RDWR) for _ in range(2)]
stdout_r, stdout_w = os.pipe()
pass_fds.insert(1, stdout_w)
with subprocess.Popen([sys.executable, "-c", FD_STATUS], stdin=pass_fds[0], stdout=pass_fds[1],
                      stderr=pass_fds[2], close_fds=True, pass_fds=pass_fds):
    output = os.read(stdout_r, 1024)
fds = {int(n) for n in output.split(b",")}
print("pass_fds_redirected extra:", sorted(fds - ({0, 1, 2} | set(pass_fds))), flush=True)
for fd in pass_fds + [stdout_r]:
    os.close(fd)

# test_close_fds_when_max_fd_is_lowered
inner = textwrap.dedent("""
    import os, resource, subprocess, sys, textwrap
    open_fds = set(os.open(os.devnull, os.O_RDONLY) for _ in range(40))
    for fd in sorted(open_fds)[:14]:
        os.close(fd); open_fds.remove(fd)
    for fd in open_fds:
        os.set_inheritable(fd, True)
    print(",".join(map(str, sorted(open_fds)))); sys.stdout.flush()
    rlim_cur, rlim_max = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (29, rlim_max))
    subprocess.Popen([sys.executable, "-c", textwrap.dedent('''
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", %r] + [str(x) for x in range(%d)], close_fds=True).wait()
        ''' % (sys.argv[1], max(open_fds) + 1))], close_fds=False).wait()
    """)
out = subprocess.run([sys.executable, "-c", inner, FD_STATUS], stdout=subprocess.PIPE).stdout.splitlines()
opened = set(map(int, out[0].split(b",")))
remaining = set(map(int, out[1].split(b",")))
print("close_fds_when_max_fd_is_lowered left open:", sorted(remaining & opened), "lines", len(out), flush=True)
