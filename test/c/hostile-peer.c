/*
 * hostile-peer: a vchan server built on Debian's real libxenvchan.so.4.17 that
 * corrupts the shared control page, so a client under test can be shown never
 * to crash, hang, read out of bounds or spin on what a malicious peer writes.
 *
 * usage:
 *   hostile-peer <peer-domid> <xs-path> [options]
 *
 * options:
 *   --left-min N / --right-min N  ring sizes asked of libxenvchan (default 0: library default)
 *   --pre FIELD=VALUE   write a field right after server_init, before the client
 *                       connects (repeatable): tests the client's validation
 *   --after FIELD=VALUE write a field once the client has connected (repeatable)
 *   --attacks LIST      comma list of random attacks run every --interval-ms once
 *                       connected: backwards, far, orders, live, notify, grants,
 *                       random, storm; "all" (default) or "none"
 *   --interval-ms N     pause between attacks (default 20)
 *   --duration-ms N     how long to keep attacking after connect (default 2000)
 *   --timeout-ms N      how long to wait for a client (default 10000)
 *   --seed S            random seed (default 1), so a failing run can be replayed
 *
 * FIELD is one of left.cons left.prod right.cons right.prod left_order
 * right_order cli_live srv_live cli_notify srv_notify grant<i>; VALUE is a
 * number (0x.. allowed), stored truncated to the field's width.
 *
 * stdout: JSON lines: {"event":"listening"}, {"event":"open"} when the client
 * is live, one {"event":"scribble","attack":A,"field":F,"value":V} per write,
 * and last {"ok":true,"role":"hostile","connected":B,"scribbles":N,"ms":T}.
 * A client that never connects (it rejected the page) is not a failure here:
 * connected is false. Exit 0; 1 when libxenvchan itself fails; 2 bad arguments.
 * After every scribble it sends an event, so the client wakes up and looks.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xentoollog.h>
#include <libxenvchan.h>

static const char USAGE[] =
	"usage: hostile-peer <peer-domid> <xs-path> [--left-min N --right-min N] [--pre FIELD=VALUE]... "
	"[--after FIELD=VALUE]... [--attacks all|none|backwards,far,orders,live,notify,grants,random,storm] "
	"[--interval-ms N] [--duration-ms N] [--timeout-ms N] [--seed S]\n";

enum { A_BACKWARDS, A_FAR, A_ORDERS, A_LIVE, A_NOTIFY, A_GRANTS, A_RANDOM, A_STORM, A_COUNT };
static const char *const ATTACKS[A_COUNT] = { "backwards", "far", "orders", "live", "notify", "grants", "random", "storm" };

#define MAX_SETS 32
struct set { char field[32]; uint32_t value; };

static struct set pre[MAX_SETS], after[MAX_SETS];
static int npre, nafter;
static unsigned attacks = (1u << A_COUNT) - 1;
static long interval_ms = 20, duration_ms = 2000, timeout_ms = 10000;
static uint64_t rng = 1;
static uint64_t scribbles;

static void usage_error(const char *why)
{
	fprintf(stderr, "hostile-peer: %s\n%s", why, USAGE);
	exit(2);
}

static uint64_t next_rand(void)
{
	/* xorshift64: reproducible from --seed */
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long parse_num(const char *opt, const char *s)
{
	char *end;
	if (!s)
		usage_error("missing value");
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v > 0xffffffffull) {
		char m[128];
		snprintf(m, sizeof(m), "bad value for %s: %s", opt, s);
		usage_error(m);
	}
	return (long)v;
}

static int grant_limit(const struct libxenvchan *c)
{
	/* how many grant slots fit before the first in-page ring, or the page end */
	int lo = c->read.order, ro = c->write.order;
	int end = (lo == 10 || ro == 10) ? 1024 : (lo == 11 || ro == 11) ? 2048 : 4096;
	return (end - (int)sizeof(struct vchan_interface)) / 4;
}

/* Writes one control-page field; 0 on success, -1 for an unknown field. */
static int poke(struct libxenvchan *c, const char *field, uint32_t v)
{
	struct vchan_interface *r = c->ring;
	if (!strcmp(field, "left.cons"))
		r->left.cons = v;
	else if (!strcmp(field, "left.prod"))
		r->left.prod = v;
	else if (!strcmp(field, "right.cons"))
		r->right.cons = v;
	else if (!strcmp(field, "right.prod"))
		r->right.prod = v;
	else if (!strcmp(field, "left_order"))
		r->left_order = (uint16_t)v;
	else if (!strcmp(field, "right_order"))
		r->right_order = (uint16_t)v;
	else if (!strcmp(field, "cli_live"))
		r->cli_live = (uint8_t)v;
	else if (!strcmp(field, "srv_live"))
		r->srv_live = (uint8_t)v;
	else if (!strcmp(field, "cli_notify"))
		r->cli_notify = (uint8_t)v;
	else if (!strcmp(field, "srv_notify"))
		r->srv_notify = (uint8_t)v;
	else if (!strncmp(field, "grant", 5)) {
		char *end;
		long i = strtol(field + 5, &end, 10);
		if (end == field + 5 || *end || i < 0 || i >= grant_limit(c))
			return -1;
		r->grants[i] = v;
	} else
		return -1;
	__sync_synchronize();
	return 0;
}

