// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `memscoped top`: reads a daemon's JSON API once a second (libcurl) and draws the task table
 * (ncurses). With -p it starts the daemon itself: this same program, with the arguments given
 * and --listen 127.0.0.1:0, telling top its port through a pipe.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <ncurses.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "http_server.h"
#include "top.h"
#include "top_model.h"

#define DEFAULT_CONNECT "127.0.0.1:9464"
#define REFRESH_MS 1000
/* An answer can wait up to 3 s for a fresh snapshot (see http_server.c). */
#define REQUEST_TIMEOUT_S 8
/* Attaching to a large target takes seconds (the attach scan reads its memory). */
#define DAEMON_START_TIMEOUT_MS 120000
#define ANSWER_MAX (64 << 20)
#define FILTER_MAX 128

static volatile sig_atomic_t exit_signal;
static bool curses_on;

enum view { VIEW_TASKS, VIEW_TYPES, VIEW_DETAILS };

struct top {
	CURL *curl;
	char base[96]; /* http://ADDR:PORT */
	char *buf;
	size_t len, cap;
	pid_t daemon;
	char daemon_log[64];
	struct top_model *model;
	uint32_t pid; /* the process shown */
	struct task_row_order order;
	char filter[FILTER_MAX];
	enum view view;
	size_t selected, first;
	char selected_id[TASK_ROW_ID_LEN];
	bool moved; /* the user moved the selection: it follows its task, else stays on top */
	bool has_colors;
	char error[256];
};

/* The columns of the task table: their sort keys, in order. */
static const struct column {
	const char *title;
	enum task_row_key key;
	int width;				/* 0: the rest of the line */
	enum align { LEFT, RIGHT, TAIL } align; /* TAIL: a long text keeps its end */
} columns[] = {
	/* 80 columns leave 24 for the type. */
	{ "ID", TASK_ROW_ID, 7, TAIL },
	{ "KIND", TASK_ROW_KIND, 5, LEFT },
	{ "STATE", TASK_ROW_STATE, 7, LEFT },
	{ "POLLS", TASK_ROW_POLLS, 5, RIGHT },
	{ "BUSY", TASK_ROW_BUSY, 5, RIGHT },
	{ "IDLE", TASK_ROW_IDLE, 5, RIGHT },
	{ "FUTURE", TASK_ROW_FUTURE_SIZE, 6, RIGHT },
	{ "LIVE", TASK_ROW_LIVE_BYTES, 6, RIGHT },
	{ "TYPE", TASK_ROW_TYPE, 0, TAIL },
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

static void on_signal(int sig)
{
	exit_signal = sig;
}

static void curses_end(void)
{
	if (curses_on) {
		endwin();
		curses_on = false;
	}
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	curses_end();
	fputs("memscoped top: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void top__tell_port(int port)
{
	const char *env = getenv(TOP_PORT_FD_ENV);
	int fd;

	if (!env)
		return;
	fd = atoi(env);
	unsetenv(TOP_PORT_FD_ENV);
	if (fd > 2) {
		dprintf(fd, "%d\n", port);
		close(fd);
	}
}

static void usage(FILE *f)
{
	fputs("usage: memscoped top [--connect=[ADDR:]PORT]\n"
	      "       memscoped top -p PID [DAEMON OPTIONS...]\n"
	      "Shows a running memscoped's tasks live (default --connect=" DEFAULT_CONNECT "),\n"
	      "or attaches to PID itself with the daemon's options (see memscoped --help).\n"
	      "Keys: q quit, up/down move, Enter details, t task types, / filter by type,\n"
	      "      < > sort column, r reverse, n next process.\n",
	      f);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct top *t = ctx;
	size_t add = size * n, cap;
	char *grown;

	if (t->len + add + 1 > ANSWER_MAX)
		return 0;
	if (t->len + add + 1 > t->cap) {
		cap = (t->len + add + 1) * 2;
		grown = realloc(t->buf, cap);
		if (!grown)
			return 0;
		t->buf = grown;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, add);
	t->len += add;
	t->buf[t->len] = '\0';
	return add;
}

/* GETs path into t->buf; 0, or -EIO with the reason in t->error. */
static int fetch(struct top *t, const char *path)
{
	char url[1024];
	long status = 0;
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", t->base, path);
	t->len = 0;
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
	rc = curl_easy_perform(t->curl);
	if (rc != CURLE_OK) {
		snprintf(t->error, sizeof(t->error), "%s", curl_easy_strerror(rc));
		return -EIO;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		struct json_object *o = t->buf ? json_tokener_parse(t->buf) : NULL, *e;
		const char *msg = o && json_object_object_get_ex(o, "error", &e) ?
					  json_object_get_string(e) :
					  "not the memscoped API";

		snprintf(t->error, sizeof(t->error), "HTTP %ld: %s", status, msg);
		json_object_put(o);
		return -EIO;
	}
	if (!t->buf) {
		snprintf(t->error, sizeof(t->error), "an empty answer");
		return -EIO;
	}
	return 0;
}

static int refresh_model(struct top *t)
{
	static const char *const passes[] = { "&suspects=1", "" };
	char path[512], *filter = NULL, err[128];
	struct top_model *m = t->model;
	size_t i;
	int ret;

	if (fetch(t, "/api/v1/processes"))
		return -EIO;
	top_model__clear_rows(m);
	if (top_model__set_processes(m, t->buf, t->pid, err, sizeof(err))) {
		snprintf(t->error, sizeof(t->error), "%s", err);
		return -EIO;
	}
	if (!t->pid || !top_model__process(m, t->pid))
		t->pid = m->nprocs ? m->procs[0].pid : 0;
	if (!t->pid)
		return top_model__view(m, &t->order, t->filter);
	/* Suspects first: all of them (up to the limit), then the rest by the sort key. */
	if (t->filter[0])
		filter = curl_easy_escape(t->curl, t->filter, 0);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path),
			 "/api/v1/tasks?pid=%u&limit=1000&sort=%s&order=%s%s%s%s", t->pid,
			 task_row_key__name(t->order.key), t->order.descending ? "desc" : "asc",
			 passes[i], filter ? "&type=" : "", filter ? filter : "");
		ret = fetch(t, path);
		if (!ret && top_model__add_tasks(m, t->buf, err, sizeof(err))) {
			snprintf(t->error, sizeof(t->error), "%s", err);
			ret = -EIO;
		}
		if (ret)
			break;
	}
	curl_free(filter);
	return ret ? ret : top_model__view(m, &t->order, t->filter);
}

