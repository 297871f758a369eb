#!/usr/bin/env python3
"""An HJ 212-2017 peer written from the standard's text, sharing no code with
Fieldwatch, to test our gateway and cloud against something we did not write.

It plays either side of the protocol:

  platform  the 上位机: listens for data loggers, checks every packet (header,
            length, CRC of appendix A, data segment syntax), answers uploads
            whose Flag asks for it with CN=9014 and the same QN, and writes
            each accepted upload as a JSON line to --out (or stdout).
            It refuses data flags that are not letters of table 8, and
            writes under "checks" what appendix D says of a period's Cou:
            the flow-weighted mean of each waste water pollutant (D.1.2.3)
            and the share of the period the flow's Cou covers (D.1.1).
  logger    the 现场机: sends the uploads described in --frames (a JSON list)
            and waits for each 9014 answer, re-sending by the standard's rule
            (OverTime seconds, ReCount times; 6.4 and table 4), and writes one
            JSON line per upload: {"qn":…,"acked":true/false,"tries":n}.
            With --history (uploads it kept but did not send: an outage), it
            answers the platform's history requests (CN 2051/2061/2031 with
            BeginTime and EndTime, appendix C.20): 9011 QnRtn=1, the kept
            uploads of that CN in the range, each awaiting its 9014, then
            9012 ExeRtn=1; one JSON line per request:
            {"request":cn,"begin":…,"end":…,"sent":n}. It waits up to
            --linger seconds for requests after its own uploads.

The facts it uses are those of HJ 212-2017 section 6 and appendix A: a packet is
"##", 4 decimal digits giving the data segment's length, the data segment,
4 hex digits of its CRC16, CR LF; the data segment is Name=Value fields
separated by ';' ending in CP=&&...&&; the CRC starts at 0xFFFF, and for each
byte the register becomes (register >> 8) XOR byte, then 8 times: shift right
and XOR 0xA001 when the bit shifted out was 1.

Only the Python standard library is used. Printed on stdout first, for the
test that starts it: "listening <host:port>" (platform).
"""

import argparse
import json
import socket
import sys
import threading
import time


def crc16(data: bytes) -> int:
    """HJ 212-2017 appendix A."""
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ b
        for _ in range(8):
            out = reg & 1
            reg >>= 1
            if out:
                reg ^= 0xA001
    return reg


def pack(segment: str) -> bytes:
    data = segment.encode("utf-8")
    if len(data) > 1024:
        raise ValueError("data segment longer than 1024")
    return b"##%04d" % len(data) + data + b"%04X\r\n" % crc16(data)


class Refused(Exception):
    pass


def unpack(line: bytes) -> str:
    """Checks one packet (with or without its CR LF) and returns the data
    segment."""
    if line.endswith(b"\r\n"):
        line = line[:-2]
    if not line.startswith(b"##") or len(line) < 10:
        raise Refused("header")
    try:
        n = int(line[2:6].decode("ascii"))
    except ValueError:
        raise Refused("length field")
    data, tail = line[6:-4], line[-4:]
    if len(data) != n:
        raise Refused("length %d, data %d" % (n, len(data)))
    try:
        got = int(tail.decode("ascii"), 16)
    except ValueError:
        raise Refused("crc field")
    if got != crc16(data):
        raise Refused("crc %04X, computed %04X" % (got, crc16(data)))
    return data.decode("utf-8")


def parse_segment(seg: str) -> dict:
    """QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&& into a dict
    with "CP" the list of items, each a list of (name, value)."""
    i = seg.find("CP=&&")
    if i < 0 or not seg.endswith("&&"):
        raise Refused("no CP=&&…&&")
    head, cp = seg[:i], seg[i + 5:-2]
    out = {}
    for f in head.split(";"):
        if f == "":
            continue
        if "=" not in f:
            raise Refused("field %r" % f)
        k, v = f.split("=", 1)
        out[k] = v
    for k in ("ST", "CN", "PW", "MN"):
        if k not in out:
            raise Refused("no " + k)
    items = []
    for item in cp.split(";") if cp else []:
        fields = []
        for f in item.split(","):
            if "=" not in f:
                raise Refused("CP field %r" % f)
            fields.append(tuple(f.split("=", 1)))
        items.append(fields)
    out["CP"] = items
    return out


