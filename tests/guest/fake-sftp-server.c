/*
 * An SFTP v3 server for the guest tests that writes real files but can lie the
 * way a hostile guest's server would, to test qsim's pipelined upload
 * (src/guest/qsim-guest-sftp-write.c). Run by dropbear as its SFTP subsystem
 * (through the test's wrapper script) on stdin/stdout.
 *
 * usage: fake-sftp-server MODE STATS_FILE
 *   ok           answers everything truthfully (the WRITEs that arrived together
 *                after all of them were read, to see how many were in flight)
 *   refuse       refuses the third WRITE (a failure status with a hostile message)
 *   wrong-id     answers the third WRITE with an id never sent
 *   wrong-type   answers the third WRITE with a DATA packet
 *   huge         answers the third WRITE with a 2 GiB length, then sleeps
 *   exit         exits at the third WRITE
 *   silent       never answers a WRITE, nor a CLOSE
 *   reorder      answers the WRITEs that arrived together last first
 *   small-limits says it takes 1-byte WRITEs (limits@openssh.com)
 *   bad-limits   answers the limits question with a DATA packet
 *   no-limits    does not offer limits@openssh.com
 *   limits-refused  offers it, then answers the question with a failure status
 *   packet-limits   states a 64 KiB packet limit but no write limit
 *   short-limits answers the limits question with a 9-byte EXTENDED_REPLY
 *   tiny-reply   answers the third WRITE with a 5-byte packet
 *   bad-message  refuses the third WRITE with a message longer than its packet
 * STATS_FILE gets "writes N max M bytes B inflight F" at each CLOSE: F is the
 * most WRITEs read before the first of them was answered.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FXP_INIT 1
#define FXP_VERSION 2
#define FXP_OPEN 3
#define FXP_CLOSE 4
#define FXP_WRITE 6
#define FXP_LSTAT 7
#define FXP_SETSTAT 9
#define FXP_FSETSTAT 10
#define FXP_MKDIR 14
#define FXP_STAT 17
#define FXP_STATUS 101
#define FXP_HANDLE 102
#define FXP_DATA 103
#define FXP_EXTENDED 200
#define FXP_EXTENDED_REPLY 201
#define FX_OK 0
#define FX_NO_SUCH_FILE 2
#define FX_FAILURE 4
#define FX_OP_UNSUPPORTED 8
#define MAX_PACKET (1024 * 1024)
#define MAX_HELD 1024

static const char *mode;
static const char *stats_path;
static int fd = -1;
static unsigned long writes, max_write, bytes;
static uint32_t held[MAX_HELD];
static unsigned n_held, max_held;

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}

static void
send_all(const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n <= 0)
			exit(1);
		p += n;
		len -= (size_t)n;
	}
}

static int
read_all(void *data, size_t len)
{
	uint8_t *p = data;

	while (len > 0) {
		ssize_t n = read(STDIN_FILENO, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A packet of @type: @id, then @body */
static void
send_packet(uint8_t type, uint32_t id, const void *body, uint32_t body_len)
{
	uint8_t head[9];

	put32(head, 1 + 4 + body_len);
	head[4] = type;
	put32(head + 5, id);
	send_all(head, sizeof head);
	if (body_len > 0)
		send_all(body, body_len);
}

static void
send_status(uint32_t id, uint32_t code, const char *message)
{
	uint8_t body[512];
	uint32_t mlen = (uint32_t)strlen(message);

	put32(body, code);
	put32(body + 4, mlen);
	memcpy(body + 8, message, mlen);
	put32(body + 8 + mlen, 0);
	send_packet(FXP_STATUS, id, body, 8 + mlen + 4);
}

/* Held WRITE answers, last first, once nothing more is waiting to be read */
static void
flush_held(void)
{
	struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};

	if (n_held == 0 || (n_held < MAX_HELD && poll(&pfd, 1, 0) > 0))
		return;
	if (strcmp(mode, "reorder") == 0) {
		while (n_held > 0)
			send_status(held[--n_held], FX_OK, "");
		return;
	}
	for (unsigned i = 0; i < n_held; i++)
		send_status(held[i], FX_OK, "");
	n_held = 0;
}

static void
write_stats(void)
{
	FILE *f = fopen(stats_path, "w");

	if (f == NULL)
		return;
	fprintf(f, "writes %lu max %lu bytes %lu inflight %u\n", writes, max_write, bytes,
	        max_held);
	fclose(f);
}

static void
handle_write(uint32_t id, const uint8_t *p, uint32_t len)
{
	uint32_t hlen, dlen;
	uint64_t offset;

	if (len < 4 || (hlen = get32(p)) > len - 4 || len - 4 - hlen < 12)
		exit(2);
	offset = ((uint64_t)get32(p + 4 + hlen) << 32) | get32(p + 8 + hlen);
	dlen = get32(p + 12 + hlen);
	if (dlen > len - 16 - hlen)
		exit(2);
	if (pwrite(fd, p + 16 + hlen, dlen, (off_t)offset) != (ssize_t)dlen)
		exit(3);
	writes++;
	bytes += dlen;
	if (dlen > max_write)
		max_write = dlen;
	if (writes == 3 && strcmp(mode, "refuse") == 0) {
		send_status(id, FX_FAILURE, "No space left\x1b[2J on device");
	} else if (writes == 3 && strcmp(mode, "wrong-id") == 0) {
		send_status(id + 1000, FX_OK, "");
	} else if (writes == 3 && strcmp(mode, "wrong-type") == 0) {
		send_packet(FXP_DATA, id, "\0\0\0\0", 4);
	} else if (writes == 3 && strcmp(mode, "huge") == 0) {
		uint8_t head[4];

		put32(head, 0x7fffff00u);
		send_all(head, sizeof head);
		send_all("\x65", 1);
		for (;;)
			pause();
	} else if (writes == 3 && strcmp(mode, "exit") == 0) {
		exit(0);
	} else if (writes == 3 && strcmp(mode, "tiny-reply") == 0) {
		send_packet(FXP_STATUS, 0, NULL, 0);
	} else if (writes == 3 && strcmp(mode, "bad-message") == 0) {
		uint8_t body[8];

		put32(body, FX_FAILURE);
		put32(body + 4, 10000);
		send_packet(FXP_STATUS, id, body, sizeof body);
	} else if (strcmp(mode, "silent") == 0) {
		/* never answered */
	} else {
		held[n_held++] = id;
		if (n_held > max_held)
			max_held = n_held;
	}
}