static void put_aligned(int y, int x, int width, const char *s, enum align align)
{
	int n = (int)strlen(s);

	if (width <= 0)
		return;
	if (n > width) {
		/* Long type names: their end says more than their crate. */
		if (align == TAIL && width > 1) {
			mvaddstr(y, x, "~");
			mvaddnstr(y, x + 1, s + n - (width - 1), width - 1);
			return;
		}
		n = width;
	}
	mvaddnstr(y, align == RIGHT ? x + width - n : x, s, n);
}

static void put(int y, int x, int width, const char *s, bool right)
{
	put_aligned(y, x, width, s, right ? RIGHT : LEFT);
}

/* The table's short state names (the details view spells them out). */
static const char *short_state(const char *state)
{
	if (!strcmp(state, "completed"))
		return "done";
	if (!strcmp(state, "cancelled"))
		return "cancel";
	if (!strcmp(state, "deallocated"))
		return "freed";
	return state;
}

/* A type's cell: an async fn's future is its fn, without the closure suffix. */
static void type_cell(const char *type, char *buf, size_t len)
{
	static const char *const suffixes[] = { "::{closure#0}", "::{{closure}}",
						"::{async_fn_env#0}" };
	size_t n = strlen(type), i, k;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		k = strlen(suffixes[i]);
		if (n > k && !strcmp(type + n - k, suffixes[i])) {
			n -= k;
			break;
		}
	}
	snprintf(buf, len, "%.*s", (int)n, type);
}

static void cell(const struct task_row *r, enum task_row_key key, char *buf, size_t len)
{
	switch (key) {
	case TASK_ROW_ID:
		/* tokio ids as numbers, as tokio-console shows them. */
		snprintf(buf, len, "%s", strncmp(r->id, "tokio:", 6) ? r->id : r->id + 6);
		break;
	case TASK_ROW_KIND:
		snprintf(buf, len, "%s", strcmp(r->kind, "blocking") ? r->kind : "block");
		break;
	case TASK_ROW_STATE:
		snprintf(buf, len, "%s", short_state(r->state));
		break;
	case TASK_ROW_POLLS:
		snprintf(buf, len, "%llu", (unsigned long long)r->polls);
		break;
	case TASK_ROW_BUSY:
		top__format_seconds(r->busy_seconds, buf, len);
		break;
	case TASK_ROW_IDLE:
		top__format_seconds(r->idle_seconds, buf, len);
		break;
	case TASK_ROW_FUTURE_SIZE:
		top__format_bytes(r->future_size_bytes, buf, len);
		break;
	case TASK_ROW_LIVE_BYTES:
		top__format_bytes(r->live_bytes, buf, len);
		break;
	default:
		type_cell(r->type, buf, len);
		break;
	}
}

