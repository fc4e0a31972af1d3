/*
 * hostile-peer: a vchan peer built on Debian's real libxenvchan.so.4.17 that
 * corrupts the shared control page, so a peer under test can be shown never
 * to crash, hang, read out of bounds or spin on what a malicious peer writes.
 * By default it is a hostile server (a client is under test); with --client
 * it is a hostile client (a server is under test).
 *
 * usage:
 *   hostile-peer [--client] <peer-domid> <xs-path> [options]
 *
 * options:
 *   --client            be the client: libxenvchan_client_init on the server's
 *                       <xs-path> (full path), retried until --timeout-ms while
 *                       the server's entries are missing; must come first
 *   --left-min N / --right-min N  ring sizes asked of libxenvchan (default 0:
 *                       library default; server only, the server chooses)
 *   --pre FIELD=VALUE   server: write a field right after server_init, before the
 *                       client connects (tests the client's validation); client:
 *                       right after client_init, before the server has seen us
 *                       (repeatable)
 *   --after FIELD=VALUE write a field once connected (repeatable): server, once
 *                       the client is live; client, once the server has shown it
 *                       saw us (its first bytes arrived) or --timeout-ms passed
 *   --attacks LIST      comma list of random attacks run every --interval-ms once
 *                       connected: backwards, far, orders, live, notify, grants,
 *                       random, storm; "all" (default) or "none"
 *   --interval-ms N     pause between attacks (default 20)
 *   --duration-ms N     how long to keep attacking after connect (default 2000)
 *   --timeout-ms N      how long to wait for the peer (default 10000)
 *   --seed S            random seed (default 1), so a failing run can be replayed
 *   --flood-us N        between attacks, notify without pause (N=0) or every N µs,
 *                       changing nothing: a flood of spurious events
 *
 * The attacks, with the roles mirrored: our own counters are the producer
 * index of the ring we write (server right.prod, client left.prod) and the
 * consumer index of the ring we read (server left.cons, client right.cons).
 *   backwards  one of our counters jumps back by 1..2*ring
 *   far        our producer index runs more than a ring past the peer's
 *              consumer, or our consumer index past the peer's producer
 *   orders     left_order/right_order become 0, 9, 21, 255, 10, 20, 0xffff
 *   live       srv_live or cli_live becomes 7, 0xff, 2, 3 or 0x80
 *   notify     srv_notify or cli_notify becomes 0xff or a random byte
 *   grants     a random slot of the grant list becomes a random ref
 *   random     a random byte anywhere in the header and grant list
 *   storm      1000 events with nothing changed
 *
 * FIELD is one of left.cons left.prod right.cons right.prod left_order
 * right_order cli_live srv_live cli_notify srv_notify grant<i>; VALUE is a
 * number (0x.. allowed), stored truncated to the field's width.
 *
 * Honest traffic (client only): until it first scribbles on a counter
 * (backwards, far, random, or a --pre/--after counter field) the client reads what the server writes and
 * writes 64 bytes of the pattern byte[n] = n % 251 every --interval-ms, so
 * the server's counters move and a server can check its data survived the
 * harmless attacks. The server mode sends and reads nothing.
 *
 * stdout: JSON lines: {"event":"listening"} (server), {"event":"open"} when
 * connected (client: as soon as client_init returned), then (client)
 * {"event":"spoke","serverSpoke":B} when the server's first bytes came (false:
 * --timeout-ms passed), one {"event":"scribble","attack":A,"field":F,
 * "value":V} per write, and last {"ok":true,"role":"hostile","as":"server"|
 * "client","connected":B,"scribbles":N,"ms":T} (the client adds "sent":N,
 * "received":N: honest bytes written and read). A client that never
 * connects to the hostile server (it rejected the page) is not a failure:
 * connected is false. Exit 0; 1 when libxenvchan itself fails (as a client:
 * no connection within --timeout-ms); 2 bad arguments. After every scribble
 * it sends an event, so the peer wakes up and looks.
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
	"usage: hostile-peer [--client] <peer-domid> <xs-path> [--left-min N --right-min N] [--pre FIELD=VALUE]... "
	"[--after FIELD=VALUE]... [--attacks all|none|backwards,far,orders,live,notify,grants,random,storm] "
	"[--interval-ms N] [--duration-ms N] [--timeout-ms N] [--seed S] [--flood-us N]\n";

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
static long flood_us = -1; /* < 0: no flood */
static uint64_t kicks;
static int client_mode;
/* client only: honest traffic until a counter is scribbled on */
static int frozen;
static uint64_t sent, received;

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
	kicks++;
}

