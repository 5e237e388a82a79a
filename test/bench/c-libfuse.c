/*
 * The benchmark's C baseline: libfuse 2's high-level API serving one root
 * file, /attr ("12\n", st_size 4096, as an mdevfs attribute), with the same
 * options mdevfs's fuse-native engine uses (direct_io, zero timeouts). Built
 * by test/bench/servers.ts when gcc and libfuse-dev are present.
 *   c-libfuse <mountpoint> -f -o <options>    prints "clibfuse: mounted" once serving
 */
#define FUSE_USE_VERSION 26
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char CONTENT[] = "12\n";

static int bl_getattr(const char *path, struct stat *st) {
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/attr") == 0) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = 4096;
    return 0;
  }
  return -ENOENT;
}

static int bl_open(const char *path, struct fuse_file_info *fi) {
  (void)fi;
  return strcmp(path, "/attr") == 0 ? 0 : -ENOENT;
}

static int bl_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  size_t len = sizeof CONTENT - 1;
  if ((size_t)off >= len) return 0;
  if (size > len - off) size = len - off;
  memcpy(buf, CONTENT + off, size);
  return (int)size;
}

static void *bl_init(struct fuse_conn_info *conn) {
  (void)conn;
  printf("clibfuse: mounted\n");
  fflush(stdout);
  return NULL;
}

static struct fuse_operations ops = {.getattr = bl_getattr, .open = bl_open, .read = bl_read, .init = bl_init};

int main(int argc, char *argv[]) { return fuse_main(argc, argv, &ops, NULL); }
