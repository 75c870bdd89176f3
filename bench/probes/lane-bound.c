// bench/probes/lane-bound.c — the physical bound of a worker lane (issue #21), without JavaScript:
// N committer threads, each with 64/N committers, hand their commits to one writer thread per
// batch; the writer writes every handed commit (a 24 + 4096-byte frame each, one pwritev) and
// fdatasyncs, then wakes each committer thread once (an eventfd write, the thread asleep in
// epoll_wait: what libuv's uv_async_send and its loop do); a woken thread copies its committers'
// next pages into their frame slots and hands them in (a mutex and a condition variable: the
// writer waits for every thread whose commits it just completed, at most 4 ms, as the lane's
// gather does). So what it measures is the disk plus the thread hand-offs and nothing else.
//
// Build: cc -O2 -pthread -o /tmp/lane-bound bench/probes/lane-bound.c
// Run:   /tmp/lane-bound FILE SECONDS ROUNDS N...   (interleaved rounds, order rotating; prints
//        per case the medians of commits/s, CPU µs per commit (process), the writer's turnaround
//        (an fdatasync's return -> the next pwritev) p10 / p50, and of per-round N / first N)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { kCommitters = 64, kFrame = 24 + 4096, kSpan = 8 << 20, kMaxThreads = 64 };

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

struct Case {
  int fd, threads, per;
  uint8_t* frames;  // kCommitters frames
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int handed[kMaxThreads];   // commits handed in, not yet taken (under mu)
  int ready;                 // threads that handed in since the last batch (under mu)
  int efd[kMaxThreads];      // each committer thread's wake-up
  volatile int stop;         // the writer and the threads end
  volatile double deadline;  // committers hand in nothing after it
  uint64_t commits[kMaxThreads];
  uint64_t batches;
  double turn[1 << 16];  // per batch: the last fdatasync's return -> this pwritev, µs (0: first)
};

struct Arg {
  struct Case* c;
  int t;
};

static void* Writer(void* p) {
  struct Case* c = p;
  struct iovec iov[kCommitters];
  off_t pos = 0;
  int taken[kMaxThreads];
  double synced = 0;
  while (!c->stop) {
    pthread_mutex_lock(&c->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    while (c->ready == 0 && !c->stop) {
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      t.tv_nsec += 50000000;
      if (t.tv_nsec >= 1000000000) t.tv_sec++, t.tv_nsec -= 1000000000;
      pthread_cond_timedwait(&c->cv, &c->mu, &t);
      clock_gettime(CLOCK_REALTIME, &until);
    }
    until.tv_nsec += 4000000;  // the gather's bound
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    while (c->ready < c->threads && !c->stop) {
      if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
    }
    c->ready = 0;
    int n = 0;
    for (int t = 0; t < c->threads; t++) {
      taken[t] = c->handed[t];
      c->handed[t] = 0;
      for (int k = 0; k < taken[t]; k++) {
        iov[n].iov_base = c->frames + (size_t)(t * c->per + k % c->per) * kFrame;
        iov[n].iov_len = kFrame;
        n++;
      }
    }
    pthread_mutex_unlock(&c->mu);
    if (n == 0) continue;
    if (pos + (off_t)n * kFrame > kSpan) pos = 0;
    const double t = Now();
    if (c->batches < (1 << 16)) c->turn[c->batches] = synced > 0 ? (t - synced) * 1e6 : -1;
    if (pwritev(c->fd, iov, n, pos) != (ssize_t)n * kFrame || fdatasync(c->fd) != 0) {
      perror("write");
      exit(1);
    }
    pos += (off_t)n * kFrame;
    synced = Now();
    c->batches++;
    for (int t = 0; t < c->threads; t++) {
      if (taken[t] == 0) continue;
      uint64_t v = (uint64_t)taken[t];
      if (write(c->efd[t], &v, 8) != 8) exit(1);
    }
  }
  return NULL;
}

// Hands in `n` commits of thread t: their pages copied into their frame slots.
static void HandIn(struct Case* c, int t, int n, const uint8_t* page) {
  for (int k = 0; k < n; k++) memcpy(c->frames + (size_t)(t * c->per + k) * kFrame + 24, page, 4096);
  pthread_mutex_lock(&c->mu);
  c->handed[t] += n;
  c->ready++;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void* Committer(void* p) {
  struct Arg* a = p;
  struct Case* c = a->c;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->efd[a->t]};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->efd[a->t], &ev);
  uint8_t page[4096];
  memset(page, 0x5a, sizeof page);
  HandIn(c, a->t, c->per, page);
  int out = c->per;  // commits handed in and not completed
  while (!c->stop) {
    struct epoll_event got;
    if (epoll_wait(ep, &got, 1, 50) <= 0) continue;
    uint64_t v;
    if (read(c->efd[a->t], &v, 8) != 8) continue;
    c->commits[a->t] += v;
    out -= (int)v;
    if (Now() < c->deadline) {
      HandIn(c, a->t, (int)v, page);  // every completed committer commits again at once
      out += (int)v;
    }
  }
  (void)out;
  close(ep);
  return NULL;
}

