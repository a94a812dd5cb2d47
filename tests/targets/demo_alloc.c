// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The demo service: two worker threads serve fake requests (a buffer per request, freed when
 * done) and one of them also fills a cache that is never trimmed: a slow leak to find.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *serve(void *arg)
{
	int leaky = arg != NULL, n = 0;
	char *req;

	for (;;) {
		req = malloc(512 + (size_t)(n % 8) * 512);
		memset(req, 1, 512);
		usleep(2000);
		free(req);
		/* Every 10th request is cached forever. */
		if (leaky && n % 10 == 0)
			memset(malloc(4096), 2, 4096);
		n++;
	}
	return NULL;
}

int main(void)
{
	pthread_t a, b;

	pthread_create(&a, NULL, serve, NULL);
	pthread_create(&b, NULL, serve, (void *)1);
	pthread_join(a, NULL);
	return 0;
}
