/* zpar.h -- the frames of a seekable zstd file, decompressed and parsed on worker threads.
 *
 * The seek table says where every frame starts, so threads can each take the next frame not
 * yet taken: read it, decompress it, split its lines and parse them with the format's
 * work_line (reader.h), which needs no state.  The calling thread gets the frames back in
 * file order (lob_zpar_next) and applies their lines with the format's commit, as the
 * sequential reader would.  Of `threads`, threads - 1 are workers and the last is the
 * caller: while the frame it needs is not ready, it parses one no worker has taken instead
 * of sleeping, so no core idles and no more threads run than were asked for.  Frames are
 * parsed ahead of the caller by at most 256 frames and 64 MiB of text beyond the frame it
 * waits for, so memory is bounded whatever the file's size.  While the caller works on a
 * chunk between two pumps (building a book, say: lob_zpar_away) they use all of it, and go on
 * doing so while it applies what they parsed meanwhile; a caller that does little between
 * pumps keeps them within 1 MiB of it, so that it reaches frames still in the caches.
 * Buffers freed by the caller serve the next frame, the last freed first.
 *
 * Anything a worker cannot vouch for ends the parallel part at that frame: a frame that
 * does not match its table entry, is corrupt, does not end with "\n" (a line running into
 * the next frame, or a window's cut), holds a line over max_line, or is larger than
 * LOB_ZPAR_FRAME_MAX.  lob_zpar_next then names where it is, and the caller reads on from
 * there with the sequential reader, which meets the same bytes as it would have from the
 * start: the same rows, the same errors.  The end of the frames is reported the same way.
 *
 * Only the calling thread asks the stop check (err->poll), after each frame it parses and
 * while it waits: workers look at a flag.
 */
#ifndef LOB_ZPAR_H
#define LOB_ZPAR_H

#include "core/io/reader.h"

/* Frames larger than this (decompressed) are left to the sequential reader: the largest
 * window it accepts (source.c), so a frame it refuses is never read here. */
#define LOB_ZPAR_FRAME_MAX ((uint32_t)1 << 27)

typedef struct lob_zpar_s lob_zpar;

/* A frame handed back in order. */
typedef struct lob_zpar_frame_s {
    int parsed;         /* 1: its lines are parsed; 0: read on from c_at/d_at with one thread */
    int64_t c_at, d_at; /* file offset of the frame, text offset of its first byte */
    const char *text;   /* parsed: the frame's text in the window, from text offset off */
    int64_t off;
    size_t nlines;       /* parsed: lines; line k is text[start[k], start[k + 1] - 1) */
    const size_t *start; /* nlines + 1 offsets */
    const size_t *len;   /* nlines lengths without "\n" or "\r\n" */
    void *work;          /* the format's worker state holding the lines */
    int64_t produced;    /* bytes decompressed for it, as the sequential reader counts them */
} lob_zpar_frame;

/*! lob_zpar_open() : frames of `path` from the frame at (span->c_lo, span->d_at) to the end
 *  of the text [span->d_lo, span->d_hi) (the whole file when span is NULL), parsed by
 *  `threads` workers for `fmt`.  *out is NULL (and 0 returned) when the file has no usable
 *  seek table or the span does not start at one of its frames.
 *  @return 0 or LOB_E_NOMEM / LOB_E_IO. */
int lob_zpar_open(lob_zpar **out, const char *path, const lob_format *fmt, const lob_opts *opts,
                  const lob_span *span, int threads, size_t max_line, lob_error *err);

/*! lob_zpar_next() : the next frame in file order into *f, waiting for it and asking the stop
 *  check meanwhile.  Give it back with lob_zpar_done() before the next call; one with
 *  parsed == 0 is the last.  @return 1, or LOB_E_INTR (nothing lost: call again). */
int lob_zpar_next(lob_zpar *z, lob_zpar_frame **f, lob_error *err);

/*! lob_zpar_done() : the frame from lob_zpar_next() has been applied. */
void lob_zpar_done(lob_zpar *z);

/*! lob_zpar_away() : 0 while the caller applies frames, 1 while it does other work (a pump
 *  returned a chunk).  Away, workers parse up to 64 MiB ahead of it; while it applies, 1 MiB,
 *  unless it came back to more than 8 MiB parsed. */
void lob_zpar_away(lob_zpar *z, int away);

/*! lob_zpar_free() : stop the workers and free.  NULL-safe. */
void lob_zpar_free(lob_zpar *z);

#endif /* LOB_ZPAR_H */
