#include <rte_errno.h>
int dsrlb_rte_errno(void) { return rte_errno; }
