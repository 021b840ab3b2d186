/* keyslot.h -- which of Redis Cluster's 16384 hash slots a key belongs to.
 *
 * Cluster places a key by CRC16 (CCITT/XMODEM: polynomial 0x1021, initial
 * value 0, no reflection) of the key modulo 16384, where only the text
 * between the first '{' and the first '}' after it counts when that text
 * is not empty (a "hash tag": keys that share one share a slot, which is
 * what lets one FCALL touch a timer, its ledger and its payload).
 *
 * The bridge needs this to send a ledger's commands to the master that
 * serves the ledger's slot, and to check that a route's ledger buckets
 * spread over the slots. Pure: no state, no I/O.
 */
#ifndef EB_KEYSLOT_H
#define EB_KEYSLOT_H

#include <stddef.h>
#include <stdint.h>

#define EB_KEYSLOT_COUNT 16384

/* CRC16-XMODEM of p[0..n). */
uint16_t eb_keyslot_crc16(const void *p, size_t n);

/* The part of key[0..n) that Cluster hashes: the hash tag when there is a
 * non-empty one, else the whole key. *len receives its length; the result
 * points into key. */
const char *eb_keyslot_hashed_part(const char *key, size_t n, size_t *len);

/* The slot of key[0..n), 0..16383. */
unsigned eb_keyslot_of(const char *key, size_t n);

#endif
