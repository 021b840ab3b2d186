/* redis_conn.h -- STUB: the hiredis-version seam (Redis source work item). */
#ifndef EB_REDIS_CONN_H
#define EB_REDIS_CONN_H
#endif
