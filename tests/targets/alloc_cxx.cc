// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * C++ operator new/delete on two threads, linked to tcmalloc (which defines them): plain,
 * array, nothrow, aligned and sized forms, and std::vector growth. Same protocol as
 * alloc_pattern: "ready PID", SIGUSR1, "truth {...}", "done", SIGTERM.
 * Usage: alloc_cxx_tcmalloc THREADS
 */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>

#define MAX_THREADS 16

struct truth {
	pid_t tid;
	uint64_t live_bytes, live_allocations, allocated_bytes_total, allocations_total;
	uint64_t frees_total;
};

static truth truths[MAX_THREADS];
static pthread_barrier_t start_line;

struct alignas(64) Aligned {
	char bytes[192];
};

struct Node {
	uint64_t a, b, c;
};

/* The compiler may elide a new/delete pair whose block does not escape (C++14). */
static void escape(void *p)
{
	asm volatile("" : : "r"(p) : "memory");
}

static void got(truth *t, size_t size)
{
	t->live_bytes += size;
	t->live_allocations++;
	t->allocated_bytes_total += size;
	t->allocations_total++;
}

static void gone(truth *t, size_t size)
{
	t->live_bytes -= size;
	t->live_allocations--;
	t->frees_total++;
}

static std::vector<void *> kept[MAX_THREADS];

static void pattern(truth *t, size_t n)
{
	size_t base = 1000 + 100 * n, i, sz;

	kept[n].reserve(64); /* before the window is not possible: counted */
	got(t, 64 * sizeof(void *));
	for (i = 0; i < 8; i++) {
		void *p = ::operator new(base + i);
		got(t, base + i);
		kept[n].push_back(p);
	}
	kept[n].push_back(new Node{ 1, 2, 3 });
	got(t, sizeof(Node));
	kept[n].push_back(new Aligned);
	got(t, sizeof(Aligned));
	kept[n].push_back(new (std::nothrow) Node{ 4, 5, 6 });
	got(t, sizeof(Node));
	kept[n].push_back(new Node[10]);
	got(t, 10 * sizeof(Node));
	kept[n].push_back(new Aligned[3]);
	got(t, 3 * sizeof(Aligned));
	for (i = 0; i < 500; i++) {
		sz = 8 + (i * 41 + base) % 2000;
		switch (i % 6) {
		case 0: {
			Node *p = new Node{ i, i, i };
			escape(p);
			got(t, sizeof(Node));
			delete p; /* sized delete */
			gone(t, sizeof(Node));
			break;
		}
		case 1: {
			Aligned *p = new Aligned;
			escape(p);
			got(t, sizeof(Aligned));
			delete p; /* aligned sized delete */
			gone(t, sizeof(Aligned));
			break;
		}
		case 2: {
			char *p = new char[sz];
			escape(p);
			got(t, sz);
			std::memset(p, 1, sz);
			delete[] p;
			gone(t, sz);
			break;
		}
		case 3: {
			void *p = ::operator new(sz, std::nothrow);
			got(t, sz);
			::operator delete(p, std::nothrow);
			gone(t, sz);
			break;
		}
		case 4: {
			void *p = ::operator new(sz, std::align_val_t(128));
			got(t, sz);
			::operator delete(p, sz, std::align_val_t(128));
			gone(t, sz);
			break;
		}
		default: {
			void *p = ::operator new[](sz);
			got(t, sz);
			::operator delete[](p, sz);
			gone(t, sz);
			break;
		}
		}
	}
	/* A vector growing by doubling: each step allocates the new buffer, frees the old. */
	{
		std::vector<uint32_t> v;
		size_t cap = 0;

		for (i = 0; i < 1000; i++) {
			v.push_back((uint32_t)i);
			if (v.capacity() != cap) {
				if (cap)
					gone(t, cap * sizeof(uint32_t));
				cap = v.capacity();
				got(t, cap * sizeof(uint32_t));
			}
		}
		gone(t, cap * sizeof(uint32_t));
	}
}

static void *worker(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;

	truths[n].tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&start_line);
	pattern(&truths[n], n);
	pthread_barrier_wait(&start_line);
	for (;;)
		pause();
	return nullptr;
}

static void wait_signal(int sig)
{
	sigset_t set;
	int got_sig;

	sigemptyset(&set);
	sigaddset(&set, sig);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &got_sig);
	if (got_sig == SIGTERM)
		_exit(0);
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 2, i;
	pthread_t th[MAX_THREADS];
	sigset_t set;

	if (nthreads < 1 || nthreads > MAX_THREADS)
		return 2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	pthread_barrier_init(&start_line, nullptr, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i], nullptr, worker, (void *)(uintptr_t)i);
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_signal(SIGUSR1);
	pthread_barrier_wait(&start_line);
	pthread_barrier_wait(&start_line);
	printf("truth {\"pid\": %d, \"threads\": [", getpid());
	for (i = 0; i < nthreads; i++) {
		truth *t = &truths[i];

		printf("%s{\"tid\": %d, \"live_bytes\": %lu, \"live_allocations\": %lu, "
		       "\"allocated_bytes_total\": %lu, \"allocations_total\": %lu, "
		       "\"frees_total\": %lu, \"frees_untracked_total\": 0}",
		       i ? ", " : "", t->tid, t->live_bytes, t->live_allocations,
		       t->allocated_bytes_total, t->allocations_total, t->frees_total);
	}
	printf("]}\ndone\n");
	fflush(stdout);
	wait_signal(SIGTERM);
	return 0;
}
