/* blocks.h -- large blocks of memory, kept for reuse when freed, grown without copying.
 *
 * A large output (a column of a reader's table, a kernel's result) is written once, so what it
 * costs is the kernel zeroing fresh pages: on a VM, with a fault in the host behind each.  A
 * loop that makes outputs of one size (the chunks of a long read, a kernel per day of data)
 * would pay that on every round, and a column that grows by copying pays it again for every
 * size it passes through.  So a freed block of LOB_BLOCK_MIN bytes and more is kept
 * (LOB_BLOCK_KEEP bytes in all, the most recently freed first) for the next block of about its
 * size, and on Linux each large block is a mapping of its own (2 MiB-aligned), which
 * lob_block_grow() extends or moves (mremap) with its pages in place.  A block is released
 * with lob_block_free() and the size lob_block_alloc() or lob_block_grow() gave, never with
 * free() (below LOB_BLOCK_MIN that is what it does).  Thread-safe (a mutex, released around
 * fork()). */
#ifndef LOB_BLOCKS_H
#define LOB_BLOCKS_H

#include <stddef.h>

#define LOB_BLOCK_MIN ((size_t)4 << 20)    /* smaller blocks are plain malloc() blocks */
#define LOB_BLOCK_KEEP ((size_t)256 << 20) /* freed blocks kept, in bytes, at most */

/*! lob_block_alloc() : a block of at least `bytes`; *got is its size (rounded up to 2 MiB
 *  for a large block; a kept block may be up to twice as large).  Its contents are undefined.
 *  NULL when out of memory. */
void *lob_block_alloc(size_t bytes, size_t *got);

/*! lob_block_grow() : block p of `bytes` (its size, or 0 with p NULL), whose first `used`
 *  bytes hold data, made a block of at least `want` bytes holding the same data; *got is its
 *  size.  Large blocks on Linux keep their pages (no copy, no fault); otherwise a new block,
 *  a copy and lob_block_free(p).  NULL when out of memory, p left as it was. */
void *lob_block_grow(void *p, size_t bytes, size_t used, size_t want, size_t *got);

/*! lob_block_free() : free block p of `bytes` (the size lob_block_alloc() or lob_block_grow()
 *  gave in *got); NULL-safe.  A large block may be kept for the next lob_block_alloc(). */
void lob_block_free(void *p, size_t bytes);

/*! lob_block_trim() : free every kept block (hand the memory back to the system). */
void lob_block_trim(void);

#endif /* LOB_BLOCKS_H */
