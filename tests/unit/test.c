/* Storage for the harness in test.h (defined by TEST_MAIN in each binary). */
#include "test.h"