static double CpuSeconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

// One run of `threads` x 64/threads committers for `seconds`: commits/s; *cpuPerCommit in µs.
static int Cmp(const void* a, const void* b);

static double Run(const char* file, int threads, double seconds, double* cpuPerCommit, double* turnP10, double* turnP50) {
  struct Case* c = calloc(1, sizeof *c);
  c->threads = threads;
  c->per = kCommitters / threads;
  c->fd = open(file, O_RDWR);
  if (c->fd < 0) {
    perror(file);
    exit(1);
  }
  if (posix_memalign((void**)&c->frames, 4096, (size_t)kCommitters * kFrame) != 0) exit(1);
  memset(c->frames, 0, (size_t)kCommitters * kFrame);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  for (int t = 0; t < threads; t++) c->efd[t] = eventfd(0, 0);
  const double cpu0 = CpuSeconds();
  const double t0 = Now();
  c->deadline = t0 + seconds;
  pthread_t w, ts[kMaxThreads];
  struct Arg args[kMaxThreads];
  pthread_create(&w, NULL, Writer, c);
  for (int t = 0; t < threads; t++) {
    args[t] = (struct Arg){c, t};
    pthread_create(&ts[t], NULL, Committer, &args[t]);
  }
  while (Now() < c->deadline) usleep(10000);
  usleep(20000);  // the last batch completes
  const double t1 = Now();
  c->stop = 1;
  pthread_mutex_lock(&c->mu);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(w, NULL);
  for (int t = 0; t < threads; t++) pthread_join(ts[t], NULL);
  uint64_t commits = 0;
  for (int t = 0; t < threads; t++) commits += c->commits[t], close(c->efd[t]);
  *cpuPerCommit = (CpuSeconds() - cpu0) * 1e6 / (double)commits;
  size_t nb = c->batches < (1 << 16) ? c->batches : (1 << 16), nt = 0;
  for (size_t b = 0; b < nb; b++)
    if (c->turn[b] >= 0) c->turn[nt++] = c->turn[b];
  qsort(c->turn, nt, sizeof(double), Cmp);
  *turnP10 = nt ? c->turn[nt / 10] : 0;
  *turnP50 = nt ? c->turn[nt / 2] : 0;
  (void)t1;
  close(c->fd);
  free(c->frames);
  free(c);
  return (double)commits / seconds;
}

static int Cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double Median(double* v, int n) {
  double s[256];
  memcpy(s, v, sizeof(double) * (size_t)n);
  qsort(s, (size_t)n, sizeof(double), Cmp);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s FILE SECONDS ROUNDS N...\n", argv[0]);
    return 2;
  }
  const char* file = argv[1];
  const double seconds = atof(argv[2]);
  const int rounds = atoi(argv[3]);
  const int cases = argc - 4;
  int ns[16];
  for (int i = 0; i < cases && i < 16; i++) ns[i] = atoi(argv[4 + i]);
  // prefill the span (overwritten in place, as raw-64 does)
  int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
  static uint8_t zero[1 << 20];
  for (int i = 0; i < (kSpan >> 20) + 1; i++)
    if (write(fd, zero, sizeof zero) != sizeof zero) return 1;
  fsync(fd);
  close(fd);
  static double rate[16][256], cpu[16][256], p10[16][256], p50[16][256];
  for (int r = 0; r < rounds && r < 256; r++) {
    for (int k = 0; k < cases; k++) {
      int i = (k + r) % cases;
      if (r % 2) i = cases - 1 - i;
      rate[i][r] = Run(file, ns[i], seconds, &cpu[i][r], &p10[i][r], &p50[i][r]);
    }
  }
  for (int i = 0; i < cases; i++) {
    double ratio[256];
    for (int r = 0; r < rounds; r++) ratio[r] = rate[i][r] / rate[0][r];
    double lo = ratio[0], hi = ratio[0];
    for (int r = 1; r < rounds; r++) lo = ratio[r] < lo ? ratio[r] : lo, hi = ratio[r] > hi ? ratio[r] : hi;
    printf("threads %d x %d: %.0f commits/s (median), CPU %.2f µs/commit, turnaround p10 %.0f / p50 %.0f µs, / threads %d: %.2fx [%.2f..%.2f]\n",
           ns[i], kCommitters / ns[i], Median(rate[i], rounds), Median(cpu[i], rounds), Median(p10[i], rounds), Median(p50[i], rounds), ns[0],
           Median(ratio, rounds), lo, hi);
  }
  return 0;
}
