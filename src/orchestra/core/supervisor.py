"""Stand-in at the supervisor's old module path.

Supervisors started by an older orchestra run as `python -m orchestra.core.supervisor`; they are
still recognised as alive by that name (see supervise.processes), and this module still starts one."""

from orchestra.core.supervise.supervisor import exit_now, main

if __name__ == "__main__":
    exit_now(main())
