/* notify_flags.h -- Redis keyevent names and the notify-keyspace-events
 * flags they need.
 *
 * Routes name events ("expired", "evicted", "del", ...). Each name has a
 * small id (its bit in a uint64_t event mask) and the class flag Redis must
 * have enabled to publish it ('x' for expired, 'e' for evicted, 'g' for del,
 * ...). The bridge asks for 'E' (keyevent channels) plus those classes and
 * merges them into whatever the server has, never removing a flag.
 *
 * Pure functions over static tables.
 */
#ifndef EB_NOTIFY_FLAGS_H
#define EB_NOTIFY_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Id of the event named name[0..len), or -1 when Redis has no such keyevent. */
int eb_notify_event_id(const char *name, size_t len);

/* Name of event id (static storage), or NULL when out of range. */
const char *eb_notify_event_name(int id);

/* Number of known events; ids are 0 .. count-1 (< 64). */
int eb_notify_event_count(void);

/* The id of "expired", the default event of a route. */
#define EB_EVENT_EXPIRED_ID 0

/* Closest known event name to `name` (edit distance ≤ 2), or NULL. */
const char *eb_notify_event_suggest(const char *name);

/* Flags a subscriber of the events in `mask` needs, e.g. "Ex" for expired:
 * 'E' plus one class flag per event, no duplicates. out_size ≥ 32. */
void eb_notify_required_flags(uint64_t mask, char *out, size_t out_size);

/* Flags of `required` that `current` (a CONFIG GET notify-keyspace-events
 * value, in any order, 'A' meaning "g$lshzxetd") does not enable, written
 * to `missing`. Returns true when something is missing. */
bool eb_notify_flags_missing(const char *current, const char *required, char *missing,
                             size_t missing_size);

/* `current` with the flags of `required` added (the value to CONFIG SET).
 * Nothing is removed. out_size ≥ 32. */
void eb_notify_flags_merge(const char *current, const char *required, char *out,
                           size_t out_size);

#endif
