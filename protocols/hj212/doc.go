// Package hj212 is the wire codec of HJ 212 (HJ 212-2017, 污染物在线监控（监测）
// 系统数据传输标准, and its predecessor HJ/T 212-2005), the text protocol in
// which an environment data logger (数采仪, the 现场机) reports to a bureau's
// platform (the 上位机) over TCP.
//
// It has three layers, each usable alone:
//
//   - the communication packet (通讯包): "##", a 4-digit data length, the data
//     segment, its CRC16 as 4 hex digits, "\r\n" (Pack, Unpack, CRC16);
//   - the data segment (数据段): QN, ST, CN, PW, MN, Flag, PNUM, PNO and
//     CP=&&…&& (Packet, DecodePacket, Packet.Encode);
//   - the data area inside CP (数据区): items separated by ';', fields of an
//     item by ',', each field Name=Value (CP, ParseCP).
//
// Reader cuts frames out of a TCP byte stream, with a bounded length, and
// resynchronises after garbage. Split cuts a long CP into numbered packets
// (PNUM/PNO).
//
// Every refusal is an *Error whose Kind is one of the Kind… constants and
// which wraps one of the Err… sentinels, so a listener can count refusals by
// kind and errors.Is works.
//
// The facts this package relies on, with their sources, are in
// docs/standards/hj212.md. HJ 212-2025 (in force from 2026-01-01) keeps the
// frame, as far as could be established; see that page for what is and is
// not verified.
package hj212