static void draw_header(struct top *t, int cols)
{
	const struct top_process *p = top_model__process(t->model, t->pid);
	char line[512], live[16], untasked[16];

	attron(A_REVERSE);
	mvhline(0, 0, ' ', cols);
	snprintf(line, sizeof(line), " memscoped top  %s  pid %u (%s)%s  up %.0fs", t->base + 7,
		 t->pid, p ? p->comm : "?", p && p->exited ? " exited" : "",
		 t->model->duration_seconds);
	if (t->model->nprocs > 1)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "  process %zu of %zu",
			 (size_t)(p ? p - t->model->procs + 1 : 0), t->model->nprocs);
	put(0, 0, cols, line, false);
	attroff(A_REVERSE);
	top__format_bytes(p ? p->live_bytes : 0, live, sizeof(live));
	top__format_bytes(p ? p->untasked_live_bytes : 0, untasked, sizeof(untasked));
	snprintf(line, sizeof(line),
		 " heap %s  untasked %s  tasks %llu/%llu  suspects %llu  events %llu  lost %llu",
		 live, untasked, (unsigned long long)(p ? p->tasks_live : 0),
		 (unsigned long long)(p ? p->tasks_spawned : 0),
		 (unsigned long long)(p ? p->suspects : 0),
		 (unsigned long long)t->model->events_received,
		 (unsigned long long)t->model->events_lost);
	if (p && p->suspects)
		attron(A_BOLD);
	put(1, 0, cols, line, false);
	attroff(A_BOLD);
	snprintf(
		line, sizeof(line), " %s  sort: %s %s  filter: %s  rows %zu/%llu",
		t->view == VIEW_TYPES ? "task types" : "tasks", task_row_key__name(t->order.key),
		t->order.descending ? "desc" : "asc", t->filter[0] ? t->filter : "(none)",
		t->view == VIEW_TYPES ? t->model->ntype_view : t->model->nview,
		(unsigned long long)(t->view == VIEW_TYPES ? t->model->ntypes : t->model->matched));
	put(2, 0, cols, line, false);
}

static void draw_footer(int rows, int cols, const char *text)
{
	attron(A_REVERSE);
	mvhline(rows - 1, 0, ' ', cols);
	put(rows - 1, 0, cols, text, false);
	attroff(A_REVERSE);
}

/* After a refresh: the selection stays on the same task, wherever it sorts now. */
static void follow_selection(struct top *t)
{
	size_t i;

	if (t->view == VIEW_TYPES || !t->selected_id[0] || !t->moved) {
		if (!t->moved)
			t->selected = 0;
		return;
	}
	for (i = 0; i < t->model->nview; i++)
		if (!strcmp(t->model->view[i]->id, t->selected_id)) {
			t->selected = i;
			return;
		}
}

static void clamp_selection(struct top *t, size_t n)
{
	if (t->selected >= n)
		t->selected = n ? n - 1 : 0;
}

static void scroll_to(struct top *t, int body)
{
	if (body < 1)
		body = 1;
	if (t->selected < t->first)
		t->first = t->selected;
	if (t->selected >= t->first + (size_t)body)
		t->first = t->selected - (size_t)body + 1;
}