static void apply_sets(struct libxenvchan *c, const struct set *s, int n, const char *label)
{
	for (int i = 0; i < n; i++) {
		/* our honest reads and writes would move a scribbled counter on */
		if (strstr(s[i].field, ".prod") || strstr(s[i].field, ".cons"))
			frozen = 1;
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
	/* the ring we produce into (server: right, client: left) and the one we consume */
	volatile struct ring_shared *out = c->write.shr, *in = c->read.shr;
	const char *out_prod = client_mode ? "left.prod" : "right.prod";
	const char *in_cons = client_mode ? "right.cons" : "left.cons";
	uint32_t wsize = 1u << c->write.order, rsize = 1u << c->read.order;
	char field[32];
	uint32_t v;
	switch (a) {
	case A_BACKWARDS:
		/* our producer index (the peer reads it) or our consumer index
		 * (the peer's free-space sum) jumps back */
		frozen = 1;
		if (next_rand() & 1) {
			snprintf(field, sizeof(field), "%s", out_prod);
			v = out->prod - 1 - (uint32_t)(next_rand() % (2 * wsize));
		} else {
			snprintf(field, sizeof(field), "%s", in_cons);
			v = in->cons - 1 - (uint32_t)(next_rand() % (2 * rsize));
		}
		poke(c, field, v);
		report(ATTACKS[a], field, v);
		break;
	case A_FAR:
		/* more than a ring ahead of the peer's consumer, or past what the peer produced */
		frozen = 1;
		if (next_rand() & 1) {
			snprintf(field, sizeof(field), "%s", out_prod);
			v = out->cons + wsize + 1 + (uint32_t)(next_rand() % 0x7fffffffu);
		} else {
			snprintf(field, sizeof(field), "%s", in_cons);
			v = in->prod + 1 + (uint32_t)(next_rand() % 0x7fffffffu);
		}
		poke(c, field, v);
		report(ATTACKS[a], field, v);
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
		frozen = 1;
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

/* client only: drain what the server wrote, and (every tick) write 64 pattern bytes */
static void honest_io(struct libxenvchan *c, int tick)
{
	if (!client_mode || frozen)
		return;
	uint8_t buf[4096];
	int n;
	while ((n = libxenvchan_read(c, buf, sizeof(buf))) > 0)
		received += (uint64_t)n;
	if (!tick)
		return;
	for (int i = 0; i < 64; i++)
		buf[i] = (uint8_t)((sent + (uint64_t)i) % 251);
	if ((n = libxenvchan_write(c, buf, 64)) > 0)
		sent += (uint64_t)n;
}

/* The attack loop, the same for both roles; acknowledges the peer's events meanwhile. */
static void attack_loop(struct libxenvchan *c, int fd, double t_open)
{
	apply_sets(c, after, nafter, "after");
	double next = t_open + interval_ms;
	for (double t; (t = now_ms()) - t_open < duration_ms;) {
		if (t >= next) {
			honest_io(c, 1);
			attack_once(c);
			next = t + interval_ms;
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (flood_us >= 0) {
			kick(c);
			if (flood_us > 0)
				usleep((useconds_t)flood_us);
		}
		/* acknowledge the peer's events so its kicks never pile up */
		if (poll(&p, 1, flood_us >= 0 ? 0 : (int)(next - t) + 1) > 0) {
			libxenvchan_wait(c);
			honest_io(c, 0);
		}
	}
}

static void finish(int connected, double t_open)
{
	printf("{\"ok\":true,\"role\":\"hostile\",\"as\":\"%s\",\"connected\":%s,\"scribbles\":%" PRIu64,
	       client_mode ? "client" : "server", connected ? "true" : "false", scribbles);
	if (client_mode)
		printf(",\"sent\":%" PRIu64 ",\"received\":%" PRIu64, sent, received);
	printf(",\"kicks\":%" PRIu64 ",\"ms\":%.3f}\n", kicks, now_ms() - t_open);
	fflush(stdout);
}

static int run_server(struct xentoollog_logger *log, int domid, const char *path, size_t left_min, size_t right_min)
{
	struct libxenvchan *c = libxenvchan_server_init(log, domid, path, left_min, right_min);
	if (!c) {
		printf("{\"ok\":false,\"role\":\"hostile\",\"as\":\"server\",\"error\":\"libxenvchan_server_init failed: %s\"}\n",
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
		attack_loop(c, fd, t_open);
	}
	finish(connected, t_open);
	libxenvchan_close(c);
	return 0;
}

static int run_client(struct xentoollog_logger *log, int domid, const char *path)
{
	/* client_init fails at once while the server's entries are missing: retry */
	double t0 = now_ms();
	struct libxenvchan *c;
	int err;
	while (!(c = libxenvchan_client_init(log, domid, path))) {
		err = errno;
		if (now_ms() - t0 >= timeout_ms) {
			printf("{\"ok\":false,\"role\":\"hostile\",\"as\":\"client\",\"error\":\"libxenvchan_client_init failed for %ld ms: %s\"}\n",
			       timeout_ms, strerror(err));
			return 1;
		}
		usleep(10000);
	}
	c->blocking = 0;
	printf("{\"event\":\"open\",\"role\":\"hostile\",\"as\":\"client\",\"leftOrder\":%d,\"rightOrder\":%d}\n",
	       c->write.order, c->read.order);
	fflush(stdout);
	apply_sets(c, pre, npre, "pre");

	/* The server sees us on its next look at cli_live; it shows it did by
	 * writing (the TS fixture writes on 'connect'). Until then a cli_live of 2
	 * would read as "not connected yet", so --after and the attacks wait. */
	int fd = libxenvchan_fd_for_select(c);
	uint32_t prod0 = c->read.shr->prod;
	int spoke = 0;
	while (now_ms() - t0 < timeout_ms) {
		if (c->read.shr->prod != prod0 || received) {
			spoke = 1;
			break;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10) > 0) {
			libxenvchan_wait(c);
			honest_io(c, 0);
		}
	}
	printf("{\"event\":\"spoke\",\"role\":\"hostile\",\"serverSpoke\":%s}\n", spoke ? "true" : "false");
	fflush(stdout);
	double t_open = now_ms();
	attack_loop(c, fd, t_open);
	finish(1, t_open);
	libxenvchan_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(USAGE, stdout);
		exit(0);
	}
	if (argc >= 2 && !strcmp(argv[1], "--client")) {
		client_mode = 1;
		argv++;
		argc--;
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
		if (!strcmp(a, "--left-min") || !strcmp(a, "--right-min")) {
			if (client_mode)
				usage_error("--left-min/--right-min are for the server: the server chooses the sizes");
			*(!strcmp(a, "--left-min") ? &left_min : &right_min) = (size_t)parse_num(a, v);
		} else if (!strcmp(a, "--pre"))
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
		else if (!strcmp(a, "--flood-us"))
			flood_us = parse_num(a, v);
		else if (!strcmp(a, "--seed"))
			rng = (uint64_t)parse_num(a, v) * 0x9E3779B97F4A7C15ull | 1;
		else
			usage_error("unknown option");
	}

	struct xentoollog_logger *log =
		(struct xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
	return client_mode ? run_client(log, domid, path) : run_server(log, domid, path, left_min, right_min);
}
