// The kernel's floor for the suite, in plain C with blocking calls and no event loop.
//   floor pingpong ROUNDS WARMUP  a forked child echoes 1 byte over an AF_UNIX socketpair;
//                                 prints {"p50":µs,"p99":µs,"rate":round trips/s}
//   floor send CALLS BATCH        1-byte nonblocking send()s in timed batches to the other end of
//                                 a socketpair, drained between batches; prints {"nsPerCall":
//                                 median over batches}
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(double *sorted, long n, double q) {
  long i = (long)(q * n);
  return sorted[i < n ? i : n - 1];
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int pingpong(long rounds, long warm_up) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  char byte = 1;
  if (pid == 0) {
    close(fds[0]);
    while (read(fds[1], &byte, 1) == 1) {
      if (write(fds[1], &byte, 1) != 1) break;
    }
    _exit(0);
  }
  close(fds[1]);
  double *micros = malloc(sizeof(double) * (rounds > 0 ? rounds : 1));
  double total = 0;
  for (long round = 0; round < warm_up + rounds; round++) {
    double start = now_ns();
    if (write(fds[0], &byte, 1) != 1) die("write");
    if (read(fds[0], &byte, 1) != 1) die("read");
    if (round >= warm_up) {
      micros[round - warm_up] = (now_ns() - start) / 1e3;
      total += micros[round - warm_up];
    }
  }
  close(fds[0]);
  waitpid(pid, NULL, 0);
  if (rounds == 0) {
    printf("{\"rounds\":0}\n");
    return 0;
  }
  qsort(micros, rounds, sizeof(double), by_value);
  printf("{\"rounds\":%ld,\"p50\":%.3f,\"p99\":%.3f,\"rate\":%.0f}\n", rounds, quantile(micros, rounds, 0.5),
         quantile(micros, rounds, 0.99), rounds / total * 1e6);
  return 0;
}

static int send_loop(long calls, long batch) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) die("socketpair");
  long batches = calls / batch;
  double *ns = malloc(sizeof(double) * batches);
  char byte = 1, buf[4096];
  for (long b = 0; b < batches; b++) {
    double start = now_ns();
    for (long i = 0; i < batch; i++) {
      if (send(fds[0], &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) die("send");
    }
    ns[b] = (now_ns() - start) / batch;
    while (recv(fds[1], buf, sizeof buf, 0) > 0) {
    }
    if (errno != EAGAIN) die("recv");
  }
  qsort(ns, batches, sizeof(double), by_value);
  printf("{\"calls\":%ld,\"nsPerCall\":%.1f}\n", batches * batch, quantile(ns, batches, 0.5));
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "pingpong") == 0) return pingpong(atol(argv[2]), atol(argv[3]));
  if (argc == 4 && strcmp(argv[1], "send") == 0 && atol(argv[3]) > 0) return send_loop(atol(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: floor pingpong ROUNDS WARMUP | floor send CALLS BATCH\n");
  return 2;
}
