// The floors for the suite, in plain C with blocking calls and no event loop.
//   floor pingpong ROUNDS WARMUP  a forked child echoes 1 byte over an AF_UNIX socketpair;
//                                 prints {"p50":µs,"p99":µs,"rate":round trips/s}
//   floor send CALLS BATCH        1-byte nonblocking send()s in timed batches to the other end of
//                                 a socketpair, drained between batches; prints {"nsPerCall":
//                                 median over batches}
//   floor ring SIZE MS [CAPACITY] streams SIZE-byte messages for MS ms through an SPSC ring in a
//                                 memfd to a forked child, with a socketpair doorbell rung only
//                                 when the other side sleeps (the Channel's floor); the child
//                                 copies each message out; prints {"messages","bytes","seconds",
//                                 "msgsPerSecond","mbPerSecond","consumerSleeps","producerSleeps"}
//   floor spin ROUNDS WARMUP      a forked child and this process ping-pong a counter through
//                                 shared memory, both spinning; prints {"p50","p99","rate"}
#define _GNU_SOURCE
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

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

/* Prints the round trips as JSON: their count, p50 and p99 in µs, and rate; sorts `micros`. */
static void print_round_trips(double *micros, long rounds, double total) {
  if (rounds == 0) {
    printf("{\"rounds\":0}\n");
    return;
  }
  qsort(micros, rounds, sizeof(double), by_value);
  printf("{\"rounds\":%ld,\"p50\":%.3f,\"p99\":%.3f,\"rate\":%.0f}\n", rounds, quantile(micros, rounds, 0.5),
         quantile(micros, rounds, 0.99), rounds / total * 1e6);
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
  print_round_trips(micros, rounds, total);
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

// The ring: u32 byte indices that only grow (modulo 2^32), each side's on a cache line of its own,
// and each side's "waiting" flag on another. A frame is an 8-byte header (the length, u32) and the
// payload, padded to 8 bytes; a frame never wraps: the producer writes a SKIP header and starts
// again at offset 0. Eventcount: a side that finds nothing to do sets its flag, fences, checks
// again, then blocks in read() on its end of the doorbell; the other side publishes, fences, and
// rings (one byte) only if it clears a set flag.
#define FRAME_HEADER 8
#define FRAME_SKIP 0xffffffffu
#define FRAME_END 0xfffffffeu

struct ring {
  alignas(64) _Atomic uint32_t head;  // producer: bytes written
  alignas(64) _Atomic uint32_t tail;  // consumer: bytes read
  alignas(64) _Atomic uint32_t consumer_waiting;
  alignas(64) _Atomic uint32_t producer_waiting;
  alignas(64) uint64_t messages, bytes, consumer_sleeps, producer_sleeps;
  double seconds;
  alignas(64) unsigned char data[];
};

static uint32_t frame_size(uint32_t length) { return FRAME_HEADER + ((length + 7) & ~7u); }

/** Rings the peer if it sleeps, after this side published (the fence pairs with the sleeper's). */
static void wake_if_waiting(_Atomic uint32_t *waiting, int doorbell) {
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(waiting, memory_order_relaxed) && atomic_exchange(waiting, 0)) {
    char byte = 1;
    if (write(doorbell, &byte, 1) != 1) die("write doorbell");
  }
}

/** Sleeps on the doorbell unless `ready()` turns true after the flag is set. */
static int sleep_unless(_Atomic uint32_t *waiting, int doorbell, int (*ready)(struct ring *, uint32_t),
                        struct ring *ring, uint32_t arg) {
  atomic_store(waiting, 1);
  atomic_thread_fence(memory_order_seq_cst);
  if (ready(ring, arg)) {
    atomic_store_explicit(waiting, 0, memory_order_relaxed);
    return 0;
  }
  char bytes[64];
  if (read(doorbell, bytes, sizeof bytes) <= 0) die("read doorbell");
  atomic_store_explicit(waiting, 0, memory_order_relaxed);
  return 1;
}

static uint32_t ring_capacity;

static int has_room(struct ring *ring, uint32_t needed) {
  uint32_t used = atomic_load_explicit(&ring->head, memory_order_relaxed) -
                  atomic_load_explicit(&ring->tail, memory_order_acquire);
  return ring_capacity - used >= needed;
}

static int has_data(struct ring *ring, uint32_t tail) {
  return atomic_load_explicit(&ring->head, memory_order_acquire) != tail;
}

/** Writes one frame, waiting for room; `length` may be FRAME_END (no payload). */
static void produce(struct ring *ring, int doorbell, uint32_t *tail_seen, const void *message, uint32_t length) {
  uint32_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
  uint32_t size = frame_size(length == FRAME_END ? 0 : length);
  uint32_t offset = head & (ring_capacity - 1);
  uint32_t skip = ring_capacity - offset < size ? ring_capacity - offset : 0;
  while (ring_capacity - (head - *tail_seen) < skip + size) {
    *tail_seen = atomic_load_explicit(&ring->tail, memory_order_acquire);
    if (ring_capacity - (head - *tail_seen) >= skip + size) break;
    ring->producer_sleeps += sleep_unless(&ring->producer_waiting, doorbell, has_room, ring, skip + size);
  }
  if (skip) {
    *(uint32_t *)(ring->data + offset) = FRAME_SKIP;
    offset = 0;
  }
  *(uint32_t *)(ring->data + offset) = length;
  if (length != FRAME_END) memcpy(ring->data + offset + FRAME_HEADER, message, length);
  atomic_store_explicit(&ring->head, head + skip + size, memory_order_release);
  wake_if_waiting(&ring->consumer_waiting, doorbell);
}