static void draw_tasks(struct top *t, int rows, int cols)
{
	int y, x, w, body = rows - 5;
	char buf[256];
	size_t i, c;

	clamp_selection(t, t->model->nview);
	scroll_to(t, body);
	attron(A_BOLD | A_UNDERLINE);
	mvhline(3, 0, ' ', cols);
	/* The sort column's title stands out; its direction is on the line above. */
	for (c = 0, x = 2; c < NCOLUMNS && x < cols; c++) {
		w = columns[c].width ? columns[c].width : cols - x;
		if (columns[c].key == t->order.key)
			attron(A_REVERSE);
		put_aligned(3, x, w < cols - x ? w : cols - x, columns[c].title,
			    columns[c].align == RIGHT ? RIGHT : LEFT);
		attroff(A_REVERSE);
		x += w + 1;
	}
	attroff(A_BOLD | A_UNDERLINE);
	for (y = 0; y < body && t->first + (size_t)y < t->model->nview; y++) {
		const struct task_row *r = t->model->view[t->first + (size_t)y];
		int attr = 0;

		i = t->first + (size_t)y;
		if (r->suspect)
			attr |= A_BOLD | (t->has_colors ? COLOR_PAIR(1) : 0);
		if (i == t->selected)
			attr |= A_REVERSE;
		attron(attr);
		mvhline(4 + y, 0, ' ', cols);
		put(4 + y, 0, 1, r->suspect ? "!" : " ", false);
		for (c = 0, x = 2; c < NCOLUMNS && x < cols; c++) {
			w = columns[c].width ? columns[c].width : cols - x;
			cell(r, columns[c].key, buf, sizeof(buf));
			put_aligned(4 + y, x, w < cols - x ? w : cols - x, buf, columns[c].align);
			x += w + 1;
		}
		attroff(attr);
	}
	if (t->selected < t->model->nview)
		snprintf(t->selected_id, sizeof(t->selected_id), "%s",
			 t->model->view[t->selected]->id);
	if (!t->model->nview)
		put(5, 2, cols - 2,
		    t->filter[0] ? "no task's type matches the filter" : "no tasks yet", false);
	draw_footer(rows, cols,
		    " q quit  Enter details  t types  / filter  < > sort  r reverse  "
		    "n next pid");
}

static void draw_types(struct top *t, int rows, int cols)
{
	int y, body = rows - 5;
	char line[512], fut[16], live[16], name[1024];

	clamp_selection(t, t->model->ntype_view);
	scroll_to(t, body);
	attron(A_BOLD | A_UNDERLINE);
	mvhline(3, 0, ' ', cols);
	put(3, 0, cols, "     LIVE SPAWNED SUSPECTS FUTURE LIVE_BYTES    POLLS TYPE", false);
	attroff(A_BOLD | A_UNDERLINE);
	for (y = 0; y < body && t->first + (size_t)y < t->model->ntype_view; y++) {
		const struct top_type *ty = t->model->type_view[t->first + (size_t)y];
		int attr = ty->suspects ? A_BOLD | (t->has_colors ? COLOR_PAIR(1) : 0) : 0;

		if (t->first + (size_t)y == t->selected)
			attr |= A_REVERSE;
		top__format_bytes(ty->future_size_bytes, fut, sizeof(fut));
		top__format_bytes(ty->live_bytes, live, sizeof(live));
		snprintf(line, sizeof(line), "%s%8llu %7llu %8llu %6s %10s %8llu ",
			 ty->suspects ? "!" : " ", (unsigned long long)ty->live,
			 (unsigned long long)ty->spawned, (unsigned long long)ty->suspects, fut,
			 live, (unsigned long long)ty->polls);
		attron(attr);
		mvhline(4 + y, 0, ' ', cols);
		put(4 + y, 0, cols, line, false);
		type_cell(ty->name, name, sizeof(name));
		put_aligned(4 + y, (int)strlen(line), cols - (int)strlen(line), name, TAIL);
		attroff(attr);
	}
	draw_footer(rows, cols, " q quit  t tasks  / filter  < > sort  r reverse  n next pid");
}

static const struct task_row *selected_row(struct top *t)
{
	size_t i;

	for (i = 0; i < t->model->nview; i++)
		if (!strcmp(t->model->view[i]->id, t->selected_id))
			return t->model->view[i];
	return NULL;
}