static void report(const char *attack, const char *field, uint32_t v)
{
	printf("{\"event\":\"scribble\",\"attack\":\"%s\",\"field\":\"%s\",\"value\":%" PRIu32 "}\n", attack, field, v);
	fflush(stdout);
	scribbles++;
}

static void kick(struct libxenvchan *c)
{
	xenevtchn_notify(c->event, c->event_port);
}

static void apply_sets(struct libxenvchan *c, const struct set *s, int n, const char *label)
{
	for (int i = 0; i < n; i++) {
		if (poke(c, s[i].field, s[i].value))
			usage_error("unknown field (or grant index past the grant list)");
		report(label, s[i].field, s[i].value);
	}
	if (n)
		kick(c);
}

static void attack_once(struct libxenvchan *c)
{
	int enabled[A_COUNT], n = 0;
	for (int a = 0; a < A_COUNT; a++)
		if (attacks & (1u << a))
			enabled[n++] = a;
	if (!n)
		return;
	int a = enabled[next_rand() % (unsigned)n];
	struct vchan_interface *r = c->ring;
	uint32_t rsize = 1u << c->write.order, lsize = 1u << c->read.order;
	char field[32];
	uint32_t v;
	switch (a) {
	case A_BACKWARDS:
		/* our producer index (the client reads it) or our consumer index
		 * (the client's free-space sum) jumps back */
		if (next_rand() & 1) {
			snprintf(field, sizeof(field), "right.prod");
			v = r->right.prod - 1 - (uint32_t)(next_rand() % (2 * rsize));
		} else {
			snprintf(field, sizeof(field), "left.cons");
			v = r->left.cons - 1 - (uint32_t)(next_rand() % (2 * lsize));
		}
		poke(c, field, v);
		report(ATTACKS[a], field, v);
		break;
	case A_FAR:
		poke(c, "right.prod", v = r->right.cons + rsize + 1 + (uint32_t)(next_rand() % 0x7fffffffu));
		report(ATTACKS[a], "right.prod", v);
		break;
	case A_ORDERS: {
		static const uint32_t bad[] = { 0, 9, 21, 255, 10, 20, 0xffff };
		snprintf(field, sizeof(field), "%s", next_rand() & 1 ? "left_order" : "right_order");
		poke(c, field, v = bad[next_rand() % (sizeof(bad) / sizeof(bad[0]))]);
		report(ATTACKS[a], field, v);
		break;
	}
	case A_LIVE: {
		static const uint32_t bad[] = { 7, 0xff, 2, 3, 0x80 };
		snprintf(field, sizeof(field), "%s", next_rand() & 1 ? "srv_live" : "cli_live");
		poke(c, field, v = bad[next_rand() % (sizeof(bad) / sizeof(bad[0]))]);
		report(ATTACKS[a], field, v);
		break;
	}
	case A_NOTIFY:
		snprintf(field, sizeof(field), "%s", next_rand() & 1 ? "srv_notify" : "cli_notify");
		poke(c, field, v = next_rand() & 1 ? 0xff : (uint32_t)(next_rand() & 0xff));
		report(ATTACKS[a], field, v);
		break;
	case A_GRANTS:
		snprintf(field, sizeof(field), "grant%d", (int)(next_rand() % (unsigned)grant_limit(c)));
		poke(c, field, v = (uint32_t)next_rand());
		report(ATTACKS[a], field, v);
		break;
	case A_RANDOM: {
		/* any byte of the header and grant list */
		size_t len = sizeof(struct vchan_interface) + 4 * (size_t)grant_limit(c);
		size_t off = next_rand() % len;
		v = (uint32_t)(next_rand() & 0xff);
		((volatile uint8_t *)r)[off] = (uint8_t)v;
		snprintf(field, sizeof(field), "byte%zu", off);
		report(ATTACKS[a], field, v);
		break;
	}
	case A_STORM:
		/* a burst of events with nothing changed: spurious wake-ups */
		for (int i = 0; i < 1000; i++)
			kick(c);
		report(ATTACKS[a], "events", 1000);
		return;
	}
	kick(c);
}

