# A --console-socket listener, as conmon and containerd's shim are: receives the
# pty master with SCM_RIGHTS, optionally sets its size, copies everything read
# from it to OUT, and resizes it once MARK has been seen.
#   console-listener.py SOCKET OUT READY_FILE [ROWSxCOLS|-] [MARK ROWSxCOLS]
import fcntl, os, socket, struct, sys, termios, time

path, outpath, ready = sys.argv[1:4]
initial = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
mark = sys.argv[5].encode() if len(sys.argv) > 5 else None
later = sys.argv[6] if len(sys.argv) > 6 else None


def winsize(fd, spec):
    rows, cols = (int(x) for x in spec.split("x"))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
open(ready, "w").close()
conn, _ = srv.accept()
msg, fds, flags, addr = socket.recv_fds(conn, 1024, 1)
assert len(fds) == 1, "no fd received"
master = fds[0]
print("received the pty master; name", msg, flush=True)
if initial:
    winsize(master, initial)
out = b""
resized = False
deadline = time.time() + 300
while time.time() < deadline:
    try:
        data = os.read(master, 4096)
    except OSError:
        break  # EIO: the last holder of the slave exited
    if not data:
        break
    out += data
    with open(outpath, "wb") as f:
        f.write(out)
    if mark and mark in out and not resized:
        winsize(master, later)
        resized = True
print("done", flush=True)