static void draw_details(struct top *t, int rows, int cols)
{
	const struct task_row *r = selected_row(t);
	char line[1024], a[16], b[16];
	int y = 4;

	attron(A_BOLD | A_UNDERLINE);
	mvhline(3, 0, ' ', cols);
	put(3, 0, cols, " task details", false);
	attroff(A_BOLD | A_UNDERLINE);
	if (!r) {
		put(y, 2, cols - 2, "the task is gone (not in the latest answer)", false);
	} else {
#define LINE(...)                                           \
	do {                                                \
		snprintf(line, sizeof(line), __VA_ARGS__);  \
		if (y < rows - 1)                           \
			put(y++, 2, cols - 2, line, false); \
	} while (0)
		LINE("id          %s", r->id);
		LINE("type        %s", r->type);
		LINE("runtime     %s (%s)", r->runtime, r->kind);
		LINE("state       %s%s%s", r->state, r->ended[0] ? ", ended " : "", r->ended);
		if (r->suspect) {
			attron(A_BOLD | (t->has_colors ? COLOR_PAIR(1) : 0));
			LINE("suspect     %s", r->suspect_reason ? r->suspect_reason : "yes");
			attroff(A_BOLD | (t->has_colors ? COLOR_PAIR(1) : 0));
		}
		LINE("parent      %s", r->parent[0] ? r->parent : "none (spawned by no task)");
		if (r->age_known)
			LINE("age         %.3f s (spawned %.3f s after attach)", r->age_seconds,
			     r->spawned_at_seconds);
		else
			LINE("age         unknown: made before attach (found by %s)",
			     r->discovered);
		/* Without a type name the task type is named by its spawn site. */
		if (!strncmp(r->type, "spawned in ", 11))
			LINE("spawn site  %s", r->type + 11);
		else
			LINE("spawn site  not known (no stacks are taken; the type names the "
			     "future)");
		LINE("polls       %llu   busy %.3f s   idle %.3f s", (unsigned long long)r->polls,
		     r->busy_seconds, r->idle_seconds);
		LINE("future      %llu bytes (the task's state machine)",
		     (unsigned long long)r->future_size_bytes);
		LINE("live        %llu bytes in %llu allocations",
		     (unsigned long long)r->live_bytes, (unsigned long long)r->live_allocations);
		top__format_bytes(r->allocated_bytes_total, a, sizeof(a));
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->allocations_total);
		LINE("allocated   %llu bytes in %s allocations in all (%s)",
		     (unsigned long long)r->allocated_bytes_total, b, a);
		if (r->stack_bytes)
			LINE("stack       %llu bytes, lifetime %u on it, last on thread %u; running "
			     "%.3f s, suspended %.3f s",
			     (unsigned long long)r->stack_bytes, r->generation, r->last_tid,
			     r->running_seconds, r->suspended_seconds);
		LINE("address     %s   discovered %s   detached %s", r->address, r->discovered,
		     r->detached ? "yes" : "no");
#undef LINE
	}
	draw_footer(rows, cols, " q quit  Esc/Enter back");
}

static void draw(struct top *t)
{
	int rows, cols;

	getmaxyx(stdscr, rows, cols);
	erase();
	if (rows < 10 || cols < 60) {
		mvaddstr(0, 0, "memscoped top: the terminal is too small (at least 60x10)");
		refresh();
		return;
	}
	draw_header(t, cols);
	if (t->error[0]) {
		attron(A_BOLD);
		put(rows - 2, 0, cols, t->error, false);
		attroff(A_BOLD);
	}
	if (t->view == VIEW_DETAILS)
		draw_details(t, rows, cols);
	else if (t->view == VIEW_TYPES)
		draw_types(t, rows, cols);
	else
		draw_tasks(t, rows, cols);
	refresh();
}

/* Reads a filter on the last line; Enter applies, Esc keeps the old one. */
static void edit_filter(struct top *t)
{
	char text[FILTER_MAX];
	int rows, cols, ch;
	size_t n;

	snprintf(text, sizeof(text), "%s", t->filter);
	n = strlen(text);
	for (;;) {
		getmaxyx(stdscr, rows, cols);
		attron(A_REVERSE);
		mvhline(rows - 1, 0, ' ', cols);
		mvprintw(rows - 1, 0, " filter by type: %s", text);
		attroff(A_REVERSE);
		refresh();
		ch = getch();
		if (exit_signal)
			return;
		if (ch == ERR || ch == KEY_RESIZE)
			continue;
		if (ch == 27)
			return;
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
			break;
		if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n)
			text[--n] = '\0';
		else if (ch >= 32 && ch < 127 && n + 1 < sizeof(text)) {
			text[n++] = (char)ch;
			text[n] = '\0';
		}
	}
	snprintf(t->filter, sizeof(t->filter), "%s", text);
	t->selected = t->first = 0;
	t->moved = false;
	t->selected_id[0] = '\0';
}

static void set_sort(struct top *t, enum task_row_key key)
{
	t->order.key = key;
	t->order.descending = task_row_key__descending_by_default(key);
}