static void consume_all(struct ring *ring, int doorbell, uint32_t max_size) {
  unsigned char *message = malloc(max_size ? max_size : 1);
  uint64_t expected = 0, messages = 0, bytes = 0, sleeps = 0;
  uint32_t tail = 0;
  double first = 0;
  for (;;) {
    uint32_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
    if (head == tail) {
      sleeps += sleep_unless(&ring->consumer_waiting, doorbell, has_data, ring, tail);
      continue;
    }
    while (tail != head) {
      uint32_t offset = tail & (ring_capacity - 1);
      uint32_t length = *(uint32_t *)(ring->data + offset);
      if (length == FRAME_SKIP) {
        tail += ring_capacity - offset;
        continue;
      }
      if (length == FRAME_END) {
        ring->seconds = (now_ns() - first) / 1e9;
        ring->messages = messages;
        ring->bytes = bytes;
        ring->consumer_sleeps = sleeps;
        atomic_store_explicit(&ring->tail, tail + frame_size(0), memory_order_release);
        free(message);
        return;
      }
      if (length > max_size) {
        fprintf(stderr, "ring: frame of %u bytes at %u\n", length, tail);
        exit(1);
      }
      memcpy(message, ring->data + offset + FRAME_HEADER, length);
      if (length >= sizeof expected && memcmp(message, &expected, sizeof expected) != 0) {
        fprintf(stderr, "ring: message %llu out of order\n", (unsigned long long)expected);
        exit(1);
      }
      if (messages == 0) first = now_ns();
      expected++;
      messages++;
      bytes += length;
      tail += frame_size(length);
    }
    atomic_store_explicit(&ring->tail, tail, memory_order_release);
    wake_if_waiting(&ring->producer_waiting, doorbell);
  }
}

static int ring_stream(uint32_t size, long ms, uint32_t capacity) {
  if (capacity < 4096 || (capacity & (capacity - 1)) || frame_size(size) > capacity / 2) {
    fprintf(stderr, "ring: the capacity must be a power of two >= 4096 and hold two messages\n");
    return 2;
  }
  ring_capacity = capacity;
  size_t bytes = sizeof(struct ring) + capacity;
  int memfd = memfd_create("floor-ring", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, (off_t)bytes) < 0) die("memfd");
  struct ring *ring = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (ring == MAP_FAILED) die("mmap");
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(fds[0]);
    consume_all(ring, fds[1], size);
    _exit(0);
  }
  close(fds[1]);
  unsigned char *message = calloc(1, size > 8 ? size : 8);
  uint32_t tail_seen = 0;
  double end = now_ns() + ms * 1e6;
  for (uint64_t sequence = 0;; sequence++) {
    if ((sequence & 63) == 0 && now_ns() >= end) break;
    memcpy(message, &sequence, size >= sizeof sequence ? sizeof sequence : 0);
    produce(ring, fds[0], &tail_seen, message, size);
  }
  produce(ring, fds[0], &tail_seen, NULL, FRAME_END);
  int status;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) die("consumer");
  printf("{\"size\":%u,\"messages\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"msgsPerSecond\":%.0f,"
         "\"mbPerSecond\":%.1f,\"consumerSleeps\":%llu,\"producerSleeps\":%llu}\n",
         size, (unsigned long long)ring->messages, (unsigned long long)ring->bytes, ring->seconds,
         ring->messages / ring->seconds, ring->bytes / ring->seconds / 1e6,
         (unsigned long long)ring->consumer_sleeps, (unsigned long long)ring->producer_sleeps);
  return 0;
}

static int spin_pingpong(long rounds, long warm_up) {
  struct counters {
    alignas(64) _Atomic long ping;
    alignas(64) _Atomic long pong;
  } *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) die("mmap");
  long total_rounds = warm_up + rounds;
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    for (long round = 1; round <= total_rounds; round++) {
      while (atomic_load_explicit(&shared->ping, memory_order_acquire) != round) cpu_relax();
      atomic_store_explicit(&shared->pong, round, memory_order_release);
    }
    _exit(0);
  }
  double *micros = malloc(sizeof(double) * (rounds > 0 ? rounds : 1));
  double total = 0;
  for (long round = 1; round <= total_rounds; round++) {
    double start = now_ns();
    atomic_store_explicit(&shared->ping, round, memory_order_release);
    while (atomic_load_explicit(&shared->pong, memory_order_acquire) != round) cpu_relax();
    if (round > warm_up) {
      micros[round - warm_up - 1] = (now_ns() - start) / 1e3;
      total += micros[round - warm_up - 1];
    }
  }
  waitpid(pid, NULL, 0);
  print_round_trips(micros, rounds, total);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "pingpong") == 0) return pingpong(atol(argv[2]), atol(argv[3]));
  if (argc == 4 && strcmp(argv[1], "send") == 0 && atol(argv[3]) > 0) return send_loop(atol(argv[2]), atol(argv[3]));
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "ring") == 0) {
    return ring_stream((uint32_t)atol(argv[2]), atol(argv[3]), argc == 5 ? (uint32_t)atol(argv[4]) : 1u << 20);
  }
  if (argc == 4 && strcmp(argv[1], "spin") == 0) return spin_pingpong(atol(argv[2]), atol(argv[3]));
  fprintf(stderr,
          "usage: floor pingpong ROUNDS WARMUP | floor send CALLS BATCH | floor ring SIZE MS [CAPACITY] | "
          "floor spin ROUNDS WARMUP\n");
  return 2;
}
