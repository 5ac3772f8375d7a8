# tests/slurm/kill_on_write.py DIR TIMEOUT_S READY_FILE PID...: SIGKILLs the PIDs the moment a "*.partial" file
# is created or written in DIR (a checkpoint write in progress), so fault_kill_checkpoint.sh can land kills
# inside the write window deterministically. Linux inotify through ctypes (standard library only).
# Prints the file name and exits 0 after the kill; exits 3 when no write started within TIMEOUT_S.
import ctypes
import os
import select
import struct
import sys
import time

IN_MODIFY, IN_CREATE = 0x2, 0x100


def main():
    directory, timeout, ready, pids = sys.argv[1], float(sys.argv[2]), sys.argv[3], [int(p) for p in sys.argv[4:]]
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, directory.encode(), IN_CREATE | IN_MODIFY) < 0:
        sys.exit(f"inotify on {directory} failed: {os.strerror(ctypes.get_errno())}")
    open(ready, "w").close()  # armed: the caller may go on
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            sys.exit(3)
        events = os.read(fd, 65536)
        offset = 0
        while offset < len(events):
            _, _, _, length = struct.unpack_from("iIII", events, offset)
            name = events[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
            offset += 16 + length
            if name.endswith(".partial"):
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                print(name)
                return


if __name__ == "__main__":
    main()
