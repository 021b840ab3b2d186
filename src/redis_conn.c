/* redis_conn.c -- STUB: the hiredis-version seam (Redis source work item). */
#include "redis_conn.h"
