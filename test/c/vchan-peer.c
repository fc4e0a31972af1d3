/*
 * vchan-peer: our interop test peer, built on Debian's real libxenvchan.so.4.17
 * (linked dynamically; run with LD_LIBRARY_PATH pointing at the extracted libs).
 *
 * usage:
 *   vchan-peer server|client <peer-domid> <xs-path> [options]
 *   vchan-peer --dump-pattern <N> <seed> [--offset P] [--hash-only]
 *   vchan-peer --help
 *
 * options:
 *   --bytes N          bytes to stream each way (default 1048576)
 *   --left-min N       server: minimum left ring (client->server) size, bytes (default 0 = library default)
 *   --right-min N      server: minimum right ring (server->client) size, bytes (default 0)
 *   --api rw|sendrecv  libxenvchan_read/write (stream) or libxenvchan_send/recv
 *                      (all-or-nothing; both peers must use the same --chunk, which
 *                      is capped at the ring size) (default rw)
 *   --chunk N          largest single read/write/send/recv (default 65536)
 *   --seed-tx S        pattern seed of what we send (default: server 1, client 2)
 *   --seed-rx S        pattern seed we expect to receive (default: server 2, client 1)
 *   --timeout-ms N     client: keep retrying client_init until the server's xenstore
 *                      entries appear; server: wait this long for the client (default 10000)
 *   --stall-ms N       fail if no byte moves for this long during the transfer (default 10000)
 *   --mode M           both (send+receive at once, default) | send | recv |
 *                      echo (send back what arrives until the peer closes) |
 *                      hold (connect, discard input, report when the peer goes away)
 *   --report-open-ms N hold: repeat the {"event":"open"} line every N ms (default 0 = once)
 *   --linger-ms N      both/send/recv: after the result line, keep the channel open
 *                      this long before closing (a test can kill us with data in the ring)
 *
 * stdout: JSON lines. A server prints {"event":"listening",...} once its xenstore
 * entries are published; every role prints {"event":"open",...} once connected.
 * The last line is the result:
 *   {"ok":true,"role":"server","mode":"both","api":"rw","sent":N,"received":N,
 *    "txHash":"<fnv1a64 hex>","rxHash":"<fnv1a64 hex>","mbps":X,"seconds":S,
 *    "leftOrder":L,"rightOrder":R}
 *   {"ok":false,"role":...,"error":"...", "sent":N,"received":N[,"mismatchAt":P]}
 * mbps is MB/s (10^6 bytes) of the busier direction, timed from "open".
 * hold ends with {"event":"closed","ms":<ms since open>,"wallMs":<epoch ms>,
 *   "upMs":<ms since boot, the clock of /proc/uptime>,"viaEvent":true|false,
 *   "liveByte":0,"received":N} and exit 0.
 * exit status: 0 ok, 1 failure (with an ok:false line), 2 bad arguments.
 *
 * The peer runs non-blocking (ctrl->blocking = 0) and sleeps in poll() on
 * libxenvchan_fd_for_select, so both directions progress even when both rings
 * are full. The byte stream and the hash are defined in pattern.h.
 */
#include <errno.h>
#include <stdarg.h>
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

#include "pattern.h"

static const char USAGE[] =
	"usage: vchan-peer server|client <peer-domid> <xs-path> [--bytes N] [--left-min N --right-min N] "
	"[--api rw|sendrecv] [--chunk N] [--seed-tx S --seed-rx S] [--timeout-ms N] [--stall-ms N] "
	"[--mode both|send|recv|echo|hold] [--report-open-ms N] [--linger-ms N]\n"
	"       vchan-peer --dump-pattern <N> <seed> [--offset P] [--hash-only]\n";