def factors(items) -> dict:
    """code-Field=value fields as {code: {Field: value}}; other fields
    (DataTime) under "" ."""
    out = {}
    for item in items:
        for name, value in item:
            if "-" in name:
                code, field = name.split("-", 1)
                out.setdefault(code, {})[field] = value
            else:
                out.setdefault("", {})[name] = value
    return out


def read_lines(sock):
    """Yields packets (bytes up to and including LF) from sock."""
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line + b"\n"
        if len(buf) > 4096:
            buf = b""  # no packet is this long: drop what cannot end


FLAGS = "NFMSDCTB"  # table 8: normal, stopped, maintenance, set by hand, fault, calibrating, over range, no link
PERIOD_S = {"2061": 3600, "2031": 86400}  # hour and day data; minute data: --min-interval


def check_data(cn: str, data: dict, min_interval: int) -> dict:
    """What appendix D says of a period's values, for the test to judge.

    Flags must be letters of table 8 (raises Refused otherwise). For
    minute, hour and day data, per waste water pollutant with a Cou: the
    flow-weighted mean concentration of D.1.2.3 formula (12), C = G / D x
    10^3 (G the pollutant's Cou in kg, D the flow's Cou in m3), and for the
    flow w00000 the share of the period its Cou covers at its average,
    D / (Q x T x 10^-3) (D.1.1.1 formula 1 with D.1.1.3: Q in L/s, T the
    period in s): 1 for a period measured throughout."""
    out = {}
    for code, fields in data.items():
        flag = fields.get("Flag")
        if code and flag is not None and (len(flag) != 1 or flag not in FLAGS):
            raise Refused("%s-Flag=%s is not in table 8" % (code, flag))
    if cn not in ("2051", "2061", "2031"):
        return out
    period = PERIOD_S.get(cn, 60 * min_interval)
    flow = data.get("w00000", {})
    if "Cou" in flow and "Avg" in flow and float(flow["Avg"]) > 0:
        out["w00000"] = {"covered": float(flow["Cou"]) / (float(flow["Avg"]) * period * 1e-3)}
    for code, fields in data.items():
        if code.startswith("w") and code != "w00000" and "Cou" in fields and "Cou" in flow and float(flow["Cou"]) > 0:
            out[code] = {"weighted_mean": float(fields["Cou"]) / float(flow["Cou"]) * 1e3}
    return out


def answer_9014(p: dict) -> bytes:
    seg = "QN=%s;ST=91;CN=9014;PW=%s;MN=%s;Flag=4;CP=&&&&" % (p.get("QN", ""), p["PW"], p["MN"])
    return pack(seg)


def platform(args):
    out = open(args.out, "a", buffering=1) if args.out else sys.stdout
    lock = threading.Lock()
    host, port = args.listen.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(16)
    print("listening %s:%d" % srv.getsockname(), flush=True)
    drop = {"left": args.drop_acks}

    def serve(conn):
        with conn:
            for line in read_lines(conn):
                try:
                    p = parse_segment(unpack(line))
                except Refused as e:
                    with lock:
                        out.write(json.dumps({"refused": str(e)}) + "\n")
                    continue
                if args.mn and p["MN"] != args.mn or args.pw and p["PW"] != args.pw:
                    with lock:
                        out.write(json.dumps({"refused": "mn/pw"}) + "\n")
                    continue
                flag = int(p.get("Flag", "0"))
                data = factors(p["CP"])
                try:
                    checks = check_data(p["CN"], data, args.min_interval)
                except Refused as e:
                    with lock:
                        out.write(json.dumps({"refused": str(e)}) + "\n")
                    continue
                rec = {"qn": p.get("QN", ""), "st": p["ST"], "cn": p["CN"], "mn": p["MN"], "flag": flag,
                       "pnum": p.get("PNUM"), "pno": p.get("PNO"), "data": data, "checks": checks}
                acked = False
                if flag & 1:
                    with lock:
                        if drop["left"] > 0:
                            drop["left"] -= 1
                        else:
                            acked = True
                rec["acked"] = acked
                # Written before the answer goes out: whoever reads the
                # answer finds the upload recorded.
                with lock:
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                if acked:
                    conn.sendall(answer_9014(p))

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


HISTORY_CNS = ("2051", "2061", "2031")  # minute, hour, day data: also asked for by the platform


