#!/usr/bin/env python3
"""An SL 651-2014 telemetry station (遥测站) written from the standard's text,
sharing no code with Fieldwatch, to test our central station against
something we did not write.

  station   connects to a central station, sends one report in HEX/BCD
            encoding (function 32 timed report by default) with the elements
            given, waits for the confirmation (M2 link: the centre answers a
            correct frame; the station resends at most twice, 6.3.2), and prints
            one JSON line: the frame sent (hex), whether a confirmation came, its
            end character and the serial number it carries.
  encode    prints the HEX frame of a report without sending it.

What it uses (SL 651-2014, clauses 6.2 and 6.6, tables 20-26, appendix C): an
up-link HEX frame is 7E 7E, the central station address (1 byte), the station
address (5 bytes), the password (2 bytes), the function code (1 byte), the
up/down flag (high 4 bits, 0 up) with the body length (low 12 bits), STX, the
body, ETX, and a CRC16 of every byte before it (polynomial X16+X15+X2+1,
register starting at FFFF, reflected, sent high byte first). The body is the
serial number (2 bytes), the send time (BCD YYMMDDhhmmss), F1 F1 and the
station address with its classification code, F0 F0 and the observation time
(BCD YYMMDDhhmm), and elements: a guide byte, a definition byte (data length in
bytes in its high 5 bits, decimals in its low 3), the value in BCD.

Only the Python standard library is used.
"""

import argparse
import json
import socket
import sys

STX, ETX, EOT, ACK, ESC = 0x02, 0x03, 0x04, 0x06, 0x1B

# Appendix C, table C.1: ASCII name -> (guide byte, digits, decimals).
ELEMENTS = {
    "PJ": (0x20, 5, 1),   # current rainfall, mm
    "PT": (0x26, 6, 1),   # accumulated rainfall, mm
    "P1": (0x1A, 5, 1),   # rainfall over 1 h, mm
    "Z": (0x39, 7, 3),    # instantaneous river level, m
    "Q": (0x27, 9, 3),    # instantaneous flow, m3/s
    "VT": (0x38, 4, 2),   # supply voltage, V
    "C": (0x03, 3, 1),    # water temperature, degC
}


def crc16(data: bytes) -> int:
    reg = 0xFFFF
    for b in data:
        reg ^= b
        for _ in range(8):
            out = reg & 1
            reg >>= 1
            if out:
                reg ^= 0xA001
    return reg


def bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits = "0" + digits
    return bytes(int(digits[i:i + 2], 16) for i in range(0, len(digits), 2))


def element(name: str, value: float) -> bytes:
    guide, digits, decimals = ELEMENTS[name]
    nbytes = (digits + 1) // 2
    scaled = round(abs(value) * 10 ** decimals)
    text = "%0*d" % (nbytes * 2, scaled)
    if len(text) > nbytes * 2:
        raise ValueError("%s %s does not fit N(%d,%d)" % (name, value, digits, decimals))
    data = bcd(text)
    if value < 0:
        # 6.6.3.3: a negative value starts with FF (one byte more).
        nbytes += 1
        data = b"\xff" + data
    return bytes([guide, nbytes << 3 | decimals]) + data


def report(args) -> bytes:
    station = bytes.fromhex(args.station)
    if len(station) != 5:
        raise SystemExit("the station address is 5 bytes (10 hex digits)")
    body = args.serial.to_bytes(2, "big") + bcd(args.send_time)
    body += b"\xf1\xf1" + station + args.klass.encode("ascii")
    body += b"\xf0\xf0" + bcd(args.obs_time)
    for name, value in json.loads(args.elements):
        body += element(name, float(value))
    if len(body) > 4095:
        raise SystemExit("body longer than 4095")
    head = b"\x7e\x7e" + bytes([args.center]) + station + args.password.to_bytes(2, "big") + bytes([args.function])
    head += (len(body) & 0x0FFF).to_bytes(2, "big") + bytes([STX])
    frame = head + body + bytes([ETX])
    return frame + crc16(frame).to_bytes(2, "big")


def read_confirmation(sock, station: bytes):
    """Reads one down-link HEX frame; returns (end character, serial) or
    raises ValueError."""
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed")
        buf += chunk
        i = buf.find(b"\x7e\x7e")
        if i < 0 or len(buf) - i < 14:
            continue
        f = buf[i:]
        # Down-link: the station address first, then the central station's.
        if f[2:7] != station:
            raise ValueError("confirmation for station %s" % f[2:7].hex())
        flag_len = int.from_bytes(f[11:13], "big")
        if flag_len >> 12 != 0x8:
            raise ValueError("not a down-link frame (flag %x)" % (flag_len >> 12))
        n = flag_len & 0x0FFF
        total = 13 + 1 + n + 1 + 2
        if len(f) < total:
            continue
        f = f[:total]
        if crc16(f[:-2]) != int.from_bytes(f[-2:], "big"):
            raise ValueError("confirmation CRC")
        if f[13] != STX:
            raise ValueError("no STX")
        body = f[14:14 + n]
        return f[14 + n], int.from_bytes(body[:2], "big")


def station(args):
    frame = report(args)
    addr = bytes.fromhex(args.station)
    host, port = args.connect.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    result = {"sent": frame.hex().upper(), "confirmed": False, "tries": 0}
    for _ in range(3):  # once, then resent at most twice (6.3.2.3)
        result["tries"] += 1
        sock.sendall(frame)
        try:
            end, serial = read_confirmation(sock, addr)
        except (socket.timeout, ValueError) as e:
            result["error"] = str(e)
            continue
        result.update(confirmed=True, end={EOT: "EOT", ACK: "ACK", ESC: "ESC"}.get(end, "%02X" % end), serial=serial)
        result.pop("error", None)
        break
    sock.close()
    print(json.dumps(result), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", choices=["station", "encode"])
    ap.add_argument("--connect", default="")
    ap.add_argument("--center", type=int, default=1)
    ap.add_argument("--station", default="0011223344")
    ap.add_argument("--password", type=lambda s: int(s, 16), default=0x03E8)
    ap.add_argument("--function", type=lambda s: int(s, 16), default=0x32)
    ap.add_argument("--serial", type=int, default=1)
    ap.add_argument("--send-time", default="170718110016", help="YYMMDDhhmmss")
    ap.add_argument("--obs-time", default="1707181100", help="YYMMDDhhmm")
    ap.add_argument("--klass", default="H", help="station classification code (appendix A)")
    ap.add_argument("--elements", default="[]", help='JSON list of [name, value], e.g. [["PJ", 4.0]]')
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    if a.role == "encode":
        print(report(a).hex().upper())
    else:
        if not a.connect:
            sys.exit("--connect host:port")
        station(a)


if __name__ == "__main__":
    main()
