/* swarmd-shim: the task shim (daemon/agent/exec_shim.c) as a program of its
 * own, linked with libc only. swarmd runs it for every task start and
 * health check when it sits next to swarmd's executable (executor.c), so
 * that a start does not load swarmd's fifty-odd shared libraries (about
 * 10 ms of CPU each time); without it swarmd runs itself as
 * `swarmd --task-exec`, the same code. */
#include "executor.h"

int main(int argc, char **argv)
{
    return executor_shim_main(argc, argv);
}
