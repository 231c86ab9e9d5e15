import time

import ray


def kill_and_wait_for_restart(handle, pid_of, timeout_s=60.0):
    """Kill a Ray actor as a crash would and wait until Ray has restarted it."""
    old = pid_of()
    ray.kill(handle, no_restart=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pid_of() != old:
                return
        except ray.exceptions.RayActorError:
            pass
        time.sleep(0.1)
    raise AssertionError("the actor was not restarted")