static const char HELP[] =
	"Streams a keyed pattern both ways over a vchan (Debian's libxenvchan) and checks what arrives.\n"
	"  --bytes N          bytes each way (default 1048576)\n"
	"  --left-min N       server: minimum left (client->server) ring bytes (default 0: library default)\n"
	"  --right-min N      server: minimum right (server->client) ring bytes (default 0)\n"
	"  --api rw|sendrecv  libxenvchan_read/write, or all-or-nothing send/recv (same --chunk on both peers)\n"
	"  --chunk N          largest single call, capped at the ring size for sendrecv (default 65536)\n"
	"  --seed-tx S        seed of the stream we send (default: server 1, client 2)\n"
	"  --seed-rx S        seed of the stream we expect (default: server 2, client 1)\n"
	"  --timeout-ms N     client: retry client_init this long; server: wait this long for a client (default 10000)\n"
	"  --stall-ms N       fail when nothing moves for this long (default 10000)\n"
	"  --mode M           both | send | recv | echo (until the peer closes) | hold (report peer death)\n"
	"  --report-open-ms N hold: repeat the open line every N ms (default 0: once)\n"
	"  --linger-ms N      after the result line, keep the channel open N ms before closing\n"
	"  --dump-pattern N S print N pattern bytes of seed S as hex, then their FNV-1a-64 hash\n"
	"                     (--hash-only: just the hash)\n"
	"Output: JSON lines on stdout, the last one {\"ok\":true|false,...}. Exit 0 ok, 1 failed, 2 bad arguments.\n";

enum mode { M_BOTH, M_SEND, M_RECV, M_ECHO, M_HOLD };
static const char *const MODE_NAMES[] = { "both", "send", "recv", "echo", "hold" };

struct opts {
	int server;
	int domid;
	const char *path;
	uint64_t bytes;
	uint64_t left_min, right_min;
	int sendrecv;
	size_t chunk;
	uint32_t seed_tx, seed_rx;
	long timeout_ms, stall_ms, report_open_ms, linger_ms;
	enum mode mode;
};

static const char *role_name = "?";
static struct opts O;
static uint64_t sent, received, tx_hash = FNV64_BASIS, rx_hash = FNV64_BASIS;
static int left_order = -1, right_order = -1;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* /proc/uptime's clock, so a shell script can compare our stamps with its own */
static double up_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Error text goes into JSON: keep it to printable ASCII without quotes. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++)
		putchar(*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ? '?' : *s);
	putchar('"');
}

static void usage_error(const char *why)
{
	fprintf(stderr, "vchan-peer: %s\n%s", why, USAGE);
	exit(2);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static int64_t mismatch_at = -1;
static struct libxenvchan *the_ctrl;

static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"ok\":false,\"role\":\"%s\",\"error\":", role_name);
	json_str(msg);
	printf(",\"sent\":%" PRIu64 ",\"received\":%" PRIu64, sent, received);
	if (mismatch_at >= 0)
		printf(",\"mismatchAt\":%" PRId64, mismatch_at);
	printf(",\"leftOrder\":%d,\"rightOrder\":%d}\n", left_order, right_order);
	fflush(stdout);
	/* close so the peer learns at once, even where no unmap notification is armed */
	if (the_ctrl)
		libxenvchan_close(the_ctrl);
	exit(1);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end;
	if (!s)
		usage_error("missing value");
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-') {
		char m[128];
		snprintf(m, sizeof(m), "bad value for %s: %s", opt, s);
		usage_error(m);
	}
	return v;
}

