/* rv-agent: the Ringvisor guest agent. It listens on vsock port 1024 and runs one command per
 * connection for the host (ringvisor exec), returning its stdout, stderr and exit status, so
 * that nothing needs to be typed into or scraped from the guest's console.
 *
 * The protocol is frames of [type: 1 byte][length: 4 bytes, little-endian][data], both ways:
 *   host -> agent:  'A' argv (NUL-terminated strings), then 'I' stdin bytes..., 'E' end of stdin
 *   agent -> host:  'O' stdout bytes, 'R' stderr bytes, 'X' exit status (4 bytes: the exit
 *                   code, or 128 + the signal), 'F' failure to start (a message)
 * Each connection is served by a child process of its own; a command's output is relayed as it
 * comes. Built static with the cross gcc (scripts/build.sh) and started by the default guest's
 * /init. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define PORT 1024
#define MAX_ARGV_BYTES (64 * 1024)

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_frame(int fd, char type, const void *data, uint32_t len)
{
    unsigned char h[5] = { (unsigned char)type, len & 255, (len >> 8) & 255, (len >> 16) & 255, len >> 24 };
    if (write_all(fd, h, 5) < 0) return -1;
    return len ? write_all(fd, data, len) : 0;
}

static int read_header(int fd, char *type, uint32_t *len)
{
    unsigned char h[5];
    if (read_all(fd, h, 5) < 0) return -1;
    *type = (char)h[0];
    *len = h[1] | (h[2] << 8) | (h[3] << 16) | ((uint32_t)h[4] << 24);
    return 0;
}

static void fail(int fd, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
    send_frame(fd, 'F', msg, (uint32_t)strlen(msg));
}

static void serve(int fd)
{
    char type;
    uint32_t len;
    if (read_header(fd, &type, &len) < 0 || type != 'A' || len == 0 || len > MAX_ARGV_BYTES) return;
    char *buf = malloc(len + 1);
    if (!buf || read_all(fd, buf, len) < 0) return;
    buf[len] = 0;
    char *argv[1024];
    int argc = 0;
    for (uint32_t i = 0; i < len && argc < 1023; i += (uint32_t)strlen(buf + i) + 1) argv[argc++] = buf + i;
    argv[argc] = NULL;

    int in[2], out[2], err[2];
    if (pipe(in) < 0 || pipe(out) < 0 || pipe(err) < 0) return fail(fd, "pipe");
    pid_t pid = fork();
    if (pid < 0) return fail(fd, "fork");
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]); close(fd);
        execvp(argv[0], argv);
        dprintf(2, "rv-agent: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    int stdin_fd = in[1];
    struct pollfd p[3] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
    int open_outputs = 2;
    char data[16384];
    while (open_outputs > 0) {
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t k = read(p[i].fd, data, sizeof data);
            if (k > 0) {
                if (send_frame(fd, i == 0 ? 'O' : 'R', data, (uint32_t)k) < 0) goto done;
            } else if (k == 0 || errno != EINTR) {
                close(p[i].fd);
                p[i].fd = -1;
                open_outputs--;
            }
        }
        if (p[2].fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (read_header(fd, &type, &len) < 0) {
                p[2].fd = -1; /* the host went away: let the command finish */
                if (stdin_fd >= 0) { close(stdin_fd); stdin_fd = -1; }
                continue;
            }
            while (len > 0) {
                uint32_t n = len < sizeof data ? len : (uint32_t)sizeof data;
                if (read_all(fd, data, n) < 0) goto done;
                if (type == 'I' && stdin_fd >= 0 && write_all(stdin_fd, data, n) < 0) { close(stdin_fd); stdin_fd = -1; }
                len -= n;
            }
            if (type == 'E' && stdin_fd >= 0) { close(stdin_fd); stdin_fd = -1; }
        }
    }
done:
    if (stdin_fd >= 0) close(stdin_fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    uint32_t code = WIFEXITED(status) ? (uint32_t)WEXITSTATUS(status) : 128u + (uint32_t)WTERMSIG(status);
    unsigned char c[4] = { code & 255, (code >> 8) & 255, (code >> 16) & 255, code >> 24 };
    send_frame(fd, 'X', c, 4);
}

int main(void)
{
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) { perror("rv-agent: socket(AF_VSOCK)"); return 1; }
    struct sockaddr_vm a;
    memset(&a, 0, sizeof a);
    a.svm_family = AF_VSOCK;
    a.svm_cid = VMADDR_CID_ANY;
    a.svm_port = PORT;
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) { perror("rv-agent: bind/listen"); return 1; }
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) { if (errno == EINTR) continue; perror("rv-agent: accept"); sleep(1); continue; }
        pid_t pid = fork();
        if (pid == 0) {
            close(s);
            serve(c);
            shutdown(c, SHUT_RDWR);
            close(c);
            _exit(0);
        }
        close(c);
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
}