static int known_field(const char *f)
{
	static const char *const names[] = { "left.cons", "left.prod", "right.cons", "right.prod", "left_order",
	                                     "right_order", "cli_live", "srv_live", "cli_notify", "srv_notify" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(f, names[i]))
			return 1;
	char *end;
	return !strncmp(f, "grant", 5) && strtol(f + 5, &end, 10) >= 0 && end != f + 5 && !*end;
}

static void add_set(struct set *s, int *n, const char *arg)
{
	const char *eq = strchr(arg ? arg : "", '=');
	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(s->field) || *n >= MAX_SETS)
		usage_error("expected FIELD=VALUE");
	memcpy(s[*n].field, arg, (size_t)(eq - arg));
	s[*n].field[eq - arg] = 0;
	if (!known_field(s[*n].field))
		usage_error("unknown field");
	s[*n].value = (uint32_t)parse_num(s[*n].field, eq + 1);
	(*n)++;
}

static void parse_attacks(const char *list)
{
	if (!strcmp(list, "all"))
		return;
	attacks = 0;
	if (!strcmp(list, "none"))
		return;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
		int found = 0;
		for (int a = 0; a < A_COUNT; a++)
			if (!strcmp(t, ATTACKS[a]))
				attacks |= 1u << a, found = 1;
		if (!found)
			usage_error("unknown attack");
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(USAGE, stdout);
		exit(0);
	}
	if (argc < 3)
		usage_error("need a peer domid and a xenstore path");
	int domid = (int)parse_num("peer-domid", argv[1]);
	const char *path = argv[2];
	size_t left_min = 0, right_min = 0;
	for (int i = 3; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage_error("option without a value");
		if (!strcmp(a, "--left-min"))
			left_min = (size_t)parse_num(a, v);
		else if (!strcmp(a, "--right-min"))
			right_min = (size_t)parse_num(a, v);
		else if (!strcmp(a, "--pre"))
			add_set(pre, &npre, v);
		else if (!strcmp(a, "--after"))
			add_set(after, &nafter, v);
		else if (!strcmp(a, "--attacks"))
			parse_attacks(v);
		else if (!strcmp(a, "--interval-ms"))
			interval_ms = parse_num(a, v);
		else if (!strcmp(a, "--duration-ms"))
			duration_ms = parse_num(a, v);
		else if (!strcmp(a, "--timeout-ms"))
			timeout_ms = parse_num(a, v);
		else if (!strcmp(a, "--seed"))
			rng = (uint64_t)parse_num(a, v) * 0x9E3779B97F4A7C15ull | 1;
		else
			usage_error("unknown option");
	}

	struct xentoollog_logger *log =
		(struct xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
	struct libxenvchan *c = libxenvchan_server_init(log, domid, path, left_min, right_min);
	if (!c) {
		printf("{\"ok\":false,\"role\":\"hostile\",\"error\":\"libxenvchan_server_init failed: %s\"}\n",
		       strerror(errno));
		return 1;
	}
	c->blocking = 0;
	printf("{\"event\":\"listening\",\"role\":\"hostile\",\"leftOrder\":%d,\"rightOrder\":%d}\n",
	       c->read.order, c->write.order);
	fflush(stdout);
	apply_sets(c, pre, npre, "pre");

	/* wait on the real cli_live byte: is_open() would be fooled by our own
	 * scribbles on srv_live/cli_live */
	int fd = libxenvchan_fd_for_select(c);
	double t0 = now_ms();
	int connected = 0;
	while (now_ms() - t0 < timeout_ms) {
		if (c->ring->cli_live == 1) {
			connected = 1;
			break;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10) > 0)
			libxenvchan_wait(c);
	}
	double t_open = now_ms();
	if (connected) {
		printf("{\"event\":\"open\",\"role\":\"hostile\"}\n");
		fflush(stdout);
		apply_sets(c, after, nafter, "after");
		double next = t_open + interval_ms;
		for (double t; (t = now_ms()) - t_open < duration_ms;) {
			if (t >= next) {
				attack_once(c);
				next = t + interval_ms;
				continue;
			}
			struct pollfd p = { .fd = fd, .events = POLLIN };
			/* acknowledge the client's events so its kicks never pile up */
			if (poll(&p, 1, (int)(next - t) + 1) > 0)
				libxenvchan_wait(c);
		}
	}
	printf("{\"ok\":true,\"role\":\"hostile\",\"connected\":%s,\"scribbles\":%" PRIu64 ",\"ms\":%.3f}\n",
	       connected ? "true" : "false", scribbles, now_ms() - t_open);
	fflush(stdout);
	libxenvchan_close(c);
	return 0;
}