static void dump_pattern(int argc, char **argv)
{
	if (argc < 4)
		usage_error("--dump-pattern needs <N> <seed>");
	uint64_t n = parse_u64("N", argv[2]);
	uint64_t seed = parse_u64("seed", argv[3]);
	uint64_t off = 0;
	int hex = 1;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--offset") && i + 1 < argc)
			off = parse_u64("--offset", argv[++i]);
		else if (!strcmp(argv[i], "--hash-only"))
			hex = 0;
		else
			usage_error("unknown argument after --dump-pattern");
	}
	if (seed > UINT32_MAX)
		usage_error("seed must fit in 32 bits");
	static uint8_t buf[1 << 16];
	uint64_t h = FNV64_BASIS;
	for (uint64_t done = 0; done < n;) {
		size_t len = n - done < sizeof(buf) ? (size_t)(n - done) : sizeof(buf);
		pattern_fill((uint32_t)seed, off + done, buf, len);
		h = fnv64_update(h, buf, len);
		for (size_t i = 0; hex && i < len; i++)
			printf("%02x", buf[i]);
		done += len;
	}
	printf(hex ? "\n%016" PRIx64 "\n" : "%016" PRIx64 "\n", h);
	exit(0);
}

static void parse_args(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(USAGE, stdout);
		fputs(HELP, stdout);
		exit(0);
	}
	if (argc >= 2 && !strcmp(argv[1], "--dump-pattern"))
		dump_pattern(argc, argv);
	if (argc < 4)
		usage_error("need a role, a peer domid and a xenstore path");
	if (!strcmp(argv[1], "server"))
		O.server = 1;
	else if (strcmp(argv[1], "client"))
		usage_error("role must be server or client");
	role_name = O.server ? "server" : "client";
	uint64_t d = parse_u64("peer-domid", argv[2]);
	if (d > 0x7fef)
		usage_error("peer-domid out of range");
	O.domid = (int)d;
	O.path = argv[3];
	O.bytes = 1 << 20;
	O.chunk = 65536;
	O.seed_tx = O.server ? 1 : 2;
	O.seed_rx = O.server ? 2 : 1;
	O.timeout_ms = 10000;
	O.stall_ms = 10000;
	O.mode = M_BOTH;
	for (int i = 4; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage_error("option without a value");
		i++;
		if (!strcmp(a, "--bytes"))
			O.bytes = parse_u64(a, v);
		else if (!strcmp(a, "--left-min"))
			O.left_min = parse_u64(a, v);
		else if (!strcmp(a, "--right-min"))
			O.right_min = parse_u64(a, v);
		else if (!strcmp(a, "--chunk"))
			O.chunk = parse_u64(a, v);
		else if (!strcmp(a, "--seed-tx"))
			O.seed_tx = (uint32_t)parse_u64(a, v);
		else if (!strcmp(a, "--seed-rx"))
			O.seed_rx = (uint32_t)parse_u64(a, v);
		else if (!strcmp(a, "--timeout-ms"))
			O.timeout_ms = (long)parse_u64(a, v);
		else if (!strcmp(a, "--stall-ms"))
			O.stall_ms = (long)parse_u64(a, v);
		else if (!strcmp(a, "--report-open-ms"))
			O.report_open_ms = (long)parse_u64(a, v);
		else if (!strcmp(a, "--linger-ms"))
			O.linger_ms = (long)parse_u64(a, v);
		else if (!strcmp(a, "--api")) {
			if (!strcmp(v, "rw"))
				O.sendrecv = 0;
			else if (!strcmp(v, "sendrecv"))
				O.sendrecv = 1;
			else
				usage_error("--api must be rw or sendrecv");
		} else if (!strcmp(a, "--mode")) {
			int found = 0;
			for (int m = 0; m <= M_HOLD; m++)
				if (!strcmp(v, MODE_NAMES[m])) {
					O.mode = (enum mode)m;
					found = 1;
				}
			if (!found)
				usage_error("--mode must be both, send, recv, echo or hold");
		} else {
			char m[128];
			snprintf(m, sizeof(m), "unknown option %s", a);
			usage_error(m);
		}
	}
	if (O.chunk == 0 || O.chunk > (1u << 24))
		usage_error("--chunk must be 1..16777216");
}

static void print_open(double t_open)
{
	printf("{\"event\":\"open\",\"role\":\"%s\",\"ms\":%.3f,\"leftOrder\":%d,\"rightOrder\":%d}\n",
	       role_name, now_ms() - t_open, left_order, right_order);
	fflush(stdout);
}

