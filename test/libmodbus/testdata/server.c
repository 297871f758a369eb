/*
 * A Modbus server built on libmodbus (Debian's libmodbus-dev), an
 * implementation independent of ours, for checking Fieldwatch's client.
 *
 *   server rtu DEVICE BAUD UNIT     serve unit UNIT on a serial port (8N1)
 *   server tcp PORT                  serve Modbus TCP on 127.0.0.1:PORT
 *
 * 16 coils, all off. Holding register i holds 1000+i (0..99), input register i holds 2000+i
 * (0..49); holding 10-11 hold the float 21.5 (0x41AC0000) high word first,
 * 12-13 the int32 -123456 low word first, and 14-15 the float 21.5 low word
 * first. The words are set explicitly: libmodbus's modbus_set_float_abcd()
 * stores the bytes of each register swapped on little-endian hosts (3.1.6).
 * Prints "ready" once it serves. On a serial port, libmodbus takes whatever
 * comes within its response timeout (500 ms) after a request for another
 * unit as that unit's reply, and ignores it; the server prints "ignored"
 * once it has, so that a test knows when it listens for requests again.
 */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: server rtu DEVICE BAUD UNIT | server tcp PORT\n");
		return 2;
	}
	int rtu = strcmp(argv[1], "rtu") == 0;
	modbus_t *ctx;
	if (rtu) {
		if (argc < 5) return 2;
		ctx = modbus_new_rtu(argv[2], atoi(argv[3]), 'N', 8, 1);
		modbus_set_slave(ctx, atoi(argv[4]));
	} else {
		ctx = modbus_new_tcp("127.0.0.1", atoi(argv[2]));
	}
	if (ctx == NULL) {
		fprintf(stderr, "cannot create context: %s\n", modbus_strerror(errno));
		return 1;
	}
	modbus_mapping_t *mb = modbus_mapping_new(16, 0, 100, 50);
	for (int i = 0; i < 100; i++) mb->tab_registers[i] = 1000 + i;
	for (int i = 0; i < 50; i++) mb->tab_input_registers[i] = 2000 + i;
	mb->tab_registers[10] = 0x41AC;
	mb->tab_registers[11] = 0x0000;
	mb->tab_registers[14] = 0x0000;
	mb->tab_registers[15] = 0x41AC;
	int32_t v = -123456;
	mb->tab_registers[12] = (uint16_t)(v & 0xFFFF);
	mb->tab_registers[13] = (uint16_t)((uint32_t)v >> 16);

	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	if (rtu) {
		if (modbus_connect(ctx) == -1) {
			fprintf(stderr, "cannot open %s: %s\n", argv[2], modbus_strerror(errno));
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		int ignoring = 0; /* this call waits for another unit's reply */
		for (;;) {
			int rc = modbus_receive(ctx, query);
			if (ignoring) {
				ignoring = 0;
				printf("ignored\n");
				fflush(stdout);
				continue;
			}
			if (rc == 0) ignoring = 1; /* a request for another unit */
			if (rc > 0) modbus_reply(ctx, query, rc, mb);
			else if (rc == -1 && errno != EMBBADCRC && errno != ETIMEDOUT && errno != EMBBADDATA) {
				if (errno == EBADF || errno == EIO) return 0;
			}
		}
	}
	int s = modbus_tcp_listen(ctx, 1);
	if (s == -1) {
		fprintf(stderr, "cannot listen: %s\n", modbus_strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (modbus_tcp_accept(ctx, &s) == -1) return 1;
		for (;;) {
			int rc = modbus_receive(ctx, query);
			if (rc > 0) modbus_reply(ctx, query, rc, mb);
			else if (rc == -1) break; /* the client went away */
		}
		modbus_close(ctx);
	}
}