class Logger:
    def __init__(self, args):
        self.args = args
        host, port = args.connect.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=args.overtime)
        self.lines = read_lines(self.sock)
        self.requests = []  # the platform's requests read while waiting for answers
        self.n = 0

    def qn(self):
        self.n += 1
        return time.strftime("%Y%m%d%H%M%S", time.localtime()) + "%03d" % (self.n % 1000)

    def segment(self, qn, st, cn, flag, cp):
        return "QN=%s;ST=%s;CN=%s;PW=%s;MN=%s;Flag=%d;CP=&&%s&&" % (qn, st, cn, self.args.pw, self.args.mn, flag, cp)

    def next_packet(self):
        """The next packet from the platform; raises socket.timeout,
        StopIteration (closed) or Refused."""
        return parse_segment(unpack(next(self.lines)))

    def upload(self, f):
        """Sends one upload (flag 5: version 2017, answer asked) and waits
        for its 9014 by the retry rule; requests read meanwhile are kept."""
        qn = self.qn()
        cp = ["DataTime=%s" % f["datatime"]]
        for code, fields in f["values"].items():
            cp.append(",".join("%s-%s=%s" % (code, k, v) for k, v in fields.items()))
        frame = pack(self.segment(qn, self.args.st, f["cn"], 5, ";".join(cp)))
        acked, tries = False, 0
        while not acked and tries <= self.args.recount:
            tries += 1
            self.sock.sendall(frame)
            try:
                while True:
                    p = self.next_packet()
                    if p["CN"] == "9014" and p.get("QN") == qn:
                        acked = True
                        break
                    if p["CN"] in HISTORY_CNS:
                        self.requests.append(p)
            except (socket.timeout, StopIteration, Refused):
                continue
        return qn, acked, tries

    def answer(self, req, history):
        """Answers one history request: 9011, the kept uploads in range,
        9012 (appendix C.20)."""
        params = {}
        for item in req["CP"]:
            for k, v in item:
                params[k] = v
        begin, end = params.get("BeginTime", ""), params.get("EndTime", "")
        qn = req.get("QN", "")
        self.sock.sendall(pack(self.segment(qn, "91", "9011", 4, "QnRtn=1")))
        sent = 0
        for f in history:
            if f["cn"] == req["CN"] and begin <= f["datatime"] <= end:
                _, acked, _ = self.upload(f)
                sent += acked
        self.sock.sendall(pack(self.segment(qn, "91", "9012", 4, "ExeRtn=1")))
        print(json.dumps({"request": req["CN"], "begin": begin, "end": end, "sent": sent}), flush=True)


def logger(args):
    lg = Logger(args)
    for f in json.load(open(args.frames)):
        qn, acked, tries = lg.upload(f)
        print(json.dumps({"qn": qn, "acked": acked, "tries": tries}), flush=True)
    history = json.load(open(args.history)) if args.history else []
    if history:
        deadline = time.time() + args.linger
        answered = 0
        while time.time() < deadline and answered == 0:
            if not lg.requests:
                try:
                    p = lg.next_packet()
                except socket.timeout:
                    continue
                except (StopIteration, Refused):
                    break
                if p["CN"] in HISTORY_CNS:
                    lg.requests.append(p)
                continue
            lg.answer(lg.requests.pop(0), history)
            answered += 1
    lg.sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="role", required=True)
    p = sub.add_parser("platform")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--mn", default="")
    p.add_argument("--pw", default="")
    p.add_argument("--out", default="")
    p.add_argument("--drop-acks", type=int, default=0, help="leave the first N uploads that ask unanswered")
    p.add_argument("--min-interval", type=int, default=10, help="minutes of a minute-data period (MinInterval)")
    lg = sub.add_parser("logger")
    lg.add_argument("--connect", required=True)
    lg.add_argument("--mn", required=True)
    lg.add_argument("--pw", required=True)
    lg.add_argument("--st", default="32")
    lg.add_argument("--frames", required=True)
    lg.add_argument("--overtime", type=float, default=10, help="seconds to wait for an answer (OverTime)")
    lg.add_argument("--recount", type=int, default=3, help="re-sends after the first (ReCount)")
    lg.add_argument("--history", default="", help="uploads kept through an outage, sent when the platform asks (JSON list)")
    lg.add_argument("--linger", type=float, default=0, help="seconds to wait for a history request after the uploads")
    a = ap.parse_args()
    if a.role == "platform":
        platform(a)
    else:
        logger(a)


if __name__ == "__main__":
    main()