/* Sleeps until the event channel fires or timeout_ms passes; acknowledges the
 * event (libxenvchan_wait unmasks the port). Returns 1 on an event, 0 on timeout. */
static int wait_event(struct libxenvchan *ctrl, int fd, long timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, timeout_ms < 0 ? -1 : (int)(timeout_ms > 1000000 ? 1000000 : timeout_ms));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fail("poll: %s", strerror(errno));
	if (r == 0)
		return 0;
	/* readable, so this does not block */
	if (libxenvchan_wait(ctrl) < 0)
		fail("libxenvchan_wait: %s", strerror(errno));
	return 1;
}

static struct libxenvchan *connect_vchan(struct xentoollog_logger *log)
{
	struct libxenvchan *ctrl;
	double deadline = now_ms() + O.timeout_ms;
	if (O.server) {
		ctrl = libxenvchan_server_init(log, O.domid, O.path, O.left_min, O.right_min);
		if (!ctrl)
			fail("libxenvchan_server_init(domain %d, %s, %" PRIu64 ", %" PRIu64 ") failed: %s",
			     O.domid, O.path, O.left_min, O.right_min, strerror(errno));
	} else {
		for (;;) {
			ctrl = libxenvchan_client_init(log, O.domid, O.path);
			if (ctrl)
				break;
			int e = errno;
			if (now_ms() >= deadline)
				fail("libxenvchan_client_init(domain %d, %s) failed for %ld ms: %s",
				     O.domid, O.path, O.timeout_ms, strerror(e));
			usleep(20000);
		}
	}
	the_ctrl = ctrl;
	ctrl->blocking = 0;
	/* struct libxenvchan is public in 4.17; ring points at the shared
	 * vchan_interface whose orders the server wrote. */
	left_order = ctrl->ring->left_order;
	right_order = ctrl->ring->right_order;
	if (O.server) {
		printf("{\"event\":\"listening\",\"role\":\"server\",\"path\":");
		json_str(O.path);
		printf(",\"leftOrder\":%d,\"rightOrder\":%d}\n", left_order, right_order);
		fflush(stdout);
		int fd = libxenvchan_fd_for_select(ctrl);
		/* is_open is 2 until the client sets cli_live and kicks us */
		while (libxenvchan_is_open(ctrl) == 2) {
			double left = deadline - now_ms();
			if (left <= 0)
				fail("no client connected within %ld ms", O.timeout_ms);
			wait_event(ctrl, fd, (long)left + 1);
		}
	}
	return ctrl;
}

static void finish(double t_open)
{
	double secs = (now_ms() - t_open) / 1e3;
	uint64_t busier = sent > received ? sent : received;
	printf("{\"ok\":true,\"role\":\"%s\",\"mode\":\"%s\",\"api\":\"%s\",\"sent\":%" PRIu64
	       ",\"received\":%" PRIu64 ",\"txHash\":\"%016" PRIx64 "\",\"rxHash\":\"%016" PRIx64
	       "\",\"mbps\":%.2f,\"seconds\":%.6f,\"leftOrder\":%d,\"rightOrder\":%d}\n",
	       role_name, MODE_NAMES[O.mode], O.sendrecv ? "sendrecv" : "rw", sent, received, tx_hash,
	       rx_hash, secs > 0 ? busier / secs / 1e6 : 0.0, secs, left_order, right_order);
	fflush(stdout);
}

