// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer: a sampled stack as a target sends it (registers, stack copy, uretprobe slots:
 * all the target's to choose), unwound against this process's own objects and CFI, then
 * named. A stack word with its top bit set is turned into an address in this process's code,
 * so that the walk gets past the first frame.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stack_profile.h"
#include "stack_unwind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct stack_unwinder *unwinder;
static struct ms_sample sample;

static uint64_t code_address(uint64_t w)
{
	static const uintptr_t bases[] = { (uintptr_t)LLVMFuzzerTestOneInput,
					   (uintptr_t)malloc, (uintptr_t)memcpy };

	return bases[(w >> 16) % 3] + (w & 0xffff) - 0x8000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t pcs[STACK_MAX_FRAMES], *words;
	struct stack_profile *p;
	size_t head = sizeof(sample.regs) + sizeof(sample.ret_slot) + sizeof(sample.ret_orig);
	size_t len, n, i;
	bool truncated, fresh;
	long f;

	if (!unwinder) {
		unwinder = stack_unwinder__new((int)getpid(), NULL);
		assert(unwinder);
	}
	if (size < head)
		return 0;
	memset(&sample, 0, MS_SAMPLE_HEADER_SIZE);
	sample.type = MS_EV_SAMPLE;
	sample.tid = 4242;
	memcpy(sample.regs, data, sizeof(sample.regs));
	memcpy(sample.ret_slot, data + sizeof(sample.regs), sizeof(sample.ret_slot));
	memcpy(sample.ret_orig, data + sizeof(sample.regs) + sizeof(sample.ret_slot),
	       sizeof(sample.ret_orig));
	len = size - head;
	if (len > MS_SAMPLE_STACK_MAX)
		len = MS_SAMPLE_STACK_MAX;
	memcpy(sample.stack, data + head, len);
	/* Addresses the fuzzer can reach: code, and a stack at the sampled sp. */
	sample.regs[16] = code_address(sample.regs[16]);
	sample.regs[7] = 0x7ff000000000ull + (sample.regs[7] & 0xfff);
	words = (uint64_t *)sample.stack;
	for (i = 0; i < len / 8; i++)
		if (words[i] >> 63)
			words[i] = code_address(words[i]);
	/* The length the BPF side claims may exceed what arrived: the record length bounds it. */
	sample.stack_len = (uint32_t)(data[0] % 2 ? MS_SAMPLE_STACK_MAX : len);
	n = stack_unwinder__unwind(unwinder, &sample, MS_SAMPLE_HEADER_SIZE + len, pcs,
				   STACK_MAX_FRAMES, &truncated);
	assert(n >= 1 && n <= STACK_MAX_FRAMES);
	p = stack_profile__new(1, 1000);
	assert(p);
	for (i = 0; i < n; i++) {
		f = stack_profile__frame(p, 1, pcs[i], &fresh);
		if (f >= 0 && fresh)
			stack_unwinder__symbolize(unwinder, p, (uint32_t)f);
	}
	stack_profile__free(p);
	return 0;
}
