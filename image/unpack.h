/* Layer unpack (libarchive) into a directory overlayfs can use as a
 * lowerdir: gzip or plain tar, whiteouts turned into overlayfs's, and no
 * entry may land outside the directory. */
#ifndef SWARM_IMAGE_UNPACK_H
#define SWARM_IMAGE_UNPACK_H

#include <stddef.h>

enum layer_entry_kind {
    LAYER_ENTRY_NORMAL = 0,
    LAYER_ENTRY_WHITEOUT, /* DIR/.wh.NAME: NAME deleted in this layer */
    LAYER_ENTRY_OPAQUE,   /* DIR/.wh..wh..opq: DIR's lower contents hidden */
};

/* Pure: check an entry's path and say what it is. The path is cleaned
 * into `clean` (size bytes): a leading "./" and repeated '/' removed, no
 * trailing '/'. Refused (SWARM_EINVAL, errmsg says why): an absolute path,
 * a ".." component, an empty name, a whiteout of "." or "..". For a
 * whiteout `clean` is the path of the entry it deletes; for an opaque
 * marker, its directory ("" for the layer's root). */
int layer_entry_classify(const char *path, char *clean, size_t size,
                         enum layer_entry_kind *kind, char *errmsg);

/* Unpack the tar (gzip or not) at blob_path into dest_dir (which must
 * exist, be empty and have no symlink in its path). When diff_id is not
 * NULL, the uncompressed stream's sha256 must equal it (SWARM_ECORRUPT
 * otherwise). On error dest_dir is left for the caller to delete. */
int layer_unpack(const char *blob_path, const char *dest_dir,
                 const char *diff_id, char *errmsg);

/* The sha256 of a file, "sha256:HEX" into out (72 bytes). */
int file_sha256(const char *path, char *out, char *errmsg);

#endif
