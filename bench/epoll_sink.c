/* epoll_sink: the floor for ingest (issue 14). Accepts TCP connections on 127.0.0.1:PORT (0: any
 * free port, printed on stdout), appends each connection's bytes to DIR/conn-N.bin and fsyncs
 * every open file every 2 s. Nothing else: no parsing, no acknowledgements.
 *   epoll_sink PORT DIR */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
static int files[MAX_FDS]; /* socket fd -> its file's fd, 0 when none */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) return fprintf(stderr, "usage: epoll_sink PORT DIR\n"), 2;
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1, count = 0;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) return perror("listen"), 1;
  getsockname(ls, (struct sockaddr *)&a, &len);
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, events[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static char buf[1 << 16];
  double next_sync = now_s() + 2;
  for (;;) {
    int wait_ms = (int)((next_sync - now_s()) * 1000);
    int n = epoll_wait(ep, events, 256, wait_ms > 0 ? wait_ms : 0);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        int c = accept(ls, NULL, NULL);
        if (c < 0 || c >= MAX_FDS) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/conn-%d.bin", argv[2], count++);
        files[c] = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        ev.data.fd = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        continue;
      }
      ssize_t got = read(fd, buf, sizeof buf);
      if (got > 0) {
        if (write(files[fd], buf, (size_t)got) != got) perror("write");
      } else {
        fsync(files[fd]);
        close(files[fd]);
        files[fd] = 0;
        close(fd); /* also leaves the epoll set */
      }
    }
    if (now_s() >= next_sync) {
      for (int fd = 0; fd < MAX_FDS; fd++)
        if (files[fd] > 0) fsync(files[fd]);
      next_sync += 2;
    }
  }
}
