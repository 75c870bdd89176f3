// bench/probes/wal-growth.c — what one batch of 64 WAL frames (64 x 4,120 bytes, one pwrite +
// fdatasync) costs by where it lands, without walnut: overwriting an 8 MiB span (raw-64), plain
// appends, appends with a 1 MiB / 16 MiB zero-fill in the same write (walnut's growth chunk),
// into space zeroed (or filled with 0xa5) and synced beforehand, into fallocate'd space
// (unwritten extents), and appends into zeros a background thread keeps 8 MiB ahead (walnut's
// zeroAhead: 256 KiB chunks each written back with sync_file_range; variants: 1 MiB chunks
// without write-back, one 8 MiB O_DIRECT write, fdatasync per chunk, the size set first by
// ftruncate). Modes are interleaved in rounds (this VM's disk drifts); each mode uses its own
// fresh file (except reused-old-file, kept between rounds).
//
// Build: cc -O2 -o /tmp/wal-growth bench/probes/wal-growth.c -lpthread
// Run:   /tmp/wal-growth ROUNDS SECONDS DIR [MODES]   (MODES: letters a.. of the modes below;
//        the ratios need 'a', the overwrite loop)
// The writer thread is named wNN (NN = mode number) and the zeroing thread "zeroer", so a block
// trace tells whose bios they are: bench/probes/wal-growth-bios.py (usage there).
// "devw/batch" is /sys/block/vda/stat's write requests per batch: the whole machine's.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH (64 * 4120)
#define REGION (256ull << 20)
#define MAX_ROUNDS 64

enum {
  OVERWRITE, APPEND, APPEND_1M, PREZEROED, PREFILLED_A5, FALLOCATED, BG_256K_SFR, APPEND_16M,
  REUSED_OLD, BG_1M_NOSFR, PREZEROED_NOSYNC, BG_ODIRECT_8M, BG_256K_FDATASYNC, BG_FTRUNC_256K, MODES
};
static const char* kNames[MODES] = {
  "overwrite-8MiB", "append", "append+1MiB-zero", "prezeroed", "prefilled-a5", "fallocated",
  "bg-zero-256K-sfr", "append+16MiB-zero", "reused-old-file", "bg-zero-1MiB-nosfr",
  "prezeroed-nosync-old", "bg-odirect-8MiB", "bg-256K-fdatasync", "bg-ftrunc-256K-sfr"};

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void* a, const void* b) { double x = *(const double*)a, y = *(const double*)b; return x < y ? -1 : x > y; }
static unsigned long long device_writes(void) {
  FILE* f = fopen("/sys/block/vda/stat", "r");
  unsigned long long v[11] = {0};
  if (f == NULL) return 0;
  for (int i = 0; i < 11; i++) if (fscanf(f, "%llu", &v[i]) != 1) break;
  fclose(f);
  return v[4];
}
static char *data, *zeros, *pattern, *big_zeros;
static double lat[200000];
static void fill(int fd, size_t upto, const char* buf) {
  for (size_t o = 0; o < upto; o += 1 << 20) if (pwrite(fd, buf, 1 << 20, o) < 0) perror("pwrite");
  fdatasync(fd);
}

