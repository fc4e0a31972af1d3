/*
 * vchan-cycles: N connect/transfer/close cycles of Debian's libxenvchan in
 * one process, for leak tests of the emulator.
 *
 *   vchan-cycles server PEER BASE N    cycle i serves BASE/i (relative path)
 *   vchan-cycles client PEER BASE N    cycle i connects to BASE/i (absolute)
 *
 * Each cycle: the server sends 1000 patterned bytes, the client checks them
 * and answers with 1000 more, then both close. Prints "ok N" or "fail ...".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libxenvchan.h>
#include <xentoollog.h>

#define BYTES 1000

static void die(const char *what, int i) {
  printf("fail %s at cycle %d: %s\n", what, i, strerror(errno));
  exit(1);
}

static void fill(unsigned char *b, int i, int dir) {
  for (int k = 0; k < BYTES; k++) b[k] = (unsigned char)(k * 31 + i * 7 + dir);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: vchan-cycles server|client PEER BASE N\n");
    return 2;
  }
  int server = !strcmp(argv[1], "server");
  int peer = atoi(argv[2]), n = atoi(argv[4]);
  /* the client retries until the server's entries appear: keep that quiet */
  xentoollog_logger *log = (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
  unsigned char want[BYTES], got[BYTES];
  for (int i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof path, "%s/%d", argv[3], i);
    struct libxenvchan *c = NULL;
    if (server) {
      c = libxenvchan_server_init(log, peer, path, 4096, 4096);
      if (!c) die("server_init", i);
    } else {
      for (int tries = 0; !c; tries++) {
        c = libxenvchan_client_init(log, peer, path);
        if (!c && tries > 20000) die("client_init", i);
        if (!c) usleep(500);
      }
    }
    c->blocking = 1;
    if (server) {
      fill(want, i, 0);
      if (libxenvchan_send(c, want, BYTES) != BYTES) die("send", i);
      if (libxenvchan_recv(c, got, BYTES) != BYTES) die("recv", i);
      fill(want, i, 1);
    } else {
      if (libxenvchan_recv(c, got, BYTES) != BYTES) die("recv", i);
      fill(want, i, 0);
      if (memcmp(got, want, BYTES)) {
        printf("fail data at cycle %d\n", i);
        return 1;
      }
      fill(want, i, 1);
      if (libxenvchan_send(c, want, BYTES) != BYTES) die("send", i);
      memcpy(got, want, BYTES);
    }
    if (memcmp(got, want, BYTES)) {
      printf("fail data at cycle %d\n", i);
      return 1;
    }
    libxenvchan_close(c);
  }
  printf("ok %d\n", n);
  return 0;
}
