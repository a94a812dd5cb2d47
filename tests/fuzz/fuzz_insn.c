// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* libFuzzer: the prologue decoder on bytes read from a target's text (its ELF or memory). */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "insn_decode.h"

/* The registers a skipped NULL check may name: rcx, rdx, rsi, rdi, r8, r9. */
static int is_arg_reg(int r)
{
	return r == 1 || r == 2 || r == 6 || r == 7 || r == 8 || r == 9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct probe_placement place;
	uint8_t *code;
	size_t n;
	int err;

	/* An exact-sized copy: ASan then catches a read one byte past len. */
	code = malloc(size ? size : 1);
	if (!code)
		return 0;
	memcpy(code, data, size);

	n = insn_decode__length(code, size);
	assert(n <= size && n <= 15);

	memset(&place, 0xa5, sizeof(place));
	err = insn_decode__placement(code, size, &place);
	if (!size) {
		assert(err == -EINVAL);
	} else {
		assert(err == 0);
		assert(place.offset < size);
		assert(place.reason && *place.reason);
		assert(place.null_arg == -1 || is_arg_reg(place.null_arg));
		assert(!place.offset || place.emulated);
		/* The probe lands on a whole instruction the decoder knows. */
		if (place.offset)
			assert(insn_decode__length(code + place.offset, size - place.offset) > 0);
		/* Only some arguments read (the first byte picks which): each is somewhere. */
		memset(&place, 0xa5, sizeof(place));
		assert(insn_decode__placement_args(code, size, data[0] & 0x3f, &place) == 0);
		assert(place.offset < size);
		for (n = 0; n < 6; n++)
			assert(place.arg_at[n] >= 1 && place.arg_at[n] <= 6);
		if (place.offset)
			assert(insn_decode__length(code + place.offset, size - place.offset) > 0);
	}
	free(code);
	return 0;
}