// The background zeroing: keeps AHEAD bytes of zeros past the writer's end, refilled when less
// than LOW is left. `size` is the file size both threads extend, under `mu`.
static _Atomic unsigned long long writer_end, size;
static _Atomic int stop;
static int bg_fd, bg_mode;
static unsigned long long chunk;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const unsigned long long AHEAD = 8 << 20, LOW = 4 << 20;
static void* zeroer(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "zeroer");
  while (!stop) {
    unsigned long long e = writer_end, s = size;
    if (s >= e && s - e >= LOW) { usleep(200); continue; }
    unsigned long long target = e + AHEAD;
    if (bg_mode == BG_FTRUNC_256K) { if (ftruncate(bg_fd, target) != 0) perror("ftruncate"); fdatasync(bg_fd); }
    if (bg_mode == BG_ODIRECT_8M) {
      pthread_mutex_lock(&mu);
      unsigned long long at = (size + 4095) & ~4095ull;
      pthread_mutex_unlock(&mu);
      if (pwrite(bg_fd, big_zeros, ((target - at + 4095) & ~4095ull) > AHEAD ? AHEAD : ((target - at + 4095) & ~4095ull), at) < 0) perror("pwrite O_DIRECT");
      pthread_mutex_lock(&mu);
      if (size < target) size = target;
      pthread_mutex_unlock(&mu);
    } else {
      while (size < target && !stop) {
        pthread_mutex_lock(&mu);
        unsigned long long at = size;
        if (pwrite(bg_fd, zeros, chunk, at) < 0) perror("pwrite zeros");
        size = at + chunk;
        pthread_mutex_unlock(&mu);
        if (bg_mode == BG_256K_SFR || bg_mode == BG_FTRUNC_256K) sync_file_range(bg_fd, at, chunk, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        if (bg_mode == BG_256K_FDATASYNC) fdatasync(bg_fd);
      }
    }
    fdatasync(bg_fd);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 4;
  double secs = argc > 2 ? atof(argv[2]) : 0.7;
  const char* dir = argc > 3 ? argv[3] : "/tmp";
  const char* only = argc > 4 ? argv[4] : NULL;
  if (rounds < 1 || rounds > MAX_ROUNDS) { fprintf(stderr, "rounds: 1..%d\n", MAX_ROUNDS); return 2; }
  if (posix_memalign((void**)&data, 4096, 1 << 20) || posix_memalign((void**)&zeros, 4096, 1 << 20) ||
      posix_memalign((void**)&pattern, 4096, 1 << 20) || posix_memalign((void**)&big_zeros, 4096, 8 << 20)) return 1;
  memset(data, 0x5a, 1 << 20); memset(zeros, 0, 1 << 20); memset(pattern, 0xa5, 1 << 20); memset(big_zeros, 0, 8 << 20);
  static double rate[MODES][MAX_ROUNDS], devw[MODES][MAX_ROUNDS], p99[MODES][MAX_ROUNDS];
  char path[512];
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < MODES; k++) {
      int v = (k + r) % MODES;
      if (only && !strchr(only, 'a' + v)) continue;
      snprintf(path, sizeof path, "%s/wal-growth-%d.bin", dir, v);
      int fd;
      if (v == REUSED_OLD) {
        struct stat st;
        fd = open(path, O_RDWR | O_CREAT, 0644);
        fstat(fd, &st);
        if ((unsigned long long)st.st_size < REGION) fill(fd, REGION, zeros);
      } else {
        unlink(path);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
      }
      unsigned long long off = 32, end_of_file = 0;
      if (v == OVERWRITE) { fill(fd, 9 << 20, zeros); end_of_file = 9 << 20; }
      if (v == PREZEROED || v == PREZEROED_NOSYNC) { fill(fd, REGION, zeros); end_of_file = REGION; }
      if (v == PREFILLED_A5) { fill(fd, REGION, pattern); end_of_file = REGION; }
      if (v == FALLOCATED) { if (fallocate(fd, 0, 0, REGION) != 0) perror("fallocate"); fdatasync(fd); end_of_file = REGION; }
      if (v == REUSED_OLD) end_of_file = REGION;
      char name[16];
      snprintf(name, sizeof name, "w%02d", v);
      pthread_setname_np(pthread_self(), name);
      int background = v == BG_256K_SFR || v == BG_1M_NOSFR || v >= BG_ODIRECT_8M;
      pthread_t th;
      if (background) {
        bg_fd = open(path, O_RDWR | (v == BG_ODIRECT_8M ? O_DIRECT : 0));
        writer_end = 32; size = 0; stop = 0; bg_mode = v; chunk = v == BG_1M_NOSFR ? 1 << 20 : 256 << 10;
        pthread_create(&th, NULL, zeroer, NULL);
      }
      sync();
      usleep(100000);
      int n = 0;
      unsigned long long d0 = device_writes();
      double t0 = now(), until = t0 + secs * 1e6;
      while (now() < until && n < 200000) {
        double s = now();
        if (background) {
          pthread_mutex_lock(&mu);
          if (pwrite(fd, data, BATCH, off) < 0) perror("pwrite");
          if (off + BATCH > size) size = off + BATCH;
          pthread_mutex_unlock(&mu);
        } else if ((v == APPEND_1M || v == APPEND_16M) && off + BATCH > end_of_file) {
          size_t z = v == APPEND_1M ? 1 << 20 : 16 << 20;
          if (pwrite(fd, data, BATCH, off) < 0) perror("pwrite");
          for (size_t o = 0; o < z; o += 1 << 20) if (pwrite(fd, zeros, 1 << 20, off + BATCH + o) < 0) perror("pwrite");
          end_of_file = off + BATCH + z;
        } else if (pwrite(fd, data, BATCH, off) < 0) perror("pwrite");
        fdatasync(fd);
        lat[n++] = now() - s;
        off += BATCH;
        if (v == OVERWRITE && off + BATCH > (8u << 20)) off = 32;
        if ((v == PREZEROED || v == PREFILLED_A5 || v == FALLOCATED || v == REUSED_OLD || v == PREZEROED_NOSYNC) && off + BATCH > REGION) off = 32;
        if (background) writer_end = off;
      }
      double elapsed = (now() - t0) / 1e6;
      unsigned long long d1 = device_writes();
      if (background) { stop = 1; pthread_join(th, NULL); close(bg_fd); }
      close(fd);
      if (v != REUSED_OLD) unlink(path);
      pthread_setname_np(pthread_self(), "wal-growth");
      qsort(lat, n, sizeof lat[0], cmp);
      rate[v][r] = n / elapsed * 64;
      devw[v][r] = (double)(d1 - d0) / n;
      p99[v][r] = lat[n * 99 / 100];
      fprintf(stderr, "batches=%d r%d %-22s %7.0f commits/s p50 %5.0f p99 %5.0f us devw/batch %.2f\n", n, r, kNames[v], rate[v][r], lat[n / 2], p99[v][r], devw[v][r]);
    }
  }
  printf("medians over %d rounds (per-round ratio to overwrite-8MiB: median [min..max])\n", rounds);
  for (int v = 0; v < MODES; v++) {
    if (only && !strchr(only, 'a' + v)) continue;
    double a[MAX_ROUNDS], q[MAX_ROUNDS], w[MAX_ROUNDS], p[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) { a[r] = rate[v][r]; q[r] = rate[0][r] > 0 ? rate[v][r] / rate[0][r] : 0; w[r] = devw[v][r]; p[r] = p99[v][r]; }
    qsort(a, rounds, 8, cmp); qsort(q, rounds, 8, cmp); qsort(w, rounds, 8, cmp); qsort(p, rounds, 8, cmp);
    printf("%-22s %7.0f commits/s  %.2fx [%.2f..%.2f]  devw/batch %.2f  p99 %.0f us\n", kNames[v], a[rounds / 2], q[rounds / 2], q[0], q[rounds - 1], w[rounds / 2], p[rounds / 2]);
  }
  return 0;
}
