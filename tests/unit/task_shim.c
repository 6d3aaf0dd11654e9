/* The process executor's shim for the unit tests: stands in for swarmd's
 * `--task-exec` mode (test_executor finds it next to itself). */
#include "executor.h"

int main(int argc, char **argv)
{
    return executor_shim_main(argc, argv);
}
