// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ptrace.h>

#include <cmocka.h>

#include "freeze.h"

/* waitpid statuses, as the kernel makes them. */
#define STOPPED(sig, event) (((event) << 16) | ((sig) << 8) | 0x7f)
#define EXITED(code) ((code) << 8)
#define KILLED(sig) (sig)
#define CONTINUED 0xffff

static void test_freeze_classify_interrupt_is_an_event_stop(void **state)
{
	int sig = -1;

	(void)state;
	assert_int_equal(freeze__classify(STOPPED(SIGTRAP, PTRACE_EVENT_STOP), &sig),
			 FREEZE_STOP_EVENT);
	assert_int_equal(sig, -1);
	assert_int_equal(freeze__classify(STOPPED(SIGTRAP, PTRACE_EVENT_CLONE), &sig),
			 FREEZE_STOP_EVENT);
	assert_int_equal(freeze__classify(STOPPED(SIGTRAP | 0x80, 0), &sig), FREEZE_STOP_EVENT);
	assert_int_equal(sig, -1);
}

static void test_freeze_classify_group_stop_keeps_no_signal_to_give_back(void **state)
{
	int sigs[] = { SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU };
	size_t i;
	int sig;

	(void)state;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sig = 0;
		assert_int_equal(freeze__classify(STOPPED(sigs[i], PTRACE_EVENT_STOP), &sig),
				 FREEZE_STOP_GROUP);
		assert_int_equal(sig, sigs[i]);
	}
}

static void test_freeze_classify_signal_delivery_stop_gives_the_signal(void **state)
{
	int sigs[] = { SIGUSR1, SIGTERM, SIGSTOP, SIGRTMIN + 1, SIGTRAP, SIGCHLD };
	size_t i;
	int sig;

	(void)state;
	/* SIGSTOP arriving is a signal-delivery-stop first: given back, it stops the group. */
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sig = 0;
		assert_int_equal(freeze__classify(STOPPED(sigs[i], 0), &sig), FREEZE_STOP_SIGNAL);
		assert_int_equal(sig, sigs[i]);
	}
}

static void test_freeze_classify_end_and_continue(void **state)
{
	int sig = -1;

	(void)state;
	assert_int_equal(freeze__classify(EXITED(0), &sig), FREEZE_STOP_GONE);
	assert_int_equal(freeze__classify(EXITED(3), &sig), FREEZE_STOP_GONE);
	assert_int_equal(freeze__classify(KILLED(SIGKILL), &sig), FREEZE_STOP_GONE);
	assert_int_equal(freeze__classify(KILLED(SIGSEGV) | 0x80, &sig), FREEZE_STOP_GONE);
	assert_int_equal(freeze__classify(CONTINUED, &sig), FREEZE_STOP_NONE);
	assert_int_equal(sig, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_freeze_classify_interrupt_is_an_event_stop),
		cmocka_unit_test(test_freeze_classify_group_stop_keeps_no_signal_to_give_back),
		cmocka_unit_test(test_freeze_classify_signal_delivery_stop_gives_the_signal),
		cmocka_unit_test(test_freeze_classify_end_and_continue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
