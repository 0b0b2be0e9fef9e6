// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Workloads for the profiler tests, built at test time with frame pointers
 * (gcc -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer), and once more
 * stripped. Every function the tests look for is noinline and named for what
 * it does.
 *
 *   workload ratio SECONDS   burn_three and burn_one in a 3:1 ratio of work
 *   workload syscall SECONDS syscall_heavy: read(2) of /dev/zero, kernel-bound
 *   workload sleep MS N      sleepy_wait blocks MS milliseconds, N times
 *   workload short MS        short_burn for MS milliseconds, then exit
 *   workload stripped SECONDS  exported_burn (in .dynsym) and hidden_burn
 *                            (nowhere once stripped), alternating
 *   workload jit SECONDS     jit_spin_loop: machine code in anonymous memory,
 *                            named only by /tmp/perf-PID.map
 *   workload thread SECONDS  thread_burn in a second thread named "burner"
 *   workload work UNITS      burn_three(UNITS): a fixed amount of work (bench)
 *
 * The syscalls are made with the syscall instruction from the named function
 * itself: Debian's libc is built without frame pointers, so a frame-pointer
 * walk that starts inside libc's wrapper skips the wrapper's caller (see
 * docs/PROFILING.md).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORTED __attribute__((noinline, visibility("default")))
#define HIDDEN __attribute__((noinline, visibility("hidden")))

static volatile uint64_t sink;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline long raw_syscall3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

/* The same work per unit in both: only the number of units differs. */
EXPORTED void burn_three(uint64_t units)
{
	for (uint64_t i = 0; i < units * 100000; i++)
		sink += i ^ (sink >> 3);
}

EXPORTED void burn_one(uint64_t units)
{
	for (uint64_t i = 0; i < units * 100000; i++)
		sink += i ^ (sink >> 3);
}

static void run_ratio(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		burn_three(3);
		burn_one(1);
	}
}

EXPORTED void syscall_heavy(int fd, char *buf)
{
	for (int i = 0; i < 64; i++)
		raw_syscall3(SYS_read, fd, (long)buf, 1 << 16);
}

static void run_syscall(double secs)
{
	static char buf[1 << 16];
	double end = now_s() + secs;
	int fd = open("/dev/zero", O_RDONLY);

	if (fd < 0) {
		perror("/dev/zero");
		exit(1);
	}
	while (now_s() < end)
		syscall_heavy(fd, buf);
	close(fd);
}

EXPORTED void sleepy_wait(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	raw_syscall3(SYS_nanosleep, (long)&ts, 0, 0);
}

EXPORTED void short_burn(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end)
		for (int i = 0; i < 10000; i++)
			sink += i;
}

EXPORTED void exported_burn(void)
{
	for (uint64_t i = 0; i < 200000; i++)
		sink += i ^ (sink >> 3);
}

HIDDEN void hidden_burn(void)
{
	for (uint64_t i = 0; i < 200000; i++)
		sink += i ^ (sink >> 5);
}

static void run_stripped(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		exported_burn();
		hidden_burn();
	}
}

/* push rbp; mov rbp,rsp; mov ecx,imm32; 1: dec ecx; jnz 1b; pop rbp; ret */
static const unsigned char jit_code[] = { 0x55, 0x48, 0x89, 0xe5, 0xb9, 0x00, 0x00, 0x10, 0x00,
					  0xff, 0xc9, 0x75, 0xfc, 0x5d, 0xc3 };

static void run_jit(double secs)
{
	void (*fn)(void);
	double end = now_s() + secs;
	char path[64];
	void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FILE *f;

	if (mem == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memcpy(mem, jit_code, sizeof(jit_code));
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fprintf(f, "%lx %zx jit_spin_loop\n", (unsigned long)mem, sizeof(jit_code));
	fclose(f);
	fn = (void (*)(void))mem;
	/* the map stays, as JITs leave it: the profiler may read it after exit */
	while (now_s() < end)
		fn();
}

EXPORTED void thread_burn(double secs)
{
	short_burn(secs);
}

static void *burner(void *arg)
{
	prctl(PR_SET_NAME, "burner");
	thread_burn(*(double *)arg);
	return NULL;
}

static void run_thread(double secs)
{
	pthread_t t;

	if (pthread_create(&t, NULL, burner, &secs)) {
		fprintf(stderr, "pthread_create failed\n");
		exit(1);
	}
	pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: workload ratio|syscall|sleep|short|stripped|jit|thread ARG...\n");
		return 2;
	}
	if (!strcmp(argv[1], "ratio"))
		run_ratio(atof(argv[2]));
	else if (!strcmp(argv[1], "syscall"))
		run_syscall(atof(argv[2]));
	else if (!strcmp(argv[1], "sleep") && argc == 4)
		for (int i = 0; i < atoi(argv[3]); i++)
			sleepy_wait(atol(argv[2]));
	else if (!strcmp(argv[1], "short"))
		short_burn(atof(argv[2]) / 1000);
	else if (!strcmp(argv[1], "stripped"))
		run_stripped(atof(argv[2]));
	else if (!strcmp(argv[1], "jit"))
		run_jit(atof(argv[2]));
	else if (!strcmp(argv[1], "work"))
		burn_three(strtoull(argv[2], NULL, 10));
	else if (!strcmp(argv[1], "thread"))
		run_thread(atof(argv[2]));
	else
		return 2;
	return 0;
}
