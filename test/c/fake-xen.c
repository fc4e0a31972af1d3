/*
 * fake-xen: a tiny LD_PRELOAD stand-in for libxengnttab, libxenevtchn and
 * libxenstore, just enough for the real libxenvchan.so.4.17 to run two test
 * peers on a machine without Xen. It exists to test our own C peers (their
 * loops, options and JSON) before the real emulator (sim/) is available; it is
 * not an emulator: no permissions, no unmap notification on crash, no limits.
 *
 * Environment: FAKE_XEN_DIR (shared state directory, required) and
 * FAKE_XEN_DOMID (this process's domain id, default 0).
 *   grants:  DIR/gnt-<ref>         one 4 KiB file per shared page
 *   events:  DIR/evt-<port>        a unix datagram socket per bound port
 *            DIR/peer-<port>       the remote port, written when bound
 *   store:   DIR/xs-<path with / as %>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#define PAGE 4096

static const char *dir(void)
{
	const char *d = getenv("FAKE_XEN_DIR");
	return d ? d : "/nonexistent-fake-xen";
}

static int domid(void)
{
	const char *d = getenv("FAKE_XEN_DOMID");
	return d ? atoi(d) : 0;
}

/* Claims the next free number for a name prefix by O_EXCL-creating a file. */
static int claim(const char *prefix, char *path, size_t n)
{
	for (int i = 1; i < 1 << 20; i++) {
		snprintf(path, n, "%s/%s-%d", dir(), prefix, i);
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd >= 0)
			return close(fd), i;
		if (errno != EEXIST)
			return -1;
	}
	errno = ENOSPC;
	return -1;
}

/* ---- grants ---- */

struct xengntdev_handle { int unused; };
static struct xengntdev_handle the_gnt;

xengntshr_handle *xengntshr_open(struct xentoollog_logger *l, unsigned f)
{
	(void)l, (void)f;
	struct stat st;
	if (stat(dir(), &st))
		return NULL;
	return (xengntshr_handle *)&the_gnt;
}
int xengntshr_close(xengntshr_handle *h) { (void)h; return 0; }
xengnttab_handle *xengnttab_open(struct xentoollog_logger *l, unsigned f)
{
	return (xengnttab_handle *)xengntshr_open(l, f);
}
int xengnttab_close(xengnttab_handle *h) { (void)h; return 0; }

