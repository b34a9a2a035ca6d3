/* blocks.h -- large blocks of memory, kept for reuse when freed.
 *
 * A large output (a column of a reader's table, a kernel's result) is written once, so what it
 * costs is the kernel zeroing fresh pages: on a VM, with a fault in the host behind each.  A
 * loop that makes outputs of one size (the chunks of a long read, a kernel per day of data)
 * would pay that on every round.  So blocks of LOB_BLOCK_MIN bytes and more are 2 MiB-aligned
 * and asked to be backed by huge pages, and a freed one is kept (LOB_BLOCK_KEEP bytes in all,
 * the most recently freed first) for the next block of about its size.  Every block is a
 * malloc() block: free() is always right, lob_block_free() lets it be reused.  Thread-safe
 * (a mutex, released around fork()). */
#ifndef LOB_BLOCKS_H
#define LOB_BLOCKS_H

#include <stddef.h>

#define LOB_BLOCK_MIN ((size_t)4 << 20)    /* smaller blocks are plain malloc() blocks */
#define LOB_BLOCK_KEEP ((size_t)256 << 20) /* freed blocks kept, in bytes, at most */

/*! lob_block_alloc() : a block of at least `bytes`; *got is its size (a kept block may be up
 *  to twice as large).  Its contents are undefined.  NULL when out of memory. */
void *lob_block_alloc(size_t bytes, size_t *got);

/*! lob_block_free() : free block p of `bytes` (at most its size: what lob_block_alloc() gave in
 *  *got, or less); NULL-safe.  A large block may be kept for the next lob_block_alloc(). */
void lob_block_free(void *p, size_t bytes);

/*! lob_block_trim() : free every kept block (hand the memory back to the system). */
void lob_block_trim(void);

#endif /* LOB_BLOCKS_H */