static void hold(struct libxenvchan *ctrl, double t_open)
{
	int fd = libxenvchan_fd_for_select(ctrl);
	static uint8_t sink[65536];
	double next_report = O.report_open_ms ? t_open + O.report_open_ms : 0;
	int via_event = 0;
	for (;;) {
		/* drain whatever arrives so a writing peer stays mid-transfer */
		int n;
		while ((n = libxenvchan_read(ctrl, sink, sizeof(sink))) > 0)
			received += (uint64_t)n;
		int live = libxenvchan_is_open(ctrl);
		if (live == 0) {
			const struct vchan_interface *r = ctrl->ring;
			int byte = O.server ? r->cli_live : r->srv_live;
			printf("{\"event\":\"closed\",\"role\":\"%s\",\"ms\":%.3f,\"wallMs\":%.3f,\"upMs\":%.3f,"
			       "\"viaEvent\":%s,\"liveByte\":%d,\"received\":%" PRIu64 "}\n",
			       role_name, now_ms() - t_open, wall_ms(), up_ms(), via_event ? "true" : "false", byte, received);
			fflush(stdout);
			libxenvchan_close(ctrl);
			exit(0);
		}
		long timeout = -1;
		if (next_report) {
			double t = now_ms();
			if (t >= next_report) {
				print_open(t_open);
				next_report += O.report_open_ms;
			}
			timeout = (long)(next_report - t) + 1;
		}
		via_event = wait_event(ctrl, fd, timeout);
	}
}

static void echo(struct libxenvchan *ctrl, double t_open)
{
	int fd = libxenvchan_fd_for_select(ctrl);
	uint8_t *buf = malloc(O.chunk);
	size_t have = 0, off = 0;
	size_t rcap = O.chunk, wcap = O.chunk;
	if (!buf)
		fail("out of memory");
	if (O.sendrecv) {
		/* all-or-nothing calls can never succeed beyond the ring size */
		size_t rs = (size_t)1 << ctrl->read.order, ws = (size_t)1 << ctrl->write.order;
		if (rcap > rs)
			rcap = rs;
		if (rcap > ws)
			rcap = ws;
		wcap = rcap;
	}
	for (;;) {
		int progress = 0, n;
		if (have == off) {
			have = off = 0;
			n = O.sendrecv ? libxenvchan_recv(ctrl, buf, rcap) : libxenvchan_read(ctrl, buf, rcap);
			if (n > 0) {
				rx_hash = fnv64_update(rx_hash, buf, (size_t)n);
				received += (uint64_t)n;
				have = (size_t)n;
				progress = 1;
			} else if (n < 0 && libxenvchan_data_ready(ctrl) == 0) {
				break; /* peer closed and drained */
			}
		}
		if (off < have) {
			size_t len = have - off < wcap ? have - off : wcap;
			n = O.sendrecv ? libxenvchan_send(ctrl, buf + off, len) : libxenvchan_write(ctrl, buf + off, len);
			if (n < 0)
				break; /* peer gone: nothing left to echo to */
			if (n > 0) {
				tx_hash = fnv64_update(tx_hash, buf + off, (size_t)n);
				sent += (uint64_t)n;
				off += (size_t)n;
				progress = 1;
			}
		}
		if (progress)
			continue;
		if (!libxenvchan_is_open(ctrl) && libxenvchan_data_ready(ctrl) == 0)
			break;
		/* echo has no byte count to reach: it waits for the peer to close */
		wait_event(ctrl, fd, -1);
	}
	finish(t_open);
	libxenvchan_close(ctrl);
	exit(0);
}