static size_t column_of(enum task_row_key key)
{
	size_t c;

	for (c = 0; c < NCOLUMNS; c++)
		if (columns[c].key == key)
			return c;
	return 0;
}

static void next_process(struct top *t)
{
	size_t i;

	for (i = 0; i < t->model->nprocs; i++)
		if (t->model->procs[i].pid == t->pid) {
			t->pid = t->model->procs[(i + 1) % t->model->nprocs].pid;
			break;
		}
	t->selected = t->first = 0;
	t->moved = false;
	t->selected_id[0] = '\0';
}

/* Handles one key; returns true when top should refetch now. */
static bool on_key(struct top *t, int ch, bool *ret_quit)
{
	size_t n = t->view == VIEW_TYPES ? t->model->ntype_view : t->model->nview;
	int rows = getmaxy(stdscr), page = rows > 6 ? rows - 6 : 1;

	if (ch == KEY_UP || ch == 'k' || ch == KEY_DOWN || ch == 'j' || ch == KEY_PPAGE ||
	    ch == KEY_NPAGE || ch == KEY_END)
		t->moved = true;
	else if (ch == KEY_HOME)
		t->moved = false;
	switch (ch) {
	case 'q':
	case 'Q':
		*ret_quit = true;
		return false;
	case KEY_UP:
	case 'k':
		if (t->selected)
			t->selected--;
		break;
	case KEY_DOWN:
	case 'j':
		if (t->selected + 1 < n)
			t->selected++;
		break;
	case KEY_PPAGE:
		t->selected = t->selected > (size_t)page ? t->selected - (size_t)page : 0;
		break;
	case KEY_NPAGE:
		t->selected = t->selected + (size_t)page < n ? t->selected + (size_t)page :
							       (n ? n - 1 : 0);
		break;
	case KEY_HOME:
		t->selected = 0;
		break;
	case KEY_END:
		t->selected = n ? n - 1 : 0;
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (t->view == VIEW_TASKS && n)
			t->view = VIEW_DETAILS;
		else if (t->view == VIEW_DETAILS)
			t->view = VIEW_TASKS;
		break;
	case 27:
	case KEY_BACKSPACE:
		if (t->view == VIEW_DETAILS)
			t->view = VIEW_TASKS;
		break;
	case 't':
	case '\t':
		t->view = t->view == VIEW_TYPES ? VIEW_TASKS : VIEW_TYPES;
		t->selected = t->first = 0;
		t->moved = false;
		if (t->view == VIEW_TYPES)
			t->selected_id[0] = '\0';
		break;
	case '/':
		edit_filter(t);
		return true;
	case '<':
	case KEY_LEFT:
		set_sort(t, columns[(column_of(t->order.key) + NCOLUMNS - 1) % NCOLUMNS].key);
		return true;
	case '>':
	case KEY_RIGHT:
		set_sort(t, columns[(column_of(t->order.key) + 1) % NCOLUMNS].key);
		return true;
	case 'r':
		t->order.descending = !t->order.descending;
		return true;
	case 'n':
		next_process(t);
		return true;
	default:
		break;
	}
	return false;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The daemon's last line on stderr, for a message that says why it stopped. */
static void daemon_last_line(const struct top *t, char *buf, size_t len)
{
	char line[512];
	FILE *f;

	buf[0] = '\0';
	if (!t->daemon_log[0] || !(f = fopen(t->daemon_log, "re")))
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

/* The daemon went away (or never answered right): a clear message, non-zero exit. */
static int lost(struct top *t)
{
	char last[512];
	int status;

	daemon_last_line(t, last, sizeof(last));
	/* The daemon top started ends by itself once every target exited (status 0). */
	if (t->daemon > 0 && waitpid(t->daemon, &status, WNOHANG) == t->daemon) {
		t->daemon = 0;
		if (WIFEXITED(status) && !WEXITSTATUS(status))
			fail("the daemon stopped: every target exited");
		else
			fail("the daemon failed (%s %d)%s%s",
			     WIFEXITED(status) ? "status" : "signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			     last[0] ? ": " : "", last);
	} else if (t->daemon > 0 && last[0]) {
		fail("lost the daemon at %s: %s (its last words: %s)", t->base, t->error, last);
	} else {
		fail("lost the daemon at %s: %s", t->base, t->error);
	}
	return 1;
}

static int run_ui(struct top *t)
{
	uint64_t next = 0;
	bool quit = false, again;
	int ch, failures = 0;

	while (!quit && !exit_signal) {
		if (now_ms() >= next) {
			if (refresh_model(t)) {
				/* One miss is forgiven: a daemon busy with a report answers late.
				 */
				if (++failures >= 2)
					return lost(t);
			} else {
				failures = 0;
				t->error[0] = '\0';
				follow_selection(t);
			}
			next = now_ms() + REFRESH_MS;
			draw(t);
		}
		ch = getch();
		if (ch == ERR)
			continue;
		if (ch == KEY_RESIZE) {
			draw(t);
			continue;
		}
		again = on_key(t, ch, &quit);
		if (again)
			next = 0;
		else if (!quit)
			draw(t);
	}
	curses_end();
	/* SIGINT is how many quit a terminal program: as q. The others say who stopped us. */
	return exit_signal && exit_signal != SIGINT ? 128 + exit_signal : 0;
}

static void stop_daemon(struct top *t)
{
	if (t->daemon <= 0)
		return;
	kill(t->daemon, SIGTERM);
	while (waitpid(t->daemon, NULL, 0) < 0 && errno == EINTR)
		;
	t->daemon = 0;
}

/* Starts `memscoped ARGS --listen 127.0.0.1:0`; fills t->base once it listens. */
static int start_daemon(struct top *t, int argc, char **argv)
{
	char **args, fdbuf[16], portbuf[16], last[512], self[PATH_MAX];
	struct pollfd pfd;
	int pipefd[2], logfd, i, status;
	uint64_t deadline;
	ssize_t n;
	size_t got = 0;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fail("cannot find its own program: %s", strerror(errno));
		return 1;
	}
	self[n] = '\0';
	snprintf(t->daemon_log, sizeof(t->daemon_log), "/tmp/memscoped-top-XXXXXX");
	logfd = mkstemp(t->daemon_log);
	args = calloc((size_t)argc + 4, sizeof(*args));
	if (logfd < 0 || !args || pipe2(pipefd, O_CLOEXEC)) {
		fail("cannot start the daemon: %s", strerror(errno));
		free(args);
		if (logfd >= 0)
			close(logfd);
		return 1;
	}
	args[0] = (char *)"memscoped";
	for (i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	args[argc + 1] = (char *)"--listen";
	args[argc + 2] = (char *)"127.0.0.1:0";
	fprintf(stderr, "memscoped top: attaching (daemon messages in %s)...\n", t->daemon_log);
	t->daemon = fork();
	if (t->daemon == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		int wfd = fcntl(pipefd[1], F_DUPFD, 10);

		/* Its own process group: the terminal's ^C is for top, which stops it. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		snprintf(fdbuf, sizeof(fdbuf), "%d", wfd);
		setenv(TOP_PORT_FD_ENV, fdbuf, 1);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(logfd, 2);
		execv(self, args);
		_exit(127);
	}
	free(args);
	close(logfd);
	close(pipefd[1]);
	if (t->daemon < 0) {
		fail("cannot start the daemon: %s", strerror(errno));
		close(pipefd[0]);
		return 1;
	}
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	deadline = now_ms() + DAEMON_START_TIMEOUT_MS;
	while (!exit_signal && now_ms() < deadline && !memchr(portbuf, '\n', got)) {
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		n = read(pipefd[0], portbuf + got, sizeof(portbuf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pipefd[0]);
	portbuf[got] = '\0';
	if (!memchr(portbuf, '\n', got)) {
		stop_daemon(t);
		daemon_last_line(t, last, sizeof(last));
		fail("the daemon did not start%s%s", last[0] ? ": " : "", last);
		return exit_signal ? 128 + exit_signal : 1;
	}
	/* The port comes before the attach: wait until it attached, or exited. */
	snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%d", atoi(portbuf));
	if (waitpid(t->daemon, &status, WNOHANG) == t->daemon) {
		t->daemon = 0;
		daemon_last_line(t, last, sizeof(last));
		fail("the daemon exited: %s", last);
		return 1;
	}
	return 0;
}

static int parse_connect(struct top *t, const char *spec)
{
	struct sockaddr_storage addr;
	socklen_t len;
	const char *colon;

	if (http_server__parse_addr(spec, &addr, &len)) {
		fail("invalid --connect '%s': expected [ADDR:]PORT", spec);
		return -EINVAL;
	}
	colon = strrchr(spec, ':');
	if (spec[0] == '[' || colon)
		snprintf(t->base, sizeof(t->base), "http://%s", spec);
	else
		snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%s", spec);
	return 0;
}

/* Waits for the first good answer (a daemon started here is attaching meanwhile). */
static int first_answer(struct top *t)
{
	uint64_t deadline = now_ms() + (t->daemon > 0 ? DAEMON_START_TIMEOUT_MS : 0);
	int status;

	for (;;) {
		if (!refresh_model(t))
			return 0;
		if (t->daemon > 0 && waitpid(t->daemon, &status, WNOHANG) == t->daemon) {
			t->daemon = 0;
			daemon_last_line(t, t->error, sizeof(t->error));
			fail("the daemon exited: %s", t->error);
			return 1;
		}
		if (exit_signal || now_ms() >= deadline)
			break;
		usleep(200000);
	}
	if (t->daemon > 0)
		fail("the daemon at %s did not answer: %s", t->base, t->error);
	else
		fail("cannot read %s/api/v1/processes: %s (is memscoped running with --listen?)",
		     t->base, t->error);
	return exit_signal ? 128 + exit_signal : 1;
}

static int open_terminal(struct top *t)
{
	const char *term = getenv("TERM");

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fail("needs a terminal: standard input and output must be a tty");
		return -ENOTTY;
	}
	if (!term || !*term || !newterm(term, stdout, stdin)) {
		fail("cannot drive the terminal (TERM=%s): set TERM to a terminal type ncurses "
		     "knows",
		     term ? term : "");
		return -ENOTTY;
	}
	curses_on = true;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	timeout(100);
	set_escdelay(25);
	if (has_colors() && start_color() == OK) {
		use_default_colors();
		init_pair(1, COLOR_RED, -1);
		t->has_colors = true;
	}
	return 0;
}

int top__main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct top t = { .daemon = 0 };
	const char *connect = NULL;
	int i, ret = 1, first_daemon_arg = argc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strncmp(argv[i], "--connect=", 10)) {
			connect = argv[i] + 10;
		} else if (!strcmp(argv[i], "--connect")) {
			if (i + 1 >= argc) {
				fail("--connect needs [ADDR:]PORT");
				return 2;
			}
			connect = argv[++i];
		} else {
			first_daemon_arg = i;
			break;
		}
	}
	if (connect && first_daemon_arg < argc) {
		fail("--connect watches a running daemon; '%s' is for attaching (top -p PID ...)",
		     argv[first_daemon_arg]);
		return 2;
	}
	if (!connect && first_daemon_arg == argc)
		connect = DEFAULT_CONNECT;
	for (i = first_daemon_arg; i < argc; i++)
		if (!strncmp(argv[i], "--listen", 8)) {
			fail("--listen is chosen by top -p; to watch a daemon that listens, use "
			     "--connect");
			return 2;
		}
	if (connect && parse_connect(&t, connect))
		return 2;

	/* Until the terminal is ours, a signal ends top (and the daemon it started) cleanly. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	atexit(curses_end);

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fail("needs a terminal: standard input and output must be a tty");
		return 1;
	}
	t.model = top_model__new();
	if (!t.model || curl_global_init(CURL_GLOBAL_DEFAULT) || !(t.curl = curl_easy_init())) {
		fail("out of memory");
		top_model__free(t.model);
		return 1;
	}
	curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(t.curl, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
	curl_easy_setopt(t.curl, CURLOPT_CONNECTTIMEOUT, 3L);
	curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t.curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(t.curl, CURLOPT_USERAGENT, "memscoped-top");
	set_sort(&t, TASK_ROW_LIVE_BYTES);
	t.order.suspects_first = true;

	if (!connect)
		ret = start_daemon(&t, argc - first_daemon_arg, argv + first_daemon_arg);
	else
		ret = 0;
	if (!ret)
		ret = first_answer(&t);
	if (!ret && !open_terminal(&t))
		ret = run_ui(&t);
	else if (!ret)
		ret = 1;
	curses_end();
	stop_daemon(&t);
	if (t.daemon_log[0])
		unlink(t.daemon_log);
	curl_easy_cleanup(t.curl);
	curl_global_cleanup();
	free(t.buf);
	top_model__free(t.model);
	return ret;
}