static void
handle_extended(uint32_t id, const uint8_t *p, uint32_t len)
{
	static const char limits[] = "limits@openssh.com";
	uint8_t body[32];

	if (len < 4 || get32(p) != strlen(limits) || len - 4 < strlen(limits) ||
	    memcmp(p + 4, limits, strlen(limits)) != 0 || strcmp(mode, "no-limits") == 0) {
		send_status(id, FX_OP_UNSUPPORTED, "unsupported");
		return;
	}
	if (strcmp(mode, "bad-limits") == 0) {
		send_packet(FXP_DATA, id, "\0\0\0\0", 4);
		return;
	}
	if (strcmp(mode, "limits-refused") == 0) {
		send_status(id, FX_FAILURE, "no limits today");
		return;
	}
	if (strcmp(mode, "short-limits") == 0) {
		send_packet(FXP_EXTENDED_REPLY, id, "\0\0\0\0", 4);
		return;
	}
	put64(body, strcmp(mode, "small-limits") == 0    ? 0
	            : strcmp(mode, "packet-limits") == 0 ? 64 * 1024
	                                                 : 256 * 1024);
	put64(body + 8, 255 * 1024);
	put64(body + 16, strcmp(mode, "small-limits") == 0    ? 1
	                 : strcmp(mode, "packet-limits") == 0 ? 0
	                                                      : 255 * 1024);
	put64(body + 24, 64);
	send_packet(FXP_EXTENDED_REPLY, id, body, sizeof body);
}

/* A path string at @p: NUL-terminated copy in @out, or exit on a bad packet */
static void
get_path(const uint8_t *p, uint32_t len, char *out, size_t out_len)
{
	uint32_t plen;

	if (len < 4 || (plen = get32(p)) > len - 4 || plen >= out_len)
		exit(2);
	memcpy(out, p + 4, plen);
	out[plen] = '\0';
}

int
main(int argc, char **argv)
{
	static uint8_t buf[MAX_PACKET];

	if (argc != 3)
		return 64;
	mode = argv[1];
	stats_path = argv[2];
	for (;;) {
		uint8_t head[4];
		uint32_t len, id;
		uint8_t type;
		char path[4096];

		flush_held();
		if (read_all(head, sizeof head) < 0)
			return 0;
		len = get32(head);
		if (len < 1 || len > MAX_PACKET || read_all(buf, len) < 0)
			return 2;
		type = buf[0];
		if (type == FXP_INIT) {
			static const char ext[] = "limits@openssh.com";
			uint8_t body[64];
			uint32_t n;

			/* VERSION carries the version where the others carry an id */
			body[4] = FXP_VERSION;
			put32(body + 5, 3);
			n = 9;
			if (strcmp(mode, "no-limits") != 0) {
				put32(body + n, (uint32_t)strlen(ext));
				memcpy(body + n + 4, ext, strlen(ext));
				n += 4 + (uint32_t)strlen(ext);
				put32(body + n, 1);
				body[n + 4] = '1';
				n += 5;
			}
			put32(body, n - 4);
			send_all(body, n);
			continue;
		}
		if (len < 5)
			return 2;
		id = get32(buf + 1);
		switch (type) {
		case FXP_OPEN:
			get_path(buf + 5, len - 5, path, sizeof path);
			if (fd >= 0)
				close(fd);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0) {
				send_status(id, FX_FAILURE, strerror(errno));
				break;
			}
			send_packet(FXP_HANDLE, id, "\0\0\0\2h1", 6);
			break;
		case FXP_WRITE:
			handle_write(id, buf + 5, len - 5);
			break;
		case FXP_CLOSE:
			flush_held();
			write_stats();
			if (strcmp(mode, "silent") != 0)
				send_status(id, FX_OK, "");
			break;
		case FXP_MKDIR:
			get_path(buf + 5, len - 5, path, sizeof path);
			if (mkdir(path, 0755) == 0)
				send_status(id, FX_OK, "");
			else
				send_status(id, FX_FAILURE, strerror(errno));
			break;
		case FXP_SETSTAT:
		case FXP_FSETSTAT:
			send_status(id, FX_OK, "");
			break;
		case FXP_STAT:
		case FXP_LSTAT:
			send_status(id, FX_NO_SUCH_FILE, "no such file");
			break;
		case FXP_EXTENDED:
			handle_extended(id, buf + 5, len - 5);
			break;
		default:
			send_status(id, FX_OP_UNSUPPORTED, "unsupported");
			break;
		}
	}
}