static void transfer(struct libxenvchan *ctrl, double t_open)
{
	int fd = libxenvchan_fd_for_select(ctrl);
	int do_tx = O.mode == M_BOTH || O.mode == M_SEND;
	int do_rx = O.mode == M_BOTH || O.mode == M_RECV;
	uint64_t tx_total = do_tx ? O.bytes : 0, rx_total = do_rx ? O.bytes : 0;
	size_t wcap = O.chunk, rcap = O.chunk;
	if (O.sendrecv) {
		size_t ws = (size_t)1 << ctrl->write.order, rs = (size_t)1 << ctrl->read.order;
		if (wcap > ws)
			wcap = ws;
		if (rcap > rs)
			rcap = rs;
	}
	uint8_t *txbuf = malloc(wcap), *rxbuf = malloc(rcap), *expect = malloc(rcap);
	if (!txbuf || !rxbuf || !expect)
		fail("out of memory");
	size_t tx_have = 0, tx_off = 0; /* txbuf holds stream bytes [sent - tx_off, sent - tx_off + tx_have) */
	double last = now_ms();

	while (sent < tx_total || received < rx_total) {
		int progress = 0, n;
		if (sent < tx_total) {
			if (tx_off == tx_have) {
				uint64_t left = tx_total - sent;
				tx_have = left < wcap ? (size_t)left : wcap;
				tx_off = 0;
				pattern_fill(O.seed_tx, sent, txbuf, tx_have);
			}
			size_t len = tx_have - tx_off;
			n = O.sendrecv ? libxenvchan_send(ctrl, txbuf + tx_off, len)
			               : libxenvchan_write(ctrl, txbuf + tx_off, len);
			if (n < 0)
				fail("peer closed while sending (%s after %" PRIu64 " of %" PRIu64 " bytes)",
				     O.sendrecv ? "libxenvchan_send" : "libxenvchan_write", sent, tx_total);
			if (n > 0) {
				tx_hash = fnv64_update(tx_hash, txbuf + tx_off, (size_t)n);
				tx_off += (size_t)n;
				sent += (uint64_t)n;
				progress = 1;
			}
		}
		if (received < rx_total) {
			uint64_t left = rx_total - received;
			size_t len = left < rcap ? (size_t)left : rcap;
			n = O.sendrecv ? libxenvchan_recv(ctrl, rxbuf, len) : libxenvchan_read(ctrl, rxbuf, len);
			if (n < 0) {
				/* prod may have moved between the library's two reads */
				if (libxenvchan_data_ready(ctrl) > 0)
					continue;
				fail("peer closed after %" PRIu64 " of %" PRIu64 " bytes received", received, rx_total);
			}
			if (n > 0) {
				pattern_fill(O.seed_rx, received, expect, (size_t)n);
				if (memcmp(expect, rxbuf, (size_t)n)) {
					size_t i = 0;
					while (expect[i] == rxbuf[i])
						i++;
					mismatch_at = (int64_t)(received + i);
					fail("pattern mismatch at byte %" PRIu64 ": expected 0x%02x, got 0x%02x",
					     received + i, expect[i], rxbuf[i]);
				}
				rx_hash = fnv64_update(rx_hash, rxbuf, (size_t)n);
				received += (uint64_t)n;
				progress = 1;
			}
		}
		double t = now_ms();
		if (progress) {
			last = t;
			continue;
		}
		if (!libxenvchan_is_open(ctrl) && libxenvchan_data_ready(ctrl) == 0) {
			if (received < rx_total)
				fail("peer closed after %" PRIu64 " of %" PRIu64 " bytes received", received, rx_total);
			fail("peer closed after %" PRIu64 " of %" PRIu64 " bytes sent", sent, tx_total);
		}
		if (t - last >= O.stall_ms)
			fail("stalled: no progress for %ld ms (data_ready %d, buffer_space %d)", O.stall_ms,
			     libxenvchan_data_ready(ctrl), libxenvchan_buffer_space(ctrl));
		wait_event(ctrl, fd, (long)(O.stall_ms - (t - last)) + 1);
	}
	finish(t_open);
	if (O.linger_ms)
		usleep((useconds_t)O.linger_ms * 1000);
	libxenvchan_close(ctrl);
	exit(0);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv);
	struct xentoollog_logger *log =
		(struct xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
	struct libxenvchan *ctrl = connect_vchan(log);
	double t_open = now_ms();
	print_open(t_open);
	switch (O.mode) {
	case M_HOLD:
		hold(ctrl, t_open);
		break;
	case M_ECHO:
		echo(ctrl, t_open);
		break;
	default:
		transfer(ctrl, t_open);
	}
	return 0;
}