static void *map_refs(uint32_t count, const uint32_t *refs)
{
	uint8_t *base = mmap(NULL, (size_t)count * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	for (uint32_t i = 0; i < count; i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/gnt-%u", dir(), refs[i]);
		int fd = open(p, O_RDWR);
		if (fd < 0 || mmap(base + (size_t)i * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			munmap(base, (size_t)count * PAGE);
			errno = e;
			return NULL;
		}
		close(fd);
	}
	return base;
}

void *xengntshr_share_pages(xengntshr_handle *h, uint32_t dom, int count, uint32_t *refs, int writable)
{
	(void)h, (void)dom, (void)writable;
	for (int i = 0; i < count; i++) {
		char p[512];
		int r = claim("gnt", p, sizeof(p));
		if (r < 0 || truncate(p, PAGE))
			return NULL;
		refs[i] = (uint32_t)r;
	}
	return map_refs((uint32_t)count, refs);
}

void *xengntshr_share_page_notify(xengntshr_handle *h, uint32_t dom, uint32_t *ref, int writable,
                                  uint32_t off, evtchn_port_t port)
{
	(void)off, (void)port;
	return xengntshr_share_pages(h, dom, 1, ref, writable);
}

int xengntshr_unshare(xengntshr_handle *h, void *addr, uint32_t count)
{
	(void)h;
	return munmap(addr, (size_t)count * PAGE);
}

void *xengnttab_map_domain_grant_refs(xengnttab_handle *h, uint32_t count, uint32_t dom, uint32_t *refs, int prot)
{
	(void)h, (void)dom, (void)prot;
	return map_refs(count, refs);
}

void *xengnttab_map_grant_ref_notify(xengnttab_handle *h, uint32_t dom, uint32_t ref, int prot,
                                     uint32_t off, evtchn_port_t port)
{
	(void)h, (void)dom, (void)prot, (void)off, (void)port;
	return map_refs(1, &ref);
}

int xengnttab_unmap(xengnttab_handle *h, void *addr, uint32_t count)
{
	(void)h;
	return munmap(addr, (size_t)count * PAGE);
}

/* ---- event channels: one port per handle is all libxenvchan needs ---- */

struct xenevtchn_handle { int fd; int port; };

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *l, unsigned f)
{
	(void)l, (void)f;
	struct stat st;
	if (stat(dir(), &st))
		return NULL;
	xenevtchn_handle *h = calloc(1, sizeof(*h));
	h->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return h;
}

int xenevtchn_close(xenevtchn_handle *h)
{
	if (h) {
		close(h->fd);
		free(h);
	}
	return 0;
}

int xenevtchn_fd(xenevtchn_handle *h) { return h->fd; }

static int bind_port(xenevtchn_handle *h)
{
	char p[512];
	int port = claim("evt", p, sizeof(p));
	if (port < 0)
		return -1;
	unlink(p);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(p) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(a.sun_path, p, strlen(p) + 1);
	if (bind(h->fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	h->port = port;
	return port;
}

static void write_int(const char *name, int key, int value)
{
	char p[512], v[32];
	snprintf(p, sizeof(p), "%s/%s-%d", dir(), name, key);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		int n = snprintf(v, sizeof(v), "%d", value);
		if (write(fd, v, (size_t)n) != n)
			perror("fake-xen: write");
		close(fd);
	}
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *h, uint32_t dom)
{
	(void)dom;
	return bind_port(h);
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *h, uint32_t dom, evtchn_port_t remote)
{
	(void)dom;
	int port = bind_port(h);
	if (port < 0)
		return -1;
	write_int("peer", (int)remote, port);
	write_int("peer", port, (int)remote);
	return port;
}

int xenevtchn_notify(xenevtchn_handle *h, evtchn_port_t port)
{
	char p[512], v[32] = { 0 };
	snprintf(p, sizeof(p), "%s/peer-%u", dir(), port);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return 0; /* nobody bound yet: the event is lost, as on Xen */
	ssize_t n = read(fd, v, sizeof(v) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	int remote = atoi(v);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/evt-%d", dir(), remote);
	uint32_t msg = (uint32_t)remote;
	/* a full queue means the peer already has wake-ups pending */
	sendto(h->fd, &msg, sizeof(msg), MSG_DONTWAIT, (struct sockaddr *)&a, sizeof(a));
	return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *h)
{
	uint32_t msg;
	if (recv(h->fd, &msg, sizeof(msg), 0) != sizeof(msg))
		return -1;
	/* collapse a burst into one wake-up, like a masked port */
	while (recv(h->fd, &msg, sizeof(msg), MSG_DONTWAIT) == sizeof(msg))
		;
	return h->port;
}

int xenevtchn_unmask(xenevtchn_handle *h, evtchn_port_t port) { (void)h, (void)port; return 0; }
int xenevtchn_unbind(xenevtchn_handle *h, evtchn_port_t port) { (void)h, (void)port; return 0; }

/* ---- xenstore: flat files ---- */

struct xs_handle { int unused; };
static struct xs_handle the_xs;

static void xs_file(const char *path, char *out, size_t n)
{
	char full[256];
	if (path[0] == '/')
		snprintf(full, sizeof(full), "%s", path);
	else
		snprintf(full, sizeof(full), "/local/domain/%d/%s", domid(), path);
	for (char *c = full; *c; c++)
		if (*c == '/')
			*c = '%';
	snprintf(out, n, "%s/xs-%s", dir(), full);
}

struct xs_handle *xs_open(unsigned long flags)
{
	(void)flags;
	struct stat st;
	return stat(dir(), &st) ? NULL : &the_xs;
}
void xs_close(struct xs_handle *h) { (void)h; }
xs_transaction_t xs_transaction_start(struct xs_handle *h) { (void)h; return 1; }
bool xs_transaction_end(struct xs_handle *h, xs_transaction_t t, bool abort) { (void)h, (void)t, (void)abort; return true; }
bool xs_set_permissions(struct xs_handle *h, xs_transaction_t t, const char *path, struct xs_permissions *p, unsigned int n)
{
	(void)h, (void)t, (void)path, (void)p, (void)n;
	return true;
}

bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *path, const void *data, unsigned int len)
{
	(void)h, (void)t;
	char p[512], tmp[560];
	xs_file(path, p, sizeof(p));
	snprintf(tmp, sizeof(tmp), "%s.%d", p, getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return false;
	bool ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	/* rename so a polling client never reads half a value */
	return ok && rename(tmp, p) == 0;
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len)
{
	(void)h, (void)t;
	char p[512];
	if (!strcmp(path, "domid")) {
		/* the server asks for its own id to set permissions */
		char *v = malloc(16);
		int n = snprintf(v, 16, "%d", domid());
		if (len)
			*len = (unsigned)n;
		return v;
	}
	xs_file(path, p, sizeof(p));
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	char *buf = calloc(1, 4097);
	ssize_t n = read(fd, buf, 4096);
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = (unsigned)n;
	return buf;
}

bool xs_rm(struct xs_handle *h, xs_transaction_t t, const char *path)
{
	(void)h, (void)t;
	/* libxenvchan removes the channel directory; drop its two entries */
	static const char *const leaves[] = { "ring-ref", "event-channel" };
	for (int i = 0; i < 2; i++) {
		char sub[300], p[512];
		snprintf(sub, sizeof(sub), "%s/%s", path, leaves[i]);
		xs_file(sub, p, sizeof(p));
		unlink(p);
	}
	return true;
}
