/*
 * The benchmark client: tight loops of exact syscalls against one mount, in
 * its own process (a FUSE server must never call into its own mount).
 * Compiled by test/bench/client.ts with gcc at bench time; client.py is the same
 * program for machines without gcc.
 *
 *   client read  <file> <seconds> <warmup>          open+read-until-EOF+close
 *   client cycle <create> <devdir> <seconds> <warmup>
 *                write a fresh UUID (36 bytes) to <create>, then "1" to
 *                <devdir>/<uuid>/remove (each: open O_WRONLY|O_TRUNC, write, close)
 *   client fill  <create> <count>                   <count> fresh UUIDs to <create>
 *
 * Prints "ops <n> sec <elapsed>" (timed part only). Any failing syscall exits
 * 1 with the path and errno on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "client: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

static char buf[65536];

static void read_once(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open", path);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) die("read", path);
    if (n == 0) break;
  }
  if (close(fd) < 0) die("close", path);
}

static void write_once(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_TRUNC);
  if (fd < 0) die("open", path);
  ssize_t n = write(fd, data, len);
  if (n < 0) die("write", path);
  if ((size_t)n != len) { errno = EIO; die("short write to", path); }
  if (close(fd) < 0) die("close", path);
}

/* Fresh UUIDs: 72 random bits per process, then a counter. */
static uint64_t r_hi, r_lo, counter;
static void next_uuid(char out[37]) {
  uint64_t c = counter++;
  snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx",
           (unsigned)(r_hi >> 32), (unsigned)(r_hi >> 16) & 0xffff, (unsigned)(r_hi >> 4) & 0xfff,
           0x8000u | ((unsigned)r_lo & 0x3fff), (unsigned long long)((c + (r_lo >> 16)) & 0xffffffffffffULL));
}

static void cycle_once(const char *create, const char *devdir, char *rmpath, size_t rmcap) {
  char u[37];
  next_uuid(u);
  write_once(create, u, 36);
  snprintf(rmpath, rmcap, "%s/%s/remove", devdir, u);
  write_once(rmpath, "1", 1);
}

int main(int argc, char **argv) {
  if (getrandom(&r_hi, sizeof r_hi, 0) != sizeof r_hi || getrandom(&r_lo, sizeof r_lo, 0) != sizeof r_lo) {
    perror("getrandom");
    return 1;
  }
  long ops = 0;
  double t0, t1;
  if (argc == 5 && !strcmp(argv[1], "read")) {
    double secs = atof(argv[3]);
    long warm = atol(argv[4]);
    for (long i = 0; i < warm; i++) read_once(argv[2]);
    t0 = now();
    do { read_once(argv[2]); ops++; } while ((t1 = now()) - t0 < secs);
  } else if (argc == 6 && !strcmp(argv[1], "cycle")) {
    static char rmpath[8192];
    double secs = atof(argv[4]);
    long warm = atol(argv[5]);
    for (long i = 0; i < warm; i++) cycle_once(argv[2], argv[3], rmpath, sizeof rmpath);
    t0 = now();
    do { cycle_once(argv[2], argv[3], rmpath, sizeof rmpath); ops++; } while ((t1 = now()) - t0 < secs);
  } else if (argc == 4 && !strcmp(argv[1], "fill")) {
    long count = atol(argv[3]);
    char u[37];
    t0 = now();
    for (; ops < count; ops++) { next_uuid(u); write_once(argv[2], u, 36); }
    t1 = now();
  } else {
    fprintf(stderr, "usage: client read <file> <seconds> <warmup> | cycle <create> <devdir> <seconds> <warmup> | fill <create> <count>\n");
    return 2;
  }
  printf("ops %ld sec %.6f\n", ops, t1 - t0);
  return 0;
}
